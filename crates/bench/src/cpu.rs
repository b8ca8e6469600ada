//! CPU time of this thread, so a phase's cost can be read even on a busy machine, where wall
//! time also counts the time spent waiting for a core.

use std::time::Duration;

/// Time this thread has spent on a CPU (`/proc/thread-self/schedstat`, nanoseconds), if the
/// platform exposes it.
pub fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = stat.split_whitespace().next()?.parse::<u64>().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Wall and CPU time of one phase.
pub struct Phase {
    wall: std::time::Instant,
    cpu: Option<Duration>,
}

impl Phase {
    pub fn start() -> Self {
        Phase {
            wall: std::time::Instant::now(),
            cpu: thread_cpu(),
        }
    }

    /// (wall, cpu) since `start`; cpu is zero where it cannot be read.
    pub fn end(&self) -> (Duration, Duration) {
        let cpu = match (self.cpu, thread_cpu()) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => Duration::ZERO,
        };
        (self.wall.elapsed(), cpu)
    }
}
