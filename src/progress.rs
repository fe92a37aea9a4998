//! A one-line progress display for long commands (datagen, eval-detect, fps).

use std::io::IsTerminal;
use std::time::Instant;

/// A one-line progress display on a terminal's stderr, redrawn at most 10 times a second.
pub struct Progress {
    what: &'static str,
    total: usize,
    started: Instant,
    last: Option<Instant>,
    live: bool,
}

impl Progress {
    /// A display of `total` units of `what` (0: unknown, e.g. a video on stdin), live only
    /// when stderr is a terminal.
    pub fn new(what: &'static str, total: usize) -> Progress {
        Progress {
            what,
            total,
            started: Instant::now(),
            last: None,
            live: std::io::stderr().is_terminal(),
        }
    }

    /// Shows that `done` units are finished.
    pub fn update(&mut self, done: usize) {
        let now = Instant::now();
        if !self.live
            || ((self.total == 0 || done < self.total)
                && self
                    .last
                    .is_some_and(|t| now - t < std::time::Duration::from_millis(100)))
        {
            return;
        }
        self.last = Some(now);
        let rate = done as f64 / (now - self.started).as_secs_f64().max(1e-9);
        if self.total == 0 {
            eprint!("\r{done} {} ({rate:.1}/s)   ", self.what);
        } else {
            eprint!("\r{done}/{} {} ({rate:.1}/s)   ", self.total, self.what);
        }
    }

    /// Ends the line.
    pub fn finish(&self) {
        if self.live {
            eprintln!();
        }
    }
}
