//! CPU time of this process, so a phase's cost can be read even on a busy machine, where wall
//! time also counts the time spent waiting for a core, and with work spread over threads.

use std::time::Duration;

/// Time all threads of this process have spent on a CPU, user and system (`/proc/self/stat`,
/// in clock ticks of 10 ms), if the platform exposes it.
pub fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime = fields.next()?.parse::<u64>().ok()?;
    let stime = fields.next()?.parse::<u64>().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Wall and CPU time (all threads) of one phase.
pub struct Phase {
    wall: std::time::Instant,
    cpu: Option<Duration>,
}

impl Phase {
    pub fn start() -> Self {
        Phase {
            wall: std::time::Instant::now(),
            cpu: process_cpu(),
        }
    }

    /// (wall, cpu) since `start`; cpu is zero where it cannot be read.
    pub fn end(&self) -> (Duration, Duration) {
        let cpu = match (self.cpu, process_cpu()) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => Duration::ZERO,
        };
        (self.wall.elapsed(), cpu)
    }
}
