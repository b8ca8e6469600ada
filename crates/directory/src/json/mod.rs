//! The JSON snapshot reader: `{"users": [...], "groups": [...]}`, streamed record by record.
//!
//! Users are deserialized straight into `SourceUser`s (no `serde_json::Value` tree of the whole
//! file), so a million-user export costs one copy of the data in memory.
//!
//! A file is read in two ways. The fast path (`Window`) cuts each record out of a bounded window
//! of the file and parses it from memory, where serde_json is several times faster than on a
//! byte stream. It never reports an error: whatever it does not accept sends the read back to the
//! start of the file through the streaming parser, which alone decides what is wrong and where
//! (line and column of the whole file, as before). A bad file is thus read twice; a good one once.
//! On an incremental cycle the users array is only keyed, not parsed (`scan`).

mod extent;
mod file;
mod found;
mod keys;
mod records;
mod scan;
mod stream;
mod values;
mod window;

use crate::SourceError;
use scimsync_model::Snapshot;
use std::io::Seek;
use std::path::Path;
use stream::{finish, stream_read};
use window::{Window, fast_read};

pub use scan::{Scan, ScannedJson, scan_json};
pub use stream::parse_json;

/// Reads a JSON snapshot file. All or nothing: any error means no snapshot.
pub fn read_json(path: &Path) -> Result<Snapshot, SourceError> {
    let (mut file, origin, regular) = file::open(path)?;
    if regular {
        if let Ok(snapshot) = fast_read(&mut Window::new(&file)) {
            return finish(snapshot, origin);
        }
        file.rewind().map_err(|source| SourceError::Io {
            origin: origin.clone(),
            source,
        })?;
    }
    stream_read(file, origin)
}
