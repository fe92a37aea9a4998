//! Calibration statistics: from the values an activation took on calibration inputs to the
//! float range its int8 grid will cover.
//!
//! The grid has 256 steps; the wider the range, the coarser each step. Covering every
//! value ever seen (**minmax**) lets one outlier coarsen the grid for all the others, so
//! the other two methods clip:
//! - **percentile**: the smallest symmetric threshold `T` that 99.99 % of the absolute
//!   values stay under (onnxruntime's percentile calibrator);
//! - **entropy**: TensorRT's KL-divergence calibration ("8-bit Inference with TensorRT",
//!   Migacz 2017): over a 2048-bin histogram of `|x|`, the threshold whose 128-level
//!   quantized distribution loses the least information (Kullback–Leibler divergence) from
//!   the clipped reference distribution.
//!
//! Both clip the observed `[min, max]` to `[-T, T]`, and every range is widened to
//! contain 0 so that zero (padding, ReLU's floor) is exact on the grid.
//!
//! Statistics are gathered in two sweeps over the calibration inputs: [`Stats::observe`]
//! the range, then (for the clipping methods) [`Stats::observe_histogram`] the histogram
//! over `[0, max |x|]`, so bins never need re-binning and the result does not depend on
//! the order of the inputs.

use std::fmt;
use std::str::FromStr;

/// How an activation's range is chosen from its calibration values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Method {
    /// The observed minimum and maximum.
    #[default]
    MinMax,
    /// Clipped at the 99.99th percentile of `|x|`.
    Percentile,
    /// Clipped where the KL divergence of the quantized distribution is least.
    Entropy,
}

impl Method {
    /// The method's name, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Method::MinMax => "minmax",
            Method::Percentile => "percentile",
            Method::Entropy => "entropy",
        }
    }

    /// Whether the method needs the histogram sweep.
    pub fn needs_histogram(self) -> bool {
        self != Method::MinMax
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Method, String> {
        match s {
            "minmax" => Ok(Method::MinMax),
            "percentile" => Ok(Method::Percentile),
            "entropy" => Ok(Method::Entropy),
            other => Err(format!(
                "unknown calibration method {other:?} (minmax, percentile or entropy)"
            )),
        }
    }
}

/// Histogram bins over `[0, max |x|]`.
pub const BINS: usize = 2048;
/// The percentile method keeps this share of `|x|` inside the range.
pub const PERCENTILE: f64 = 99.99;
/// Quantization levels the entropy method models on one side of zero (int8: 128).
const LEVELS: usize = 128;

/// What one activation did on the calibration inputs.
#[derive(Clone, Debug)]
pub struct Stats {
    min: f32,
    max: f32,
    hist: Vec<u64>,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            hist: Vec::new(),
        }
    }
}

impl Stats {
    /// First sweep: widens the range to cover `values` (non-finite values are ignored).
    pub fn observe(&mut self, values: &[f32]) {
        for &v in values.iter().filter(|v| v.is_finite()) {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
    }

    /// The largest magnitude seen in the first sweep (0 before any value).
    pub fn abs_max(&self) -> f32 {
        if self.min > self.max {
            return 0.0;
        }
        self.min.abs().max(self.max.abs())
    }

    /// Second sweep: counts `|values|` into [`BINS`] bins over `[0, abs_max]`.
    pub fn observe_histogram(&mut self, values: &[f32]) {
        if self.hist.is_empty() {
            self.hist = vec![0; BINS];
        }
        let top = self.abs_max();
        if top == 0.0 {
            self.hist[0] += values.len() as u64;
            return;
        }
        let per_unit = BINS as f32 / top;
        for &v in values.iter().filter(|v| v.is_finite()) {
            let bin = ((v.abs() * per_unit) as usize).min(BINS - 1);
            self.hist[bin] += 1;
        }
    }

    /// The range to quantize over: contains 0, clipped by `method` (which must have had
    /// its histogram sweep), `(0, 0)` when nothing was observed.
    pub fn range(&self, method: Method) -> (f32, f32) {
        if self.min > self.max {
            return (0.0, 0.0);
        }
        let (mut lo, mut hi) = (self.min.min(0.0), self.max.max(0.0));
        let threshold = match method {
            Method::MinMax => None,
            _ if self.hist.iter().all(|&c| c == 0) => None,
            Method::Percentile => Some(percentile_threshold(&self.hist, PERCENTILE)),
            Method::Entropy => Some(entropy_threshold(&self.hist)),
        };
        if let Some(bins) = threshold {
            let t = self.abs_max() * bins as f32 / BINS as f32;
            lo = lo.max(-t);
            hi = hi.min(t);
        }
        (lo, hi)
    }
}

/// Upper edge, in bins, of the smallest prefix holding `percent` of the counts.
fn percentile_threshold(hist: &[u64], percent: f64) -> usize {
    let total: u64 = hist.iter().sum();
    let want = (total as f64 * percent / 100.0).ceil() as u64;
    let mut seen = 0;
    for (i, &c) in hist.iter().enumerate() {
        seen += c;
        if seen >= want {
            return i + 1;
        }
    }
    hist.len()
}

/// TensorRT's threshold search: for each candidate edge `i` (in bins, from [`LEVELS`] to
/// the end), the reference distribution `P` is the first `i` bins with everything beyond
/// folded into the last; `Q` is those `i` bins merged into [`LEVELS`] groups and spread
/// back evenly over each group's non-empty bins. The `i` minimising `KL(P || Q)` wins
/// (the first one on ties). Empty bins of `Q` where `P` has mass get a small epsilon.
fn entropy_threshold(hist: &[u64]) -> usize {
    let n = hist.len();
    if n <= LEVELS {
        return n;
    }
    let mut best = (f64::INFINITY, n);
    let mut q = vec![0f64; n];
    for i in LEVELS..=n {
        let outliers: u64 = hist[i..].iter().sum();
        let p_total: f64 = hist[..i].iter().sum::<u64>() as f64 + outliers as f64;
        if p_total == 0.0 {
            continue;
        }
        // Q: merge the i bins into LEVELS groups, spread each group's mass over its
        // non-empty bins.
        let per = i as f64 / LEVELS as f64;
        for j in 0..LEVELS {
            let start = (j as f64 * per) as usize;
            let stop = if j + 1 == LEVELS {
                i
            } else {
                ((j + 1) as f64 * per) as usize
            };
            let group = &hist[start..stop];
            let mass: u64 = group.iter().sum();
            let filled = group.iter().filter(|&&c| c > 0).count();
            for (k, &c) in group.iter().enumerate() {
                q[start + k] = if c > 0 {
                    mass as f64 / filled as f64
                } else {
                    0.0
                };
            }
        }
        let q_total: f64 = q[..i].iter().sum();
        let mut kl = 0.0;
        for k in 0..i {
            let mut p = hist[k] as f64;
            if k + 1 == i {
                p += outliers as f64;
            }
            if p == 0.0 {
                continue;
            }
            let p = p / p_total;
            let q = (q[k] / q_total.max(f64::MIN_POSITIVE)).max(1e-12);
            kl += p * (p / q).ln();
        }
        if kl < best.0 {
            best = (kl, i);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(values: &[f32]) -> Stats {
        let mut s = Stats::default();
        s.observe(values);
        s.observe_histogram(values);
        s
    }

    #[test]
    fn minmax_covers_everything_and_zero() {
        let s = stats(&[0.5, 2.0, 1.0, f32::NAN]);
        assert_eq!(s.range(Method::MinMax), (0.0, 2.0));
        let s = stats(&[-3.0, -1.0]);
        assert_eq!(s.range(Method::MinMax), (-3.0, 0.0));
        assert_eq!(Stats::default().range(Method::Entropy), (0.0, 0.0));
    }

    /// A bulk in [-1, 1] and one outlier: minmax keeps it, the clipping methods drop it.
    /// (Entropy cannot clip below [`LEVELS`] bins: the outlier must stay within
    /// `BINS / LEVELS` = 16x the bulk for the bulk's edge to be a candidate.)
    #[test]
    fn clipping_methods_ignore_a_rare_outlier() {
        let mut v: Vec<f32> = (0..100_000).map(|i| (i as f32 / 50_000.0) - 1.0).collect();
        v.push(10.0);
        let s = stats(&v);
        assert_eq!(s.range(Method::MinMax), (-1.0, 10.0));
        for m in [Method::Percentile, Method::Entropy] {
            let (lo, hi) = s.range(m);
            assert!((0.9..2.0).contains(&hi), "{m}: hi {hi}");
            assert!((-1.0..=-0.9).contains(&lo), "{m}: lo {lo}");
        }
    }

    #[test]
    fn entropy_keeps_a_uniform_distribution_whole() {
        // Nothing to gain by clipping a flat distribution: the threshold is the maximum.
        let v: Vec<f32> = (0..20_000).map(|i| i as f32 / 20_000.0).collect();
        let (_, hi) = stats(&v).range(Method::Entropy);
        assert!(hi > 0.95, "{hi}");
    }

    #[test]
    fn method_names_round_trip() {
        for m in [Method::MinMax, Method::Percentile, Method::Entropy] {
            assert_eq!(m.name().parse::<Method>(), Ok(m));
        }
        assert!("kl".parse::<Method>().unwrap_err().contains("minmax"));
    }
}
