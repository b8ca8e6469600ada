//! `kind = "json"`: a snapshot file (`{"users": [...], "groups": [...]}`), read keyed on an
//! incremental cycle.

use super::{ReadError, Source};
use scimsync_directory::Scan;
use scimsync_model::{RecordContext, Snapshot};
use std::path::PathBuf;

pub struct JsonFile {
    pub path: PathBuf,
}

impl Source for JsonFile {
    fn read(&self) -> Result<Snapshot, ReadError> {
        Ok(scimsync_directory::read_json(&self.path)?)
    }

    fn keyed(&self) -> bool {
        true
    }

    /// The users array delimited and each record keyed, not parsed (`json/scan.rs` in the
    /// directory crate); a file too small to be worth it comes back whole.
    fn scan(&self, context: &RecordContext) -> Result<Scan, ReadError> {
        Ok(scimsync_directory::scan_json(&self.path, context)?)
    }
}
