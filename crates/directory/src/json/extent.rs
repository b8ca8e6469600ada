//! Finding where a JSON value ends in the fast path's window, without parsing it.

/// Why the fast path stopped. Never shown: the streaming parser finds and reports the problem.
#[derive(Debug)]
pub(super) struct GiveUp;

/// Nesting deeper than this inside one value goes to the streaming parser: serde_json's recursion
/// limit counts from the top of the document there, but from the record here.
const MAX_DEPTH: u32 = 64;

/// Finds where a JSON value ends, scanning on across refills of the window.
#[derive(Default)]
pub(super) struct Extent {
    /// Bytes scanned from the value's start.
    at: usize,
    depth: u32,
    in_string: bool,
    escaped: bool,
}

impl Extent {
    /// Scans `data` (the value and what follows it) from where the last call stopped; the value's
    /// length once its end is in sight.
    pub(super) fn advance(&mut self, data: &[u8]) -> Result<Option<usize>, GiveUp> {
        // Locals rather than fields in the loop: this runs over every byte of the file.
        let (mut at, mut depth) = (self.at, self.depth);
        let (mut in_string, mut escaped) = (self.in_string, self.escaped);
        let found = 'scan: loop {
            if in_string {
                if !escaped {
                    at = skip_plain(data, at);
                }
                loop {
                    let Some(&byte) = data.get(at) else {
                        break 'scan None;
                    };
                    at += 1;
                    if escaped {
                        escaped = false;
                    } else if byte == b'\\' {
                        escaped = true;
                    } else if byte == b'"' {
                        break;
                    }
                }
                in_string = false;
                if depth == 0 {
                    break Some(at);
                }
            }
            let Some(&byte) = data.get(at) else {
                break None;
            };
            at += 1;
            match byte {
                b'"' => in_string = true,
                b'{' | b'[' => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(GiveUp);
                    }
                }
                b'}' | b']' if depth == 0 => break Some(at - 1),
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        break Some(at);
                    }
                }
                // The end of a number or literal.
                b',' | b' ' | b'\t' | b'\n' | b'\r' if depth == 0 => break Some(at - 1),
                _ => {}
            }
        };
        *self = Extent {
            at,
            depth,
            in_string,
            escaped,
        };
        Ok(found)
    }
}

const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);

/// Whether any byte of `word` is `byte`.
fn has_byte(word: u64, byte: u8) -> bool {
    let x = word ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & HIGHS != 0
}

/// Where the next `"` or `\\` can be, from `at` inside a string: eight bytes at a time (most
/// of a file is string contents), stopping at the word that holds one, or short of the end.
fn skip_plain(data: &[u8], mut at: usize) -> usize {
    while let Some(chunk) = data.get(at..at + 8) {
        let Ok(bytes) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let word = u64::from_ne_bytes(bytes);
        if has_byte(word, b'"') || has_byte(word, b'\\') {
            break;
        }
        at += 8;
    }
    at
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    /// The value's length the byte-by-byte way.
    fn slow(data: &[u8]) -> Option<usize> {
        let mut de =
            serde_json::Deserializer::from_slice(data).into_iter::<serde::de::IgnoredAny>();
        de.next()?.ok()?;
        Some(de.byte_offset())
    }

    proptest! {
        #[test]
        fn the_word_skip_finds_the_ends_serde_json_finds(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("\"".to_owned()), Just("\\\\".to_owned()), Just("\\\"".to_owned()),
                    "[a-z{}\\[\\],:]{0,12}".prop_map(|s| s),
                ],
                0..12,
            ),
        ) {
            let text = format!("{{\"k\":\"{}\",\"n\":[1,{{}}]}} ,", parts.concat());
            if let Some(expected) = slow(text.as_bytes()) {
                let got = Extent::default().advance(text.as_bytes()).unwrap();
                prop_assert_eq!(got, Some(expected));
            }
        }
    }

    #[test]
    fn a_byte_is_found_in_every_position() {
        for at in 0..8 {
            let mut bytes = [b'a'; 8];
            bytes[at] = b'"';
            assert!(has_byte(u64::from_ne_bytes(bytes), b'"'));
            assert!(!has_byte(u64::from_ne_bytes(bytes), b'\\'));
        }
        assert!(!has_byte(u64::from_ne_bytes(*b"abcdefgh"), b'"'));
        // Bytes just above and below, and high bytes, are not mistaken for it.
        assert!(!has_byte(
            u64::from_ne_bytes(*b"!#!#\xff\x80\x00\x01"),
            b'"'
        ));
        assert_eq!(skip_plain(b"0123456789abcdef\"", 0), 16);
        assert_eq!(skip_plain(b"01234\"6789abcdef", 0), 0);
        assert_eq!(skip_plain(b"0123456789", 0), 8);
    }
}
