//! Rational-ratio resampling (espeak-ng's 22,050 Hz to the front-end's 16 kHz) with a
//! Kaiser-windowed sinc low-pass, so nothing above the new Nyquist frequency folds back into
//! the mel bands the recogniser listens to.
//!
//! A polyphase table holds one set of taps per output phase (`to / gcd` of them), computed
//! once; each output sample is then one dot product. The taps of each phase are normalised to
//! sum to one, so a constant stays constant. All math is plain Rust (`libm` for the sine), so
//! the same input gives the same bits on every machine.

/// Kaiser window shape: about 85 dB of stop-band attenuation.
const BETA: f64 = 8.6;

/// A resampler from one fixed rate to another.
#[derive(Clone, Debug)]
pub struct Resampler {
    up: usize,
    down: usize,
    half: usize,
    /// `up` phases × `2 * half` taps, phase-major.
    taps: Vec<f32>,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The zeroth-order modified Bessel function of the first kind (power series).
fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term, mut k) = (1.0, 1.0, 1.0);
    while term > 1e-12 * sum {
        term *= (x / (2.0 * k)) * (x / (2.0 * k));
        sum += term;
        k += 1.0;
    }
    sum
}

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz whose low-pass passes up to about
    /// `cutoff_hz - transition / 2` and stops from `cutoff_hz + transition / 2`, where the
    /// transition width is about `from / half` Hz (`half` taps each side, in input samples).
    pub fn new(from: u32, to: u32, cutoff_hz: f64, half: usize) -> Resampler {
        let g = gcd(u64::from(from), u64::from(to));
        let (up, down) = ((u64::from(to) / g) as usize, (u64::from(from) / g) as usize);
        let fc = cutoff_hz / f64::from(from); // cycles per input sample
        let norm = bessel_i0(BETA);
        let mut taps = Vec::with_capacity(up * 2 * half);
        for phase in 0..up {
            let frac = phase as f64 / up as f64;
            let start = taps.len();
            for k in 0..2 * half {
                // Tap k weighs input sample idx + k + 1 - half, at time offset t from the
                // output instant.
                let t = (k as f64 + 1.0 - half as f64) - frac;
                let x = 2.0 * fc * t;
                let sinc = if x.abs() < 1e-12 {
                    1.0
                } else {
                    libm::sin(core::f64::consts::PI * x) / (core::f64::consts::PI * x)
                };
                let r = t / half as f64;
                let window = if r.abs() >= 1.0 {
                    0.0
                } else {
                    bessel_i0(BETA * (1.0 - r * r).sqrt()) / norm
                };
                taps.push(sinc * window);
            }
            let sum: f64 = taps[start..].iter().sum();
            for tap in &mut taps[start..] {
                *tap /= sum;
            }
        }
        Resampler {
            up,
            down,
            half,
            taps: taps.into_iter().map(|t| t as f32).collect(),
        }
    }

    /// Resamples a whole signal; samples outside it count as zero. The output has
    /// `ceil(len * to / from)` samples.
    pub fn run(&self, input: &[f32]) -> Vec<f32> {
        let n_out = (input.len() * self.up).div_ceil(self.down);
        let width = 2 * self.half;
        (0..n_out)
            .map(|m| {
                let (idx, phase) = ((m * self.down) / self.up, (m * self.down) % self.up);
                let taps = &self.taps[phase * width..(phase + 1) * width];
                let first = idx as isize + 1 - self.half as isize;
                taps.iter()
                    .enumerate()
                    .filter_map(|(k, tap)| {
                        let i = first + k as isize;
                        (i >= 0 && (i as usize) < input.len()).then(|| tap * input[i as usize])
                    })
                    .sum()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f64, rate: f64, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (2.0 * core::f64::consts::PI * freq * i as f64 / rate).sin() as f32)
            .collect()
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt()
    }

    #[test]
    fn passes_speech_band_and_stops_what_would_alias() {
        let r = Resampler::new(22050, 16000, 7500.0, 64);
        let n = 22050;
        let out = r.run(&tone(1000.0, 22050.0, n));
        assert_eq!(out.len(), 16000);
        // Away from the edges, a 1 kHz tone keeps its level and its frequency.
        let mid = &out[1000..15000];
        let expected = tone(1000.0, 16000.0, 16000);
        let err = mid
            .iter()
            .zip(&expected[1000..15000])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(err < 2e-3, "1 kHz error {err}");
        assert!(
            (rms(&r.run(&tone(6500.0, 22050.0, n))[500..15500]) - core::f32::consts::FRAC_1_SQRT_2)
                .abs()
                < 0.01
        );
        // 9 kHz would fold to 7 kHz, inside the mel range: it must be gone.
        let folded = rms(&r.run(&tone(9000.0, 22050.0, n))[500..15500]);
        assert!(folded < 1e-3, "9 kHz leaks at {folded}");
        let dc = r.run(&[0.5; 2000]);
        assert!(dc[200..1200].iter().all(|v| (v - 0.5).abs() < 1e-5));
    }
}
