//! The fast path: records cut out of a bounded window of the file and parsed from memory.

use super::BOM;
use super::extent::Extent;
use super::keys::{DocKey, Keys};
use super::records::{GroupSeed, OptionalGroupsSeed, UserSeed};
use scimsync_model::Snapshot;
use serde::de::{DeserializeSeed, IgnoredAny};
use std::io::Read;
use std::marker::PhantomData;

/// Why the fast path stopped. Never shown: the streaming parser finds and reports the problem.
#[derive(Debug)]
pub(super) struct GiveUp;

/// The fast path's initial window. It only grows for a record larger than half of it.
const WINDOW: usize = 1 << 18;

/// The deepest nested attribute value the fast path parses in place. serde_json's recursion
/// limit counts from the top of the document in the streaming parser, but from the record in
/// place; keeping well under it means both accept the same records.
const IN_PLACE_NESTING: usize = 64;

/// A bounded window over the file: holds the record being parsed and what follows it, never the
/// whole directory.
pub(super) struct Window<R> {
    src: R,
    buf: Vec<u8>,
    /// The unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    eof: bool,
    at_start: bool,
}

impl<R: Read> Window<R> {
    pub(super) fn new(src: R) -> Self {
        Self {
            src,
            buf: vec![0; WINDOW],
            start: 0,
            end: 0,
            eof: false,
            at_start: true,
        }
    }

    fn unread(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Reads more of the file after the unread bytes; false at the end of the file. An I/O error
    /// gives up: the streaming parser reports it as it always has.
    ///
    /// The bytes are not checked for UTF-8 here: `parse` checks each value as it makes a `&str`
    /// of it (which lets serde_json skip its own check of every string), and between values
    /// only JSON punctuation and whitespace are accepted. So every byte is checked once, and a
    /// file with a bad byte goes to the streaming parser, which reports its offset.
    fn fill(&mut self) -> Result<bool, GiveUp> {
        if self.eof {
            return Ok(false);
        }
        let unread = self.end - self.start;
        self.buf.copy_within(self.start..self.end, 0);
        self.start = 0;
        self.end = unread;
        if unread * 2 > self.buf.len() {
            // A record over half the window (a group of every user): doubling keeps the rescans
            // of its growing prefix linear in its size.
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = self
            .src
            .read(&mut self.buf[self.end..])
            .map_err(|_| GiveUp)?;
        self.end += n;
        self.eof = n == 0;
        if self.at_start {
            // As `Utf8Reader` does for the streaming parser: Windows tools write a BOM.
            self.at_start = false;
            if self.unread().starts_with(BOM) {
                self.start += BOM.len();
            }
        }
        Ok(n > 0)
    }

    /// The next byte that is not JSON whitespace, left unread; `None` at the end of the file.
    fn peek(&mut self) -> Result<Option<u8>, GiveUp> {
        loop {
            let unread = self.unread();
            if let Some(at) = unread
                .iter()
                .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            {
                let byte = unread[at];
                self.start += at;
                return Ok(Some(byte));
            }
            self.start = self.end;
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// Consumes `byte` if it comes next, after whitespace.
    fn eat(&mut self, byte: u8) -> Result<bool, GiveUp> {
        if self.peek()? == Some(byte) {
            self.start += 1;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// Parses the next value with `seed` and consumes it. `Extent` only finds where the value
    /// ends; serde_json parses it whole, so the fast path accepts no value the streaming parser
    /// would refuse.
    fn parse<T>(
        &mut self,
        seed: impl for<'de> DeserializeSeed<'de, Value = T>,
    ) -> Result<T, GiveUp> {
        if self.peek()?.is_none() {
            return Err(GiveUp);
        }
        let mut extent = Extent::default();
        let len = loop {
            if let Some(len) = extent.advance(self.unread())? {
                break len;
            }
            // Values here sit inside the document's object: the file cannot end in one.
            if !self.fill()? {
                return Err(GiveUp);
            }
        };
        let text =
            std::str::from_utf8(&self.buf[self.start..self.start + len]).map_err(|_| GiveUp)?;
        let mut de = serde_json::Deserializer::from_str(text);
        let value = seed.deserialize(&mut de).map_err(|_| GiveUp)?;
        de.end().map_err(|_| GiveUp)?;
        self.start += len;
        Ok(value)
    }

    /// The users array, `[a, b, ...]`, each element parsed in place by `parse` (given the text
    /// from the element on and its index; returning it and the bytes it took). No `Extent` pass
    /// over the users first: serde_json finds where each ends, so most of the file is scanned
    /// once.
    ///
    /// The window's text is checked for UTF-8 once per refill, as a whole, so serde_json parses
    /// `&str`s and skips its own check of every string.
    fn users<T>(
        &mut self,
        mut parse: impl FnMut(&str, usize) -> Result<(T, usize), serde_json::Error>,
    ) -> Result<Vec<T>, GiveUp> {
        if !self.eat(b'[')? {
            return Err(GiveUp);
        }
        let mut out = Vec::new();
        if self.eat(b']')? {
            return Ok(out);
        }
        let mut retried = false;
        loop {
            if self.peek()?.is_none() {
                return Err(GiveUp);
            }
            let unread = self.unread();
            // A character cut by the end of the window is completed by the next refill; a bad
            // byte is not, and is the streaming parser's to report.
            let (text, bad_byte) = match std::str::from_utf8(unread) {
                Ok(text) => (text, false),
                Err(e) => (
                    std::str::from_utf8(&unread[..e.valid_up_to()]).map_err(|_| GiveUp)?,
                    e.error_len().is_some(),
                ),
            };
            let mut used = 0;
            let failed = loop {
                match parse(&text[used..], out.len()) {
                    Ok((value, len)) => {
                        out.push(value);
                        used += len;
                    }
                    Err(err) => break Some(err),
                }
                // The common `,` and next record within the window, without leaving this loop.
                let rest = &text.as_bytes()[used..];
                let comma = skip_whitespace(rest);
                if rest.get(comma) == Some(&b',') {
                    let next = comma + 1 + skip_whitespace(&rest[comma + 1..]);
                    if next < rest.len() {
                        used += next;
                        continue;
                    }
                }
                break None;
            };
            self.start += used;
            if used > 0 {
                retried = false;
            }
            match failed {
                None => {
                    if self.eat(b',')? {
                        continue;
                    }
                    if self.eat(b']')? {
                        return Ok(out);
                    }
                    return Err(GiveUp);
                }
                Some(err) => {
                    // A record cut off by the end of the window fails as if the file ended
                    // there (or, cut inside a number, as a bad number): read on and parse it
                    // again. A real error fails again, and then no more data is read for it.
                    let cut = !bad_byte && (err.is_eof() || !retried);
                    retried = true;
                    if !cut || !self.fill()? {
                        return Err(GiveUp);
                    }
                }
            }
        }
    }

    /// `[a, b, ...]`, each element parsed by `element` with its index.
    fn array<T>(
        &mut self,
        mut element: impl FnMut(&mut Self, usize) -> Result<T, GiveUp>,
    ) -> Result<Vec<T>, GiveUp> {
        if !self.eat(b'[')? {
            return Err(GiveUp);
        }
        let mut out = Vec::new();
        if self.eat(b']')? {
            return Ok(out);
        }
        loop {
            out.push(element(self, out.len())?);
            if self.eat(b',')? {
                continue;
            }
            if self.eat(b']')? {
                return Ok(out);
            }
            return Err(GiveUp);
        }
    }
}

/// How many JSON whitespace bytes `bytes` starts with.
fn skip_whitespace(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .unwrap_or(bytes.len())
}

/// The whole document, the fast way: the same grammar and the same record visitors as the
/// streaming parser, but anything unexpected gives up rather than explains.
pub(super) fn fast_read<R: Read>(window: &mut Window<R>) -> Result<Snapshot, GiveUp> {
    // Record problems are parked here as the visitors do; the streaming parser will report them.
    let mut found = None;
    let mut keys = Keys::default();
    let mut users = None;
    let mut groups = None;
    if !window.eat(b'{')? {
        return Err(GiveUp);
    }
    if !window.eat(b'}')? {
        loop {
            if window.peek()? != Some(b'"') {
                return Err(GiveUp);
            }
            let key = window.parse(PhantomData::<DocKey>)?;
            if !window.eat(b':')? {
                return Err(GiveUp);
            }
            match key {
                DocKey::Users if users.is_some() => return Err(GiveUp),
                DocKey::Users => {
                    users = Some(window.users(|text, index| {
                        let mut de = serde_json::Deserializer::from_str(text);
                        let user = UserSeed {
                            found: &mut found,
                            keys: &mut keys,
                            index,
                            nesting: IN_PLACE_NESTING,
                        }
                        .deserialize(&mut de)?;
                        Ok((user, de.into_iter::<IgnoredAny>().byte_offset()))
                    })?);
                }
                DocKey::Groups if groups.is_some() => return Err(GiveUp),
                DocKey::Groups if window.peek()? == Some(b'[') => {
                    groups = Some(window.array(|window, index| {
                        window.parse(GroupSeed {
                            found: &mut found,
                            index,
                        })
                    })?);
                }
                DocKey::Groups => {
                    groups = Some(window.parse(OptionalGroupsSeed { found: &mut found })?);
                }
                DocKey::Other => {
                    window.parse(PhantomData::<IgnoredAny>)?;
                }
            }
            if window.eat(b',')? {
                continue;
            }
            if window.eat(b'}')? {
                break;
            }
            return Err(GiveUp);
        }
    }
    if window.peek()?.is_some() {
        return Err(GiveUp);
    }
    Ok(Snapshot {
        users: users.ok_or(GiveUp)?,
        groups: groups.unwrap_or_default(),
    })
}
