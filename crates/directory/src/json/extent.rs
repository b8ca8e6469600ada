//! Finding where a JSON value ends in the fast path's window, without parsing it.

use super::window::GiveUp;

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
