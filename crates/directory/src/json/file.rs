//! The snapshot file: opened for either reader, and read by position for the keyed read.

use crate::SourceError;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Opens a snapshot file: the file, its name for messages, and whether it is a regular file.
/// Only a regular file can be rewound for the streaming parser should the fast path give up
/// (or read again by position); a pipe or device goes to the streaming parser straight away.
pub(super) fn open(path: &Path) -> Result<(File, String, bool), SourceError> {
    let origin = path.display().to_string();
    let io = |source| SourceError::Io {
        origin: origin.clone(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let regular = file.metadata().map_err(io)?.is_file();
    Ok((file, origin, regular))
}

/// Reads a file from a position with positioned reads: the file's own offset is never moved.
pub(super) struct At<'f> {
    pub(super) file: &'f File,
    pub(super) pos: u64,
}

impl Read for At<'_> {
    #[cfg(unix)]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }

    #[cfg(not(unix))]
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "positioned reads",
        ))
    }
}
