//! Exit codes (a contract: README.md, "Commands"): the binary's decision, from the engine's
//! typed report.

use scimsync_store::RunStatus;

pub const OK: i32 = 0;
pub const ERROR: i32 = 1;
pub const FAILED_OPS: i32 = 3;
pub const HELD: i32 = 4;
pub const PLAN_NOT_EMPTY: i32 = 5;

/// A cycle's exit code from how its run ended (also recorded with the run: `status` prints it).
pub fn of_run(status: RunStatus) -> i32 {
    match status {
        RunStatus::Succeeded => OK,
        RunStatus::Partial => FAILED_OPS,
        RunStatus::Held => HELD,
        RunStatus::Failed | RunStatus::Interrupted | RunStatus::Running => ERROR,
    }
}
