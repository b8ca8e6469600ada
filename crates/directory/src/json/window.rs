//! The fast path: records cut out of a bounded window of the file and parsed from memory.

use super::extent::{Extent, GiveUp};
use super::found::Found;
use super::keys::{DocKey, Keys};
use super::records::{GroupSeed, OptionalGroupsSeed, UserSeed};
use super::stream::BOM;
use scimsync_model::{Snapshot, SourceGroup, SourceUser};
use serde::de::{DeserializeSeed, IgnoredAny};
use std::io::Read;
use std::marker::PhantomData;

/// Why a record in `Window::users` was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stop {
    /// It ends past the window, as far as can be told: read on and try again.
    Cut,
    /// Something else; though a record cut inside a number looks like this too, so it is
    /// tried once more after reading on.
    Bad,
}

impl From<serde_json::Error> for Stop {
    fn from(err: serde_json::Error) -> Self {
        if err.is_eof() { Stop::Cut } else { Stop::Bad }
    }
}

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
    /// The file offset of `buf[0]`.
    base: u64,
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
            base: 0,
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
        self.base += self.start as u64;
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

    /// The users array, `[a, b, ...]`, each element taken in place by `parse` (given the text
    /// from the element on, its index and its file offset; returning what it made of it and
    /// the bytes it took). No `Extent` pass over the users first: `parse` finds where each
    /// ends, so most of the file is scanned once.
    ///
    /// The window's text is checked for UTF-8 once per refill, as a whole, so serde_json parses
    /// `&str`s and skips its own check of every string.
    pub(super) fn users<T>(
        &mut self,
        mut parse: impl FnMut(&str, usize, u64) -> Result<(T, usize), Stop>,
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
                let here = self.base + (self.start + used) as u64;
                match parse(&text[used..], out.len(), here) {
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
                    let cut = !bad_byte && (err == Stop::Cut || !retried);
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

/// What parsing a record in place needs, one per thread.
#[derive(Default)]
pub(super) struct ParseState {
    found: Option<Found>,
    keys: Keys,
}

/// One user record (the `index`-th) parsed in place: the record and the bytes it took. Its file
/// offset is not needed (the signature is the one `Window::users` takes).
pub(super) fn parse_user(
    text: &str,
    index: usize,
    _: u64,
    state: &mut ParseState,
) -> Result<(SourceUser, usize), Stop> {
    let mut de = serde_json::Deserializer::from_str(text);
    let user = UserSeed {
        found: &mut state.found,
        keys: &mut state.keys,
        index,
        nesting: IN_PLACE_NESTING,
    }
    .deserialize(&mut de)?;
    Ok((user, de.into_iter::<IgnoredAny>().byte_offset()))
}

/// The whole document, the fast way: the same grammar and the same record visitors as the
/// streaming parser, but anything unexpected gives up rather than explains.
pub(super) fn fast_read(window: &mut Window<impl Read>) -> Result<Snapshot, GiveUp> {
    let mut state = ParseState::default();
    let (users, groups) = read_document(window, |window| {
        window.users(|text, index, at| parse_user(text, index, at, &mut state))
    })?;
    Ok(Snapshot { users, groups })
}

/// The document's grammar around the users array, which `read_users` reads (the window at its
/// `[`); the groups are parsed.
pub(super) fn read_document<R: Read, U>(
    window: &mut Window<R>,
    mut read_users: impl FnMut(&mut Window<R>) -> Result<U, GiveUp>,
) -> Result<(U, Vec<SourceGroup>), GiveUp> {
    // Record problems are parked here as the visitors do; the streaming parser will report them.
    let mut found = None;
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
                    users = Some(read_users(window)?);
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
    Ok((users.ok_or(GiveUp)?, groups.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The fast path takes a clean file itself: a fallback to the streaming parser would give
    /// the same snapshot, only slower, and no other test would notice.
    #[test]
    fn a_clean_file_is_read_without_falling_back() {
        let records: Vec<String> = (0..2_000)
            .map(|i| format!(r#"{{"id":"u{i}","email":"u{i}@example.com","tags":[{{"n":{i}}}]}}"#))
            .collect();
        let text = format!(
            "\u{feff}{{\"users\":[{}],\"groups\":[{{\"id\":\"g\",\"name\":\"All\",\"members\":[\"u0\",\"u1999\"]}}]}}",
            records.join(",\n")
        );
        let read = fast_read(&mut Window::new(text.as_bytes()));
        let expected = crate::parse_json(text.as_bytes(), "dir.json").unwrap();
        assert_eq!(read.unwrap(), expected);
    }
}
