//! Events on the terminal: a log line each (text), or one JSON object a line on stdout
//! (`--log-format json`), attached to the engine's one emit point as a sink.

use crate::progress::Terminal;
use scimsync_engine::EventSink;
use scimsync_model::{Event, EventOutcome};
use std::io::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Prints each event the store recorded, above the progress bar if one is drawn.
pub struct LogSink {
    pub format: LogFormat,
    pub terminal: Terminal,
}

impl EventSink for LogSink {
    fn observe(&self, event: &Event) {
        self.terminal.suspend(|| log(self.format, event));
    }
}

fn log(format: LogFormat, event: &Event) {
    match format {
        LogFormat::Json => {
            if let Ok(line) = serde_json::to_string(event) {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
            }
        }
        LogFormat::Text => {
            let resource = event.resource.as_ref();
            let name = resource.and_then(|r| r.user_name.as_deref().or(r.display_name.as_deref()));
            let name = name.map(tracing::field::display);
            let (user, group) = match resource.map(|r| r.kind.as_str()) {
                Some("group") => (None, name),
                _ => (name, None),
            };
            // Option fields are left out when absent (tracing records `Some` only), so a line
            // never reads `status=None`.
            let status = event.http.as_ref().and_then(|h| h.status);
            let outcome = event.outcome();
            match outcome {
                EventOutcome::Ok | EventOutcome::Adopted => tracing::info!(
                    target: "scimsync::event",
                    event = %event.event_type,
                    user,
                    group,
                    status,
                    "{}",
                    outcome.as_str()
                ),
                EventOutcome::Skipped | EventOutcome::Failed => tracing::warn!(
                    target: "scimsync::event",
                    event = %event.event_type,
                    user,
                    group,
                    status,
                    error = event.error.as_deref().unwrap_or(""),
                    "{}",
                    outcome.as_str()
                ),
            }
        }
    }
}
