//! Events on the terminal: a log line each (text), or one JSON object a line on stdout
//! (`--log-format json`), attached to the engine's one emit point as a sink.

use crate::progress::Terminal;
use scimsync_engine::EventSink;
use scimsync_model::Event;
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
            let who = event
                .resource
                .as_ref()
                .and_then(|r| r.user_name.clone().or_else(|| r.display_name.clone()))
                .unwrap_or_default();
            let status = event.http.as_ref().and_then(|h| h.status);
            if event.success {
                tracing::info!(target: "scimsync::event", event = %event.event_type, user = %who, status = ?status, "ok");
            } else {
                tracing::warn!(
                    target: "scimsync::event",
                    event = %event.event_type,
                    user = %who,
                    status = ?status,
                    error = event.error.as_deref().unwrap_or(""),
                    "failed"
                );
            }
        }
    }
}
