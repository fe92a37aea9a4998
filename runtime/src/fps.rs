//! Measuring frame rate and latency the same way on a microcontroller and on a host.
//!
//! Edge benchmarks are only comparable when device and host compute the same statistics
//! from the same kind of samples, so this module has no allocation and no `std`:
//! - a [`Clock`] is anything that tells nanoseconds — a Cortex-M cycle counter wrapped in
//!   [`CounterClock`], or [`StdClock`] (`std::time::Instant`) on a host;
//! - an [`FpsMeter`] keeps the last `N` frame latencies in a fixed ring buffer, skips a
//!   configurable number of warm-up frames (caches, branch predictors, lazy page faults),
//!   and reports FPS, mean, nearest-rank percentiles, min and max ([`FrameStats`]);
//! - [`profile_run`] runs a [`Session`] once and adds each step's time to a per-step table,
//!   for "which node is slow" profiles.

use crate::error::{Error, Result};
use crate::session::Session;
use heapless::HistoryBuf;

/// A monotonic time source in nanoseconds.
///
/// `now_ns` takes `&mut self` so that a clock built on a narrow hardware counter can
/// extend it to 64 bits as it is read (see [`CounterClock`]).
pub trait Clock {
    /// Nanoseconds since an arbitrary fixed origin; never decreases.
    fn now_ns(&mut self) -> u64;
}

/// A clock over a free-running hardware counter that wraps, e.g. the Cortex-M DWT cycle
/// counter (`CYCCNT`, 32 bits, counting up at the core clock) or SysTick (24 bits, counting
/// down: read it as `0xFF_FFFF - SYST_CVR`).
///
/// Each read extends the counter to 64 bits, so it must be read at least once per wrap
/// period (2^bits / hz seconds: about 9 s for a 32-bit counter at 480 MHz).
///
/// ```
/// use edgetrim_runtime::fps::{Clock, CounterClock};
/// let mut cycles = 0u32;
/// // On a device: CounterClock::new(|| cortex_m::peripheral::DWT::cycle_count(), 480_000_000, 32)
/// let mut clock = CounterClock::new(move || { cycles = cycles.wrapping_add(480); cycles }, 480_000_000, 32);
/// let t0 = clock.now_ns();
/// assert_eq!(clock.now_ns() - t0, 1_000);
/// ```
pub struct CounterClock<F: FnMut() -> u32> {
    read: F,
    hz: u64,
    mask: u64,
    last: u64,
    ticks: u64,
}

impl<F: FnMut() -> u32> CounterClock<F> {
    /// A clock reading `read()` (an up-counting `bits`-wide counter at `hz` ticks per second).
    pub fn new(read: F, hz: u32, bits: u32) -> Self {
        let mask = if bits >= 32 {
            u64::from(u32::MAX)
        } else {
            (1u64 << bits) - 1
        };
        let mut clock = CounterClock {
            read,
            hz: u64::from(hz.max(1)),
            mask,
            last: 0,
            ticks: 0,
        };
        clock.last = u64::from((clock.read)()) & mask;
        clock
    }
}

impl<F: FnMut() -> u32> CounterClock<F> {
    /// Reads the counter and returns the ticks since [`CounterClock::new`], extended to 64
    /// bits. Branch-free and division-free, so it is cheap enough to call between steps of
    /// an inference (to keep up with a fast-wrapping counter such as a 24-bit SysTick) and
    /// executes the same instructions whatever the counter reads.
    pub fn ticks(&mut self) -> u64 {
        let raw = u64::from((self.read)()) & self.mask;
        self.ticks += raw.wrapping_sub(self.last) & self.mask;
        self.last = raw;
        self.ticks
    }
}

impl<F: FnMut() -> u32> Clock for CounterClock<F> {
    fn now_ns(&mut self) -> u64 {
        self.ticks();
        // Split so that ticks * 1e9 cannot overflow: (t / hz) s + (t % hz) ticks.
        (self.ticks / self.hz) * 1_000_000_000 + (self.ticks % self.hz) * 1_000_000_000 / self.hz
    }
}

/// `std::time::Instant` as a [`Clock`].
#[cfg(feature = "std")]
#[derive(Clone, Copy, Debug)]
pub struct StdClock {
    origin: std::time::Instant,
}

#[cfg(feature = "std")]
impl StdClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        StdClock {
            origin: std::time::Instant::now(),
        }
    }
}

#[cfg(feature = "std")]
impl Default for StdClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "std")]
impl Clock for StdClock {
    fn now_ns(&mut self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Statistics over the frames in an [`FpsMeter`]'s window, all latencies in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FrameStats {
    /// Frames in the window.
    pub frames: usize,
    /// Frames per second of measured work: `frames / sum(latencies)`.
    pub fps: f64,
    /// Mean latency (rounded down).
    pub mean_ns: u64,
    /// Median latency (nearest rank).
    pub p50_ns: u64,
    /// 95th percentile latency (nearest rank).
    pub p95_ns: u64,
    /// 99th percentile latency (nearest rank).
    pub p99_ns: u64,
    /// Fastest frame.
    pub min_ns: u64,
    /// Slowest frame.
    pub max_ns: u64,
}

/// The nearest-rank percentile of ascending `sorted` (non-empty): the smallest value with
/// at least `pct`% of the samples at or below it.
fn nearest_rank(sorted: &[u64], pct: u32) -> u64 {
    let n = sorted.len();
    let rank = (pct.min(100) as usize * n).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// Frame latencies over a sliding window of the last `N` frames, after `warmup` frames
/// that are measured but not kept.
///
/// ```
/// use edgetrim_runtime::fps::{Clock, FpsMeter};
/// # struct Ticker(u64);
/// # impl Clock for Ticker {
/// #     fn now_ns(&mut self) -> u64 { self.0 += 500; self.0 }
/// # }
/// let mut clock = Ticker(0); // StdClock::new() on a host, CounterClock on a device
/// let mut meter = FpsMeter::<64>::new(2);
/// for _ in 0..10 {
///     meter.begin_frame(&mut clock);
///     // session.run()?;
///     meter.end_frame(&mut clock);
/// }
/// let stats = meter.stats().unwrap();
/// assert_eq!((stats.frames, stats.p50_ns), (8, 500));
/// ```
pub struct FpsMeter<const N: usize> {
    window: HistoryBuf<u64, N>,
    warmup_left: u32,
    started_ns: Option<u64>,
}

impl<const N: usize> FpsMeter<N> {
    /// A meter that ignores the first `warmup` frames.
    pub const fn new(warmup: u32) -> Self {
        FpsMeter {
            window: HistoryBuf::new(),
            warmup_left: warmup,
            started_ns: None,
        }
    }

    /// Marks the start of a frame.
    pub fn begin_frame(&mut self, clock: &mut impl Clock) {
        self.started_ns = Some(clock.now_ns());
    }

    /// Marks the end of the frame begun last and records its latency (does nothing
    /// without a matching [`FpsMeter::begin_frame`]).
    pub fn end_frame(&mut self, clock: &mut impl Clock) {
        let end = clock.now_ns();
        if let Some(start) = self.started_ns.take() {
            self.record(end.saturating_sub(start));
        }
    }

    /// Records one frame's latency measured elsewhere.
    pub fn record(&mut self, latency_ns: u64) {
        if self.warmup_left > 0 {
            self.warmup_left -= 1;
        } else {
            self.window.write(latency_ns);
        }
    }

    /// Frames currently in the window (at most `N`).
    pub fn frames(&self) -> usize {
        self.window.len()
    }

    /// Statistics over the window; `None` before the first frame past warm-up.
    ///
    /// Sorts a copy of the window on the stack (`N * 8` bytes).
    pub fn stats(&self) -> Option<FrameStats> {
        let n = self.window.len();
        if n == 0 {
            return None;
        }
        let mut sorted = [0u64; N];
        sorted[..n].copy_from_slice(self.window.as_slice());
        let sorted = &mut sorted[..n];
        sorted.sort_unstable();
        let total: u64 = sorted.iter().fold(0u64, |a, &v| a.saturating_add(v));
        Some(FrameStats {
            frames: n,
            fps: if total == 0 {
                f64::INFINITY
            } else {
                n as f64 * 1e9 / total as f64
            },
            mean_ns: total / n as u64,
            p50_ns: nearest_rank(sorted, 50),
            p95_ns: nearest_rank(sorted, 95),
            p99_ns: nearest_rank(sorted, 99),
            min_ns: sorted[0],
            max_ns: sorted[n - 1],
        })
    }
}

/// Runs `session` once, adding the time of step `k` to `per_step_ns[k]`; returns the whole
/// run's time. Step names and op types come from [`Session::step_info`].
///
/// `per_step_ns` needs at least [`Session::step_count`] slots (a
/// [`Error::Capacity`] otherwise, before anything runs).
pub fn profile_run(
    session: &mut Session<'_>,
    clock: &mut impl Clock,
    per_step_ns: &mut [u64],
) -> Result<u64> {
    if per_step_ns.len() < session.step_count() {
        return Err(Error::Capacity {
            what: "profile slots",
            limit: per_step_ns.len(),
        });
    }
    let start = clock.now_ns();
    let mut last = start;
    session.run_with(|k| {
        let now = clock.now_ns();
        per_step_ns[k] += now.saturating_sub(last);
        last = now;
    })?;
    Ok(last.saturating_sub(start))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    /// A clock that advances by a scripted amount at each read.
    struct FakeClock {
        now: u64,
        steps: &'static [u64],
        next: usize,
    }

    impl Clock for FakeClock {
        fn now_ns(&mut self) -> u64 {
            let t = self.now;
            self.now += self.steps[self.next % self.steps.len()];
            self.next += 1;
            t
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut meter = FpsMeter::<128>::new(0);
        // 1..=100 in a scrambled order.
        for i in 0..100u64 {
            meter.record((i * 37) % 100 + 1);
        }
        let s = meter.stats().unwrap();
        assert_eq!(s.frames, 100);
        assert_eq!((s.p50_ns, s.p95_ns, s.p99_ns), (50, 95, 99));
        assert_eq!((s.min_ns, s.max_ns, s.mean_ns), (1, 100, 50));
        assert!((s.fps - 100.0 * 1e9 / 5050.0).abs() < 1e-6);
    }

    #[test]
    fn nearest_rank_small_samples() {
        assert_eq!(nearest_rank(&[7], 50), 7);
        assert_eq!(nearest_rank(&[1, 2, 3, 4], 50), 2);
        assert_eq!(nearest_rank(&[1, 2, 3, 4], 51), 3);
        assert_eq!(nearest_rank(&[1, 2, 3, 4], 99), 4);
        assert_eq!(nearest_rank(&[1, 2, 3, 4], 0), 1);
        assert_eq!(nearest_rank(&[1, 2, 3, 4], 100), 4);
    }

    #[test]
    fn warmup_is_excluded_and_window_slides() {
        // Each frame reads the clock twice: begin (+latency) then end (+gap).
        let mut clock = FakeClock {
            now: 0,
            steps: &[1_000, 5],
            next: 0,
        };
        let mut meter = FpsMeter::<4>::new(3);
        for _ in 0..3 {
            meter.begin_frame(&mut clock);
            meter.end_frame(&mut clock);
        }
        assert!(meter.stats().is_none(), "warm-up frames must not count");
        for latency in [10, 20, 30, 40, 50, 60] {
            meter.record(latency);
        }
        let s = meter.stats().unwrap();
        assert_eq!(s.frames, 4);
        assert_eq!((s.min_ns, s.max_ns, s.p50_ns, s.mean_ns), (30, 60, 40, 45));
    }

    #[test]
    fn begin_end_measure_the_clock() {
        let mut clock = FakeClock {
            now: 0,
            // The unmatched end reads +1; then each begin reads +250 and each end +1.
            steps: &[1, 250],
            next: 0,
        };
        let mut meter = FpsMeter::<8>::new(0);
        meter.end_frame(&mut clock); // unmatched: ignored
        for _ in 0..4 {
            meter.begin_frame(&mut clock);
            meter.end_frame(&mut clock);
        }
        let s = meter.stats().unwrap();
        assert_eq!((s.frames, s.min_ns, s.max_ns), (4, 250, 250));
        assert_eq!(s.fps, 4e6);
    }

    #[test]
    fn profile_run_charges_each_step() {
        use edgetrim_compress::build::{dt, ModelBuilder};
        let mut m = ModelBuilder::new(17);
        m.input("x", dt::FLOAT, &[4]);
        m.node("Add", &["x", "x"], &["a"], vec![]);
        m.node("Mul", &["a", "x"], &["y"], vec![]);
        m.output("y", dt::FLOAT);
        let bytes = m.build();
        let model = crate::Model::parse(&bytes).unwrap();
        let mut arena = crate::Arena::<4096>::new();
        let mut session = Session::new(&model, &[], &mut arena.0).unwrap();
        let mut clock = FakeClock {
            now: 0,
            steps: &[1, 2, 3, 1000],
            next: 0,
        };
        let mut per_step = [0u64; 2];
        // Reads: start, after step 0, after step 1; each read advances by the next amount.
        assert_eq!(profile_run(&mut session, &mut clock, &mut per_step), Ok(3));
        assert_eq!(per_step, [1, 2]);
        assert_eq!(
            profile_run(&mut session, &mut clock, &mut per_step),
            Ok(1001)
        );
        assert_eq!(per_step, [1001, 3]);
        assert!(matches!(
            profile_run(&mut session, &mut clock, &mut per_step[..1]),
            Err(Error::Capacity { limit: 1, .. })
        ));
    }

    #[test]
    fn counter_clock_extends_a_wrapping_counter() {
        // A 24-bit counter at 1 MHz that advances 0x40_0000 ticks (a quarter wrap) per read.
        let mut raw = 0xF0_0000u32;
        let mut clock = CounterClock::new(
            move || {
                raw = (raw + 0x40_0000) & 0xFF_FFFF;
                raw
            },
            1_000_000,
            24,
        );
        let mut prev = clock.now_ns();
        for _ in 0..10 {
            let now = clock.now_ns();
            assert_eq!(now - prev, 0x40_0000 * 1_000);
            prev = now;
        }
    }

    #[test]
    fn counter_clock_ticks_keep_up_with_wraps_between_reads() {
        // A 24-bit counter that advances three quarters of a wrap per read: polled at every
        // read, 8 reads make 6 whole wraps, which the 64-bit tick count keeps.
        let mut raw = 0u32;
        let mut clock = CounterClock::new(
            move || {
                raw = (raw + 0xC0_0000) & 0xFF_FFFF;
                raw
            },
            1_000_000,
            24,
        );
        for k in 1..=8u64 {
            assert_eq!(clock.ticks(), k * 0xC0_0000);
        }
        assert_eq!(clock.now_ns(), 9 * 0xC0_0000 * 1_000);
    }

    #[test]
    fn counter_clock_converts_without_overflow() {
        let mut clock = CounterClock::new(|| u32::MAX, 480_000_000, 32);
        clock.ticks = 1 << 60; // ticks * 1e9 would overflow u64
        let ns = clock.now_ns();
        let expected = ((1u128 << 60) * 1_000_000_000 / 480_000_000) as u64;
        assert!(ns.abs_diff(expected) <= 1);
    }
}
