//! The users array of a large file parsed by two threads: one from the start, one from a record
//! boundary guessed near the middle of the array.
//!
//! The guess is a byte pattern (`}`, `,`, `{` with JSON whitespace between) that can also occur
//! inside a string, so it is only a guess until the first thread, parsing in order, reaches it:
//! if a record ends there and the next begins exactly at the guess, the second thread parsed
//! the very records the first would have, from the same array context. Otherwise (the guess
//! fell inside a value, or the array ended before it) its work is dropped and the first thread
//! reads on. Either way the result is the sequential parse's, byte for byte.

use crate::SourceError;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Below this many bytes of users array a second thread costs more than it saves.
pub(super) const MIN_SPLIT_BYTES: u64 = 8 << 20;

/// How far past the middle the boundary is looked for: records are far smaller than this.
const SEARCH_BYTES: usize = 1 << 20;

/// When the users array is parsed on two threads.
#[derive(Clone, Copy)]
pub(super) struct Split {
    /// The file's length.
    pub(super) len: u64,
    /// The least size of the users array worth a second thread.
    pub(super) min_bytes: u64,
}

/// Opens a snapshot file: the file, its name for messages, and how to split its users array
/// if it is a regular file. Only a regular file can be rewound for the streaming parser should
/// the fast path give up; a pipe or device goes to the streaming parser straight away.
pub(super) fn open(
    path: &Path,
    min_split_bytes: u64,
) -> Result<(File, String, Option<Split>), SourceError> {
    let origin = path.display().to_string();
    let io = |source| SourceError::Io {
        origin: origin.clone(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let metadata = file.metadata().map_err(io)?;
    let split = metadata.is_file().then_some(Split {
        len: metadata.len(),
        min_bytes: min_split_bytes,
    });
    Ok((file, origin, split))
}

/// Reads a file from a position with positioned reads: the file's own offset, which the first
/// thread reads through, is never moved.
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

/// Where a record seems to begin near `middle`: the offset of the `{` after `}` `,`.
pub(super) fn guess_boundary(file: &File, middle: u64) -> Option<u64> {
    if !cfg!(unix) {
        return None;
    }
    let mut chunk = vec![0; SEARCH_BYTES];
    let mut reader = At { file, pos: middle };
    let mut filled = 0;
    while filled < chunk.len() {
        match reader.read(&mut chunk[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    find_boundary(&chunk[..filled]).map(|at| middle + at as u64)
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The position of the first `{` in `bytes` preceded by `}` `,` (JSON whitespace between).
fn find_boundary(bytes: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(close) = bytes[from..].iter().position(|&b| b == b'}') {
        let close = from + close;
        let mut at = close + 1;
        while bytes.get(at).copied().is_some_and(is_space) {
            at += 1;
        }
        if bytes.get(at) == Some(&b',') {
            at += 1;
            while bytes.get(at).copied().is_some_and(is_space) {
                at += 1;
            }
            if bytes.get(at) == Some(&b'{') {
                return Some(at);
            }
        }
        from = close + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_record_start_after_a_record_end() {
        assert_eq!(find_boundary(b"x\":1},{\"id\""), Some(6));
        assert_eq!(find_boundary(b"a} ,\n\t{b"), Some(6));
        assert_eq!(find_boundary(b"}},{"), Some(3));
        assert_eq!(find_boundary(b"}, [{"), None);
        assert_eq!(find_boundary(b"},"), None);
        assert_eq!(find_boundary(b""), None);
    }
}
