//! The context record keys are computed under (`scimsync_model::RecordContext`): everything
//! mapping a record depends on besides its bytes and what is decided per cycle, in a stable
//! encoding of the compiled mapping and scoping filters, with the version of the code that
//! reads and maps a record.
//!
//! The encoding is the compiled values' own: each type writes every field it has (destructured,
//! so a field added later does not compile until it is encoded) and every variant under its own
//! tag, with lengths before contents, so two different mappings never encode alike. It depends
//! on nothing that may change between builds of the same code (no `Debug` text, no hash-map
//! order).

use scimsync_model::RecordContext;

/// The code that turns a record's bytes into a desired user: this crate's version and a digest
/// of its sources taken when it was built (`build.rs`), so a change to the reader or to
/// mapping gives every record a new key without anyone having to remember to say so.
const CODE: [&str; 2] = [
    env!("CARGO_PKG_VERSION"),
    env!("SCIMSYNC_DIRECTORY_SOURCES"),
];

/// A value that is part of a record context.
pub(crate) trait Encode {
    fn encode(&self, out: &mut Encoder);
}

/// Writes a record context's description: tags, strings and numbers, each length-prefixed.
pub(crate) struct Encoder {
    bytes: Vec<u8>,
}

impl Encoder {
    /// Starts with the version of the code.
    pub(crate) fn new() -> Self {
        let mut out = Encoder { bytes: Vec::new() };
        for part in CODE {
            out.str(part);
        }
        out
    }

    /// The name of a variant or of a kind of value.
    pub(crate) fn tag(&mut self, tag: &str) -> &mut Self {
        self.str(tag)
    }

    pub(crate) fn str(&mut self, text: &str) -> &mut Self {
        self.number(text.len() as u64);
        self.bytes.extend_from_slice(text.as_bytes());
        self
    }

    pub(crate) fn number(&mut self, n: u64) -> &mut Self {
        self.bytes.extend_from_slice(&n.to_le_bytes());
        self
    }

    pub(crate) fn signed(&mut self, n: i64) -> &mut Self {
        self.bytes.extend_from_slice(&n.to_le_bytes());
        self
    }

    pub(crate) fn option<T: Encode + ?Sized>(&mut self, value: Option<&T>) -> &mut Self {
        match value {
            None => self.tag("none"),
            Some(value) => {
                self.tag("some");
                value.encode(self);
                self
            }
        }
    }

    /// A sequence: its length, then each item.
    pub(crate) fn all<'a, T: Encode + 'a>(
        &mut self,
        items: impl ExactSizeIterator<Item = &'a T>,
    ) -> &mut Self {
        self.number(items.len() as u64);
        for item in items {
            item.encode(self);
        }
        self
    }

    pub(crate) fn finish(self) -> RecordContext {
        RecordContext::new(&self.bytes)
    }
}

impl Encode for str {
    fn encode(&self, out: &mut Encoder) {
        out.str(self);
    }
}

impl Encode for String {
    fn encode(&self, out: &mut Encoder) {
        out.str(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strings are length-prefixed, so moving a boundary changes the encoding.
    #[test]
    fn boundaries_are_part_of_the_encoding() {
        let mut a = Encoder::new();
        a.str("ab").str("c");
        let mut b = Encoder::new();
        b.str("a").str("bc");
        assert_ne!(a.finish(), b.finish());
        let mut none = Encoder::new();
        none.option::<str>(None);
        let mut empty = Encoder::new();
        empty.option(Some(""));
        assert_ne!(none.finish(), empty.finish());
    }
}
