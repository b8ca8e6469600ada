//! A reader that checks UTF-8 as bytes stream past, so a huge file is validated without being
//! held in memory and a bad byte is reported by its offset in the file.

use std::io::{self, Read};

/// Where the stream stopped being UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BadUtf8 {
    pub offset: u64,
    /// The stream ended inside a multi-byte character.
    pub at_end: bool,
}

/// Passes bytes through unchanged, failing the read at the first chunk that holds a byte that
/// is not UTF-8 (the bytes before it in that chunk are withheld too: the read is failing anyway).
/// A leading UTF-8 byte order mark is dropped, as Windows tools write one.
pub(crate) struct Utf8Reader<R> {
    inner: R,
    /// Offset in the stream of the next byte read from `inner`.
    pos: u64,
    /// The start of a character split across two reads.
    carry: [u8; 4],
    carry_len: usize,
    bad: Option<BadUtf8>,
    at_start: bool,
}

impl<R: Read> Utf8Reader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            pos: 0,
            carry: [0; 4],
            carry_len: 0,
            bad: None,
            at_start: true,
        }
    }

    /// The first invalid byte, once a read has failed on it.
    pub(crate) fn bad(&self) -> Option<BadUtf8> {
        self.bad
    }

    pub(crate) fn into_inner(self) -> R {
        self.inner
    }

    fn fail(&mut self, offset: u64, at_end: bool) -> io::Error {
        self.bad = Some(BadUtf8 { offset, at_end });
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("invalid UTF-8 at byte offset {offset}"),
        )
    }

    /// Checks `chunk`, whose first byte is at stream offset `base`.
    fn check(&mut self, chunk: &[u8], base: u64) -> io::Result<()> {
        let mut rest = chunk;
        let mut rest_base = base;
        if self.carry_len > 0 {
            let carry_start = base - self.carry_len as u64;
            let take = rest.len().min(4 - self.carry_len);
            let mut joined = [0u8; 8];
            joined[..self.carry_len].copy_from_slice(&self.carry[..self.carry_len]);
            joined[self.carry_len..self.carry_len + take].copy_from_slice(&rest[..take]);
            let joined = &joined[..self.carry_len + take];
            let used = match std::str::from_utf8(joined) {
                Ok(_) => take,
                // The carried character completed; whatever follows it is checked below.
                Err(e) if e.valid_up_to() > 0 => e.valid_up_to() - self.carry_len,
                Err(e) if e.error_len().is_none() => {
                    // Still incomplete: only possible when the chunk was shorter than needed.
                    self.carry[self.carry_len..self.carry_len + take]
                        .copy_from_slice(&rest[..take]);
                    self.carry_len += take;
                    return Ok(());
                }
                Err(_) => return Err(self.fail(carry_start, false)),
            };
            self.carry_len = 0;
            rest = &rest[used..];
            rest_base += used as u64;
        }
        match std::str::from_utf8(rest) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let tail = &rest[e.valid_up_to()..];
                self.carry[..tail.len()].copy_from_slice(tail);
                self.carry_len = tail.len();
                Ok(())
            }
            Err(e) => Err(self.fail(rest_base + e.valid_up_to() as u64, false)),
        }
    }
}

impl<R: Read> Read for Utf8Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(bad) = self.bad {
            return Err(self.fail(bad.offset, bad.at_end));
        }
        loop {
            let n = self.inner.read(buf)?;
            if n == 0 {
                if self.carry_len > 0 {
                    let start = self.pos - self.carry_len as u64;
                    return Err(self.fail(start, true));
                }
                return Ok(0);
            }
            let base = self.pos;
            self.pos += n as u64;
            let mut skip = 0;
            if self.at_start {
                // A BOM split across reads is not worth handling: readers use large buffers.
                self.at_start = false;
                if buf[..n].starts_with(b"\xEF\xBB\xBF") {
                    skip = 3;
                }
            }
            self.check(&buf[skip..n], base + skip as u64)?;
            if skip == 0 {
                return Ok(n);
            }
            buf.copy_within(skip..n, 0);
            if n > skip {
                return Ok(n - skip);
            }
            // The read held only the BOM: read again rather than signal end of file.
        }
    }
}

/// Line and column (1-based; the column in characters) of byte `offset` of the text `reader`
/// yields from its start: what an editor shows. Counted only once a read has failed, so a good
/// file pays nothing for it. The bytes before `offset` are UTF-8 (the reader got that far), so
/// characters are counted by their lead bytes.
pub(crate) fn line_and_column(reader: impl Read, offset: u64) -> io::Result<(u64, u64)> {
    let mut line = 1u64;
    let mut column = 1u64;
    let mut buf = vec![0u8; 1 << 16];
    let mut reader = reader.take(offset);
    let mut first = true;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok((line, column));
        }
        // A byte order mark is no character an editor shows.
        let skip = if first && buf[..n].starts_with(b"\xEF\xBB\xBF") {
            3
        } else {
            0
        };
        first = false;
        for &b in &buf[skip..n] {
            if b == b'\n' {
                line += 1;
                column = 1;
            } else if b & 0xC0 != 0x80 {
                column += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    /// Hands out the input in the given chunk sizes, to split characters across reads.
    struct Chunked<'a> {
        data: &'a [u8],
        sizes: Vec<usize>,
        next: usize,
    }

    impl Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let size = self
                .sizes
                .get(self.next)
                .copied()
                .unwrap_or(usize::MAX)
                .max(1);
            self.next += 1;
            let n = size.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn run(data: &[u8], sizes: Vec<usize>) -> Result<Vec<u8>, BadUtf8> {
        let mut reader = Utf8Reader::new(Chunked {
            data,
            sizes,
            next: 0,
        });
        let mut out = Vec::new();
        match reader.read_to_end(&mut out) {
            Ok(_) => Ok(out),
            Err(_) => Err(reader.bad().unwrap()),
        }
    }

    #[test]
    fn reports_the_offset_of_the_first_bad_byte() {
        let data = b"{\"a\":\"ok\xC3\xA9\",\"b\":\"\xFF\"}";
        let expected = data.iter().position(|&b| b == 0xFF).unwrap() as u64;
        assert_eq!(run(data, vec![1; 64]).unwrap_err().offset, expected);
        assert_eq!(run(data, vec![]).unwrap_err().offset, expected);
    }

    #[test]
    fn a_character_cut_at_the_end_is_reported_as_truncated() {
        let data = "ab\u{1F600}".as_bytes();
        let cut = &data[..data.len() - 1];
        let bad = run(cut, vec![]).unwrap_err();
        assert!(bad.at_end);
        assert_eq!(bad.offset, 2);
    }

    #[test]
    fn drops_a_leading_byte_order_mark() {
        assert_eq!(run(b"\xEF\xBB\xBF{}", vec![]).unwrap(), b"{}");
        assert_eq!(run(b"\xEF\xBB\xBF{}", vec![3, 1]).unwrap(), b"{}");
    }

    proptest! {
        #[test]
        fn agrees_with_whole_buffer_validation(
            data in proptest::collection::vec(
                prop_oneof![Just(0xC3u8), Just(0xA9), Just(0xF0), Just(0x9F), Just(0x98),
                            Just(0x80), Just(0xFF), Just(b'a'), Just(0xE2), Just(0x82), Just(0xAC)],
                0..40),
            sizes in proptest::collection::vec(1usize..6, 0..40),
        ) {
            // No BOM in this alphabet's first bytes matters: 0xEF is not in it.
            let got = run(&data, sizes);
            match std::str::from_utf8(&data) {
                Ok(_) => prop_assert_eq!(got.unwrap(), data.clone()),
                Err(e) => {
                    let bad = got.unwrap_err();
                    prop_assert_eq!(bad.offset, e.valid_up_to() as u64);
                    prop_assert_eq!(bad.at_end, e.error_len().is_none());
                }
            }
        }
    }
}
