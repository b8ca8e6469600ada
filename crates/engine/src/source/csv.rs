//! `kind = "csv"`: a users file, and optionally a groups file (`group_id,group_name,member_id`).

use super::{ReadError, Source};
use scimsync_model::Snapshot;
use std::path::PathBuf;

pub struct CsvFiles {
    pub users: PathBuf,
    pub groups: Option<PathBuf>,
}

impl Source for CsvFiles {
    fn read(&self) -> Result<Snapshot, ReadError> {
        Ok(scimsync_directory::read_csv(
            &self.users,
            self.groups.as_deref(),
        )?)
    }
}
