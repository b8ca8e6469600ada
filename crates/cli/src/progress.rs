//! How far a long phase (the full read of the target, the writes) has come: a progress bar on
//! a terminal (indicatif); elsewhere (the daemon, CI, a log file) a log line at most every
//! `LOG_EVERY` with done/total and the time left, so a long cycle is never silent and a log
//! is never flooded.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The least time between two progress lines in a log.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// Whether a bar may be drawn: stderr is a terminal and the log format is text (a bar in a JSON
/// log would be noise). Set once by `main`; unset (tests, `man`) means no bar.
static BARS: OnceLock<bool> = OnceLock::new();

pub fn init(text_logs: bool) {
    let _ = BARS.set(text_logs && std::io::stderr().is_terminal());
}

pub struct Progress {
    phase: &'static str,
    sink: Sink,
}

enum Sink {
    /// Nothing to count.
    Off,
    Bar(ProgressBar),
    Log(Mutex<LogState>),
}

struct LogState {
    started: Instant,
    /// When the last line was written (the start until the first).
    last: Instant,
    done: u64,
    total: u64,
    lines: u32,
}

impl Progress {
    /// `phase` names what is counted ("writes"); nothing is shown for a total of 0.
    pub fn new(phase: &'static str, total: u64) -> Progress {
        if total == 0 {
            return Progress {
                phase,
                sink: Sink::Off,
            };
        }
        Progress::unknown_total(phase, total)
    }

    /// A phase whose total comes with its first step (`set`), such as a paged read.
    pub fn unknown_total(phase: &'static str, total: u64) -> Progress {
        let sink = if *BARS.get().unwrap_or(&false) {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let template = format!(
                "{{spinner}} [{{elapsed_precise}}] {{bar:40}} {{pos}}/{{len}} {phase} ({{per_sec}}, eta {{eta}})"
            );
            if let Ok(style) = ProgressStyle::with_template(&template) {
                bar.set_style(style);
            }
            Sink::Bar(bar)
        } else {
            let now = Instant::now();
            Sink::Log(Mutex::new(LogState {
                started: now,
                last: now,
                done: 0,
                total,
                lines: 0,
            }))
        };
        Progress { phase, sink }
    }

    pub fn inc(&self) {
        match &self.sink {
            Sink::Off => {}
            Sink::Bar(bar) => bar.inc(1),
            Sink::Log(state) => {
                if let Ok(mut s) = state.lock() {
                    s.done += 1;
                    s.maybe_log(self.phase, Instant::now());
                }
            }
        }
    }

    /// `done` of `total` so far.
    pub fn set(&self, done: u64, total: u64) {
        match &self.sink {
            Sink::Off => {}
            Sink::Bar(bar) => {
                bar.set_length(total);
                bar.set_position(done);
            }
            Sink::Log(state) => {
                if let Ok(mut s) = state.lock() {
                    s.done = done;
                    s.total = total;
                    s.maybe_log(self.phase, Instant::now());
                }
            }
        }
    }

    pub fn finish(&self) {
        match &self.sink {
            Sink::Off => {}
            Sink::Bar(bar) => bar.finish_and_clear(),
            Sink::Log(state) => {
                // A phase that logged progress says it ended; a short one said nothing.
                if let Ok(s) = state.lock()
                    && s.lines > 0
                {
                    tracing::info!(
                        "{}: {} of {} in {}",
                        self.phase,
                        s.done,
                        s.total,
                        rounded(s.started.elapsed())
                    );
                }
            }
        }
    }
}

impl LogState {
    fn maybe_log(&mut self, phase: &str, now: Instant) {
        if now.duration_since(self.last) < LOG_EVERY || self.done >= self.total {
            return;
        }
        self.last = now;
        self.lines += 1;
        let elapsed = now.duration_since(self.started);
        let left = eta(self.done, self.total, elapsed)
            .map(|d| format!(", about {} left", rounded(d)))
            .unwrap_or_default();
        tracing::info!(
            "{phase}: {} of {} ({}%){left}",
            self.done,
            self.total,
            self.done * 100 / self.total.max(1)
        );
    }
}

/// The time left at the pace so far; none before the first item.
fn eta(done: u64, total: u64, elapsed: Duration) -> Option<Duration> {
    if done == 0 || total <= done {
        return None;
    }
    let per_item = elapsed.as_secs_f64() / done as f64;
    Some(Duration::from_secs_f64(per_item * (total - done) as f64))
}

/// Whole seconds: progress lines are read, not parsed.
fn rounded(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs().max(1))).to_string()
}

/// The engine's view of the writes' progress, shared with the log sink (which prints above the
/// bar): a `Progress` per run.
#[derive(Clone, Default)]
pub struct Terminal {
    current: std::sync::Arc<Mutex<Option<Progress>>>,
}

impl Terminal {
    fn current(&self) -> std::sync::MutexGuard<'_, Option<Progress>> {
        // Plain data: a panic elsewhere while holding the lock leaves nothing half-written.
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` (which prints) with the bar cleared, then draws it again.
    pub fn suspend<T>(&self, f: impl FnOnce() -> T) -> T {
        // The bar's handle, so the lock is not held while `f` prints.
        let bar = match self.current().as_ref().map(|p| &p.sink) {
            Some(Sink::Bar(bar)) => Some(bar.clone()),
            _ => None,
        };
        match bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }
}

impl scimsync_engine::Progress for Terminal {
    fn start(&self, writes: u64) {
        *self.current() = Some(Progress::new("writes", writes));
    }

    fn advance(&self) {
        if let Some(p) = self.current().as_ref() {
            p.inc();
        }
    }

    fn finish(&self) {
        if let Some(p) = self.current().take() {
            p.finish();
        }
    }
}

/// A full read of a large target takes a while: its progress, as a bar or log lines, and the
/// callback the target client calls as pages arrive.
pub fn target_reads() -> (Arc<Progress>, scimsync_engine::ReadProgress) {
    let reads = Arc::new(Progress::unknown_total("target users read", 0));
    let step = Arc::clone(&reads);
    (reads, Arc::new(move |done, total| step.set(done, total)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_line_at_most_every_ten_seconds_with_the_time_left() {
        let start = Instant::now();
        let mut s = LogState {
            started: start,
            last: start,
            done: 0,
            total: 100,
            lines: 0,
        };
        for i in 1..=50u64 {
            s.done = i;
            // One item a second: lines at 10 s, 20 s, … never two within 10 s.
            s.maybe_log("writes", start + Duration::from_secs(i));
        }
        assert_eq!(s.lines, 5);
        assert_eq!(
            eta(50, 100, Duration::from_secs(50)),
            Some(Duration::from_secs(50))
        );
        assert_eq!(eta(0, 100, Duration::from_secs(5)), None);
        // Done: no line saying there is more to come.
        s.done = 100;
        s.maybe_log("writes", start + Duration::from_secs(500));
        assert_eq!(s.lines, 5);
    }
}
