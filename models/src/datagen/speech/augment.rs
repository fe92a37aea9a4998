//! What happens to the voice between the speaker and the microphone: leading and trailing
//! silence, optionally a small room (sparse synthetic reverb) and road noise at a drawn
//! signal-to-noise ratio, then a random recording level and 16-bit quantisation.
//!
//! Road noise is coloured: white (hiss), pink (wind, tyres) or brown (engine rumble), with a
//! slow level swell as traffic passes. The SNR is measured against the speech's active frames
//! only, so long pauses do not make a quiet utterance look loud. Every draw comes from the
//! utterance's own [`Rng`], so an utterance is reproducible on its own.

use crate::datagen::rng::Rng;

/// Samples per second of everything here.
pub const RATE: f32 = 16000.0;

/// Noise colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colour {
    /// Flat spectrum.
    White,
    /// -3 dB per octave (Paul Kellet's economy filter).
    Pink,
    /// -6 dB per octave (leaky integrator).
    Brown,
}

/// Mean power of the frames (10 ms) that hold speech: those within 20 dB of the loudest.
pub fn active_power(x: &[f32]) -> f32 {
    let frames: Vec<f32> = x
        .chunks(160)
        .map(|f| f.iter().map(|v| v * v).sum::<f32>() / f.len() as f32)
        .collect();
    let loudest = frames.iter().copied().fold(0.0, f32::max);
    let active: Vec<f32> = frames
        .into_iter()
        .filter(|&p| p >= loudest * 0.01)
        .collect();
    if active.is_empty() {
        0.0
    } else {
        active.iter().sum::<f32>() / active.len() as f32
    }
}

/// `n` samples of `colour` noise with a slow swell, scaled to unit mean power.
pub fn noise(colour: Colour, n: usize, rng: &mut Rng) -> Vec<f32> {
    let (mut b0, mut b1, mut b2, mut brown) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
    let swell_hz = rng.range(0.1, 1.0);
    let depth = rng.range(0.0, 0.5);
    let phase = rng.range(0.0, core::f32::consts::TAU);
    // The filters start at rest; the first WARM_UP samples are dropped so that the noise is
    // stationary from the first sample kept.
    const WARM_UP: usize = 2048;
    let mut out: Vec<f32> = (0..n + WARM_UP)
        .map(|i| {
            let white = rng.range(-1.0, 1.0);
            let v = match colour {
                Colour::White => white,
                Colour::Pink => {
                    b0 = 0.99765 * b0 + white * 0.099_046;
                    b1 = 0.96300 * b1 + white * 0.296_516_4;
                    b2 = 0.57000 * b2 + white * 1.052_691_3;
                    b0 + b1 + b2 + white * 0.1848
                }
                Colour::Brown => {
                    brown = 0.995 * brown + 0.1 * white;
                    brown
                }
            };
            let t = i.saturating_sub(WARM_UP) as f32 / RATE;
            v * (1.0 + depth * libm::sinf(core::f32::consts::TAU * swell_hz * t + phase))
        })
        .skip(WARM_UP)
        .collect();
    let power = out.iter().map(|v| v * v).sum::<f32>() / n.max(1) as f32;
    if power > 0.0 {
        let scale = 1.0 / power.sqrt();
        out.iter_mut().for_each(|v| *v *= scale);
    }
    out
}

/// Adds `noise` (unit mean power) to `x`, scaled so that the active power of `x` is
/// `snr_db` above the noise's mean power.
pub fn add_noise(x: &mut [f32], noise: &[f32], snr_db: f32) {
    let scale = (active_power(x) / libm::powf(10.0, snr_db / 10.0)).sqrt();
    for (v, n) in x.iter_mut().zip(noise) {
        *v += scale * n;
    }
}

/// Adds a small room: the direct sound plus a wet mix of ~150 sparse echoes at random
/// delays up to `rt60`, decaying by 60 dB over it. The tail lengthens the signal.
pub fn reverb(x: &[f32], rng: &mut Rng) -> Vec<f32> {
    let rt60 = rng.range(0.1, 0.4);
    let wet = rng.range(0.2, 0.6);
    let len = (rt60 * RATE) as usize;
    let mut out = x.to_vec();
    out.resize(x.len() + len, 0.0);
    for _ in 0..150 {
        let delay = 16 + rng.below(len - 16);
        let decay = libm::powf(10.0, -3.0 * delay as f32 / len as f32);
        let gain = wet * decay * rng.range(-1.0, 1.0) * 0.25;
        for (o, v) in out[delay..].iter_mut().zip(x) {
            *o += gain * v;
        }
    }
    out
}

/// Turns clean 16 kHz speech (full scale ±1) into the recorded utterance: silence around it,
/// with `noisy` a 30% chance of reverb and noise at 10-30 dB SNR, and a peak level drawn in
/// [0.1, 0.9] of full scale.
pub fn augment(speech: &[f32], noisy: bool, rng: &mut Rng) -> Vec<i16> {
    let lead = (rng.range(0.05, 0.3) * RATE) as usize;
    let trail = (rng.range(0.05, 0.3) * RATE) as usize;
    let mut x = vec![0.0; lead];
    x.extend_from_slice(speech);
    x.resize(lead + speech.len() + trail, 0.0);
    if noisy {
        if rng.chance(0.3) {
            x = reverb(&x, rng);
        }
        let colour = [Colour::White, Colour::Pink, Colour::Brown][rng.weighted(&[0.2, 0.4, 0.4])];
        let snr_db = rng.range(10.0, 30.0);
        let n = noise(colour, x.len(), rng);
        add_noise(&mut x, &n, snr_db);
    }
    let peak = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let gain = if peak > 0.0 {
        rng.range(0.1, 0.9) / peak
    } else {
        0.0
    };
    x.iter()
        .map(|v| libm::roundf(v * gain * 32767.0).clamp(-32768.0, 32767.0) as i16)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 0.5 s, 440 Hz burst: a stand-in for speech.
    fn burst() -> Vec<f32> {
        (0..8000)
            .map(|i| 0.5 * libm::sinf(core::f32::consts::TAU * 440.0 * i as f32 / RATE))
            .collect()
    }

    /// Power in the band around `hz` (a single DFT bin over the whole signal).
    fn band(x: &[f32], hz: f32) -> f32 {
        let (mut re, mut im) = (0.0f64, 0.0f64);
        for (i, v) in x.iter().enumerate() {
            let a = f64::from(core::f32::consts::TAU * hz * i as f32 / RATE);
            re += f64::from(*v) * a.cos();
            im += f64::from(*v) * a.sin();
        }
        (re * re + im * im) as f32
    }

    #[test]
    fn noise_colours_tilt_the_spectrum_the_right_way() {
        let mut rng = Rng::new(1);
        let n = 32000;
        let ratio = |c| {
            let x = noise(c, n, &mut Rng::new(9));
            let lo: f32 = (1..40).map(|k| band(&x, 100.0 + k as f32)).sum();
            let hi: f32 = (1..40).map(|k| band(&x, 4000.0 + k as f32)).sum();
            lo / hi
        };
        let (w, p, b) = (
            ratio(Colour::White),
            ratio(Colour::Pink),
            ratio(Colour::Brown),
        );
        assert!(w < 3.0 && p > 5.0 && b > 10.0 * p, "{w} {p} {b}");
        let x = noise(Colour::Pink, n, &mut rng);
        let power = x.iter().map(|v| v * v).sum::<f32>() / n as f32;
        assert!((power - 1.0).abs() < 1e-3);
    }

    #[test]
    fn padding_level_and_noise_floor_hold() {
        let speech = burst();
        for seed in 0..20 {
            let clean = augment(&speech, false, &mut Rng::new(seed));
            let peak = clean.iter().map(|v| v.unsigned_abs()).max().unwrap();
            assert!((3200..=29500).contains(&peak), "peak {peak}");
            assert!(clean.len() >= 8000 + 1600 && clean.len() <= 8000 + 9600);
            assert_eq!(clean[0], 0, "leading silence");
            let noisy = augment(&speech, true, &mut Rng::new(seed));
            let filled = noisy[..160].iter().filter(|&&v| v != 0).count();
            assert!(filled > 100, "noise fills the silence: {filled} of 160");
            assert_eq!(noisy, augment(&speech, true, &mut Rng::new(seed)));
        }
    }

    #[test]
    fn noise_is_added_at_the_requested_snr_against_the_active_frames() {
        // Speech in a quarter of the signal: the SNR ignores the silence around it.
        let mut x = vec![0.0; 24000];
        x.extend(burst());
        let n = noise(Colour::Brown, x.len(), &mut Rng::new(2));
        for snr in [10.0, 20.0, 30.0] {
            let mut y = x.clone();
            add_noise(&mut y, &n, snr);
            let added: f32 = y
                .iter()
                .zip(&x)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f32>()
                / y.len() as f32;
            let measured = 10.0 * libm::log10f(0.125 / added);
            assert!((measured - snr).abs() < 0.05, "{measured} vs {snr}");
        }
    }

    #[test]
    fn reverb_keeps_the_direct_sound_and_adds_a_decaying_tail() {
        let mut impulse = vec![0.0; 100];
        impulse[0] = 1.0;
        let out = reverb(&impulse, &mut Rng::new(4));
        assert_eq!(out[0], 1.0);
        assert!(out.len() >= 100 + 1600);
        let early: f32 = out[16..800].iter().map(|v| v * v).sum();
        let late: f32 = out[out.len() - 800..].iter().map(|v| v * v).sum();
        assert!(early > 10.0 * late, "{early} vs {late}");
    }
}
