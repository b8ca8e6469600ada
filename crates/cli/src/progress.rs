//! A progress bar of a cycle's writes on a terminal (indicatif); nothing when stderr is not a
//! terminal, so logs and CI output stay clean.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex, MutexGuard};

/// The bar, shared by the engine's progress calls and the log sink (which prints above it).
#[derive(Clone, Default)]
pub struct Terminal {
    bar: Arc<Mutex<Option<ProgressBar>>>,
}

impl Terminal {
    fn bar(&self) -> MutexGuard<'_, Option<ProgressBar>> {
        // Plain data: a panic elsewhere while holding the lock leaves nothing half-written.
        self.bar
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` (which prints) with the bar cleared, then draws it again.
    pub fn suspend<T>(&self, f: impl FnOnce() -> T) -> T {
        // A clone, so the lock is not held while `f` prints.
        let bar = self.bar().clone();
        match bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }
}

impl scimsync_engine::Progress for Terminal {
    fn start(&self, writes: u64) {
        if writes == 0 || !std::io::stderr().is_terminal() {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(writes), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} writes ({per_sec}, eta {eta})",
        ) {
            bar.set_style(style);
        }
        *self.bar() = Some(bar);
    }

    fn advance(&self) {
        if let Some(bar) = self.bar().as_ref() {
            bar.inc(1);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar().take() {
            bar.finish_and_clear();
        }
    }
}
