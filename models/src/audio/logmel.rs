//! One frame of log-mel features: 400 samples → Hann window → 512-point real FFT → power
//! spectrum → 40 triangular mel filters → natural log, exactly as `features.py` defines it.
//!
//! The window and the filter weights are computed once (in `f64`, like numpy, then rounded to
//! `f32`) into a [`LogMel`]; the filters are stored sparsely, only the bins each triangle
//! covers, since every FFT bin lies under at most two neighbouring triangles. A frame then
//! costs one FFT (microfft, in place) and about 400 multiply-adds, with no allocation.

use super::{FRAME_LEN, F_MAX, F_MIN, LOG_FLOOR, N_BINS, N_FFT, N_MELS, SAMPLE_RATE};

/// An upper bound on the non-zero filter weights: each bin is under at most two triangles.
const MAX_WEIGHTS: usize = 2 * N_BINS;

/// The HTK mel scale.
fn hz_to_mel(hz: f64) -> f64 {
    2595.0 * libm::log10(1.0 + hz / 700.0)
}

/// The inverse of [`hz_to_mel`].
fn mel_to_hz(mel: f64) -> f64 {
    700.0 * (libm::pow(10.0, mel / 2595.0) - 1.0)
}

/// The per-frame tables: window and sparse mel filterbank.
#[derive(Clone, Debug)]
pub struct LogMel {
    /// Periodic Hann window of [`FRAME_LEN`].
    window: [f32; FRAME_LEN],
    /// First FFT bin under filter `m`.
    first: [u16; N_MELS],
    /// Filter `m`'s weights are `weights[start[m]..start[m + 1]]`, for bins from `first[m]`.
    start: [u16; N_MELS + 1],
    weights: [f32; MAX_WEIGHTS],
}

impl Default for LogMel {
    fn default() -> Self {
        Self::new()
    }
}

impl LogMel {
    /// Computes the tables.
    pub fn new() -> LogMel {
        let mut window = [0.0f32; FRAME_LEN];
        for (n, w) in window.iter_mut().enumerate() {
            let phase = 2.0 * core::f64::consts::PI * n as f64 / FRAME_LEN as f64;
            *w = (0.5 - 0.5 * libm::cos(phase)) as f32;
        }
        // N_MELS + 2 edges equally spaced in mel (numpy's linspace: start + i * step).
        let (lo, hi) = (hz_to_mel(F_MIN), hz_to_mel(F_MAX));
        let step = (hi - lo) / (N_MELS + 1) as f64;
        let edge = |i: usize| {
            if i == N_MELS + 1 {
                F_MAX
            } else {
                mel_to_hz(lo + i as f64 * step)
            }
        };
        let mut tables = LogMel {
            window,
            first: [0; N_MELS],
            start: [0; N_MELS + 1],
            weights: [0.0; MAX_WEIGHTS],
        };
        let mut used = 0;
        for m in 0..N_MELS {
            let (lo, centre, hi) = (edge(m), edge(m + 1), edge(m + 2));
            tables.start[m] = used as u16;
            let mut first = None;
            for k in 0..N_BINS {
                let f = k as f64 * f64::from(SAMPLE_RATE) / N_FFT as f64;
                let rising = (f - lo) / (centre - lo);
                let falling = (hi - f) / (hi - centre);
                let w = rising.min(falling).max(0.0);
                if w > 0.0 {
                    // The triangle's bins are contiguous: record from the first one on.
                    first.get_or_insert(k);
                    tables.weights[used] = w as f32;
                    used += 1;
                } else if first.is_some() {
                    break;
                }
            }
            tables.first[m] = first.unwrap_or(0) as u16;
        }
        tables.start[N_MELS] = used as u16;
        tables
    }

    /// Computes the log-mel energies of one frame into `out`, using `fft` as scratch.
    pub fn frame(&self, samples: &[i16; FRAME_LEN], fft: &mut [f32; N_FFT], out: &mut [f32]) {
        for ((x, &s), &w) in fft.iter_mut().zip(samples).zip(&self.window) {
            *x = f32::from(s) / 32768.0 * w;
        }
        fft[FRAME_LEN..].fill(0.0);
        let spectrum = microfft::real::rfft_512(fft);
        // microfft packs the (real) Nyquist coefficient into the imaginary part of DC; no
        // filter reaches the Nyquist bin (F_MAX < SAMPLE_RATE / 2), so clearing it leaves
        // bin 0 as the plain DC term and every bin a filter reads is `spectrum[k]`.
        spectrum[0].im = 0.0;
        let power = |k: usize| spectrum[k].norm_sqr();
        for (m, energy) in out.iter_mut().enumerate().take(N_MELS) {
            let weights = &self.weights[self.start[m] as usize..self.start[m + 1] as usize];
            let first = self.first[m] as usize;
            let sum: f32 = weights
                .iter()
                .enumerate()
                .map(|(i, w)| w * power(first + i))
                .sum();
            *energy = libm::logf(sum + LOG_FLOOR);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_tile_the_mel_range_like_features_py() {
        let t = LogMel::new();
        // Every filter covers some bins (the first, 20-111 Hz, covers bins 1-3) and peaks
        // near 1 where its centre falls between bins.
        for m in 0..N_MELS {
            let (a, b) = (t.start[m] as usize, t.start[m + 1] as usize);
            assert!(b > a, "filter {m} is empty");
            let peak = t.weights[a..b].iter().copied().fold(0.0, f32::max);
            assert!(peak > 0.4 && peak <= 1.0, "filter {m} peaks at {peak}");
        }
        assert_eq!(t.first[0], 1);
        // 7600 Hz is bin 243.2: the last filter ends at bin 243, below Nyquist (256), which
        // `frame` relies on.
        let last = N_MELS - 1;
        let end = t.first[last] as usize + (t.start[N_MELS] - t.start[last]) as usize;
        assert_eq!(end, 244);
        assert!(t.start[N_MELS] as usize <= MAX_WEIGHTS);
    }

    #[test]
    fn silence_is_the_log_floor_and_a_tone_lights_its_own_band() {
        let t = LogMel::new();
        let mut fft = [0.0; N_FFT];
        let mut out = [0.0; N_MELS];
        t.frame(&[0; FRAME_LEN], &mut fft, &mut out);
        assert!(out.iter().all(|&v| v == libm::logf(LOG_FLOOR)));
        let tone: [i16; FRAME_LEN] = core::array::from_fn(|n| {
            (8000.0 * libm::sin(2.0 * core::f64::consts::PI * 1000.0 * n as f64 / 16000.0)) as i16
        });
        t.frame(&tone, &mut fft, &mut out);
        let loudest = (0..N_MELS)
            .max_by(|&a, &b| out[a].total_cmp(&out[b]))
            .unwrap();
        let centre = |m: usize| {
            let lo = hz_to_mel(F_MIN);
            mel_to_hz(lo + (m + 1) as f64 * (hz_to_mel(F_MAX) - lo) / (N_MELS + 1) as f64)
        };
        assert!(
            (centre(loudest) - 1000.0).abs() < 120.0,
            "band {loudest} at {} Hz",
            centre(loudest)
        );
    }
}
