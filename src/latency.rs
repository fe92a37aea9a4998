//! Latency statistics as the CLI reports them (`bench`, `fps`): the runtime's
//! [`FrameStats`] in microseconds, ready for tables and JSON.

use edgetrim_runtime::fps::FrameStats;
use serde::Serialize;

/// Statistics of one series of latencies, in microseconds.
#[derive(Serialize, Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    /// Frames measured.
    pub frames: usize,
    /// Frames per second at the mean latency.
    pub fps: f64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 95th percentile.
    pub p95_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Fastest.
    pub min_us: f64,
    /// Slowest.
    pub max_us: f64,
}

impl From<FrameStats> for Latency {
    fn from(s: FrameStats) -> Self {
        let us = |ns: u64| ns as f64 / 1e3;
        Latency {
            frames: s.frames,
            fps: s.fps,
            mean_us: us(s.mean_ns),
            p50_us: us(s.p50_ns),
            p95_us: us(s.p95_ns),
            p99_us: us(s.p99_ns),
            min_us: us(s.min_ns),
            max_us: us(s.max_ns),
        }
    }
}
