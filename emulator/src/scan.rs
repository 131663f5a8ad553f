//! Splits a body of concatenated JSON objects into one slice per object, across
//! reads of arbitrary size.
//!
//! The scanner only tracks object nesting and string literals; the slices it yields
//! are then fully parsed, which is where malformed JSON inside an object shows up.
//! Each read is scanned where it lies: only the bytes of an object that spans
//! reads need to be kept by the caller, never a whole read.

/// What the scanner found next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    /// A complete object at `start..end` of the buffer.
    Object { start: usize, end: usize },
    /// The end of an object that began in an earlier buffer: its text is the
    /// bytes kept from earlier buffers followed by `..end` of this one.
    Rest { end: usize },
    /// The buffer ends before the next object is complete.
    NeedMore,
    /// A byte that cannot start an object (a comma, an array, a bare value...).
    Unexpected { byte: u8 },
    /// The object being read has grown past the size limit.
    TooLarge,
}

/// Incremental framing state. Positions are indexes into the current buffer; once
/// a buffer has been scanned to its end, [`Scanner::next_buffer`] moves on.
#[derive(Debug, Default)]
pub(crate) struct Scanner {
    pos: usize,
    start: usize,
    /// Bytes of the current object in earlier buffers.
    carried: usize,
    in_object: bool,
    depth: u32,
    in_string: bool,
    escaped: bool,
}

/// JSON's insignificant whitespace.
pub(crate) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

impl Scanner {
    /// Finds the next object in `buf`, resuming where the previous call stopped.
    pub fn next(&mut self, buf: &[u8], limit: Option<usize>) -> Scan {
        if !self.in_object {
            while self.pos < buf.len() && is_ws(buf[self.pos]) {
                self.pos += 1;
            }
            let Some(&first) = buf.get(self.pos) else {
                return Scan::NeedMore;
            };
            if first != b'{' {
                return Scan::Unexpected { byte: first };
            }
            self.in_object = true;
            self.start = self.pos;
            self.carried = 0;
            self.depth = 0;
            self.in_string = false;
            self.escaped = false;
        }
        let too_large =
            |end: usize, s: &Scanner| limit.is_some_and(|l| s.carried + end - s.start > l);
        let mut i = self.pos;
        while i < buf.len() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                    i += 1;
                    continue;
                }
                // Most of a record is string contents: skip to the next quote
                // or backslash at once.
                match memchr::memchr2(b'"', b'\\', &buf[i..]) {
                    Some(k) => {
                        i += k;
                        if buf[i] == b'"' {
                            self.in_string = false;
                        } else {
                            self.escaped = true;
                        }
                        i += 1;
                    }
                    None => i = buf.len(),
                }
                continue;
            }
            let b = buf[i];
            i += 1;
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        self.pos = i;
                        self.in_object = false;
                        if too_large(i, self) {
                            return Scan::TooLarge;
                        }
                        if self.carried > 0 {
                            self.carried = 0;
                            return Scan::Rest { end: i };
                        }
                        return Scan::Object {
                            start: self.start,
                            end: i,
                        };
                    }
                }
                _ => {}
            }
        }
        self.pos = i;
        if too_large(i, self) {
            return Scan::TooLarge;
        }
        Scan::NeedMore
    }

    /// Moves on to the next buffer once `next` has answered
    /// [`NeedMore`](Scan::NeedMore) for a buffer of `len` bytes. Returns where
    /// the unfinished object begins in that buffer, if there is one: the caller
    /// keeps those bytes, as the object's text continues in the next buffer.
    pub fn next_buffer(&mut self, len: usize) -> Option<usize> {
        self.pos = 0;
        if !self.in_object {
            return None;
        }
        let from = self.start;
        self.carried += len - from;
        self.start = 0;
        Some(from)
    }

    /// Where the next object starts in `buf`, when none is in progress and its
    /// first byte is there: for a reader that takes a whole object at once and
    /// then calls [`skip_to`](Self::skip_to).
    pub fn next_start(&mut self, buf: &[u8]) -> Option<usize> {
        if self.in_object {
            return None;
        }
        while self.pos < buf.len() && is_ws(buf[self.pos]) {
            self.pos += 1;
        }
        (buf.get(self.pos) == Some(&b'{')).then_some(self.pos)
    }

    /// Resumes after an object that was read whole and ends at `end` of the
    /// buffer.
    pub fn skip_to(&mut self, end: usize) {
        self.pos = end;
    }

    /// Whether an object has started but not finished.
    pub fn in_object(&self) -> bool {
        self.in_object
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every object found in the chunks, and the last scan result.
    fn all(chunks: &[&[u8]]) -> (Vec<String>, Scan) {
        let mut sc = Scanner::default();
        let mut kept = Vec::new();
        let mut out = Vec::new();
        let mut last = Scan::NeedMore;
        for chunk in chunks {
            loop {
                last = sc.next(chunk, None);
                match last {
                    Scan::Object { start, end } => {
                        out.push(String::from_utf8(chunk[start..end].to_vec()).unwrap())
                    }
                    Scan::Rest { end } => {
                        kept.extend_from_slice(&chunk[..end]);
                        out.push(String::from_utf8(std::mem::take(&mut kept)).unwrap())
                    }
                    _ => break,
                }
            }
            if last != Scan::NeedMore {
                break;
            }
            if let Some(from) = sc.next_buffer(chunk.len()) {
                kept.extend_from_slice(&chunk[from..]);
            }
        }
        (out, last)
    }

    #[test]
    fn splits_across_chunks() {
        let (objs, last) = all(&[b" {\"a\":\"}{\\\"\"", b",\"b\":[{}]}\r\n{", b"}  "]);
        assert_eq!(objs, vec![r#"{"a":"}{\"","b":[{}]}"#, "{}"]);
        assert_eq!(last, Scan::NeedMore);
    }

    #[test]
    fn rejects_separators() {
        let (objs, last) = all(&[b"{} , {}"]);
        assert_eq!(objs, vec!["{}"]);
        assert_eq!(last, Scan::Unexpected { byte: b',' });
        let (_, last) = all(&[b"[{}]"]);
        assert_eq!(last, Scan::Unexpected { byte: b'[' });
    }

    #[test]
    fn strings_with_escapes_split_anywhere() {
        let text: &[u8] = br#" {"a":"x\\\"}{[","b":{"c":["\\",""]}}{"d":"\u0022"}"#;
        let whole = all(&[text]).0;
        assert_eq!(whole.len(), 2);
        for cut in 1..text.len() {
            let (head, tail) = text.split_at(cut);
            assert_eq!(all(&[head, tail]).0, whole, "cut at {cut}");
        }
    }

    #[test]
    fn limit() {
        let mut sc = Scanner::default();
        assert_eq!(sc.next(b"{\"aaaa", Some(4)), Scan::TooLarge);
        let mut sc = Scanner::default();
        assert_eq!(sc.next(b"{}", Some(2)), Scan::Object { start: 0, end: 2 });
    }

    #[test]
    fn byte_at_a_time() {
        let text: &[u8] = br#" {"a":"x\\\"}{[","b":{"c":["\\",""]}} {"d":"\u0022"}"#;
        let whole = all(&[text]).0;
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(all(&bytes).0, whole);
    }

    #[test]
    fn limit_counts_earlier_buffers() {
        let mut sc = Scanner::default();
        assert_eq!(sc.next(b"  {\"a", Some(7)), Scan::NeedMore);
        assert_eq!(sc.next_buffer(5), Some(2));
        assert_eq!(sc.next(b"\":1}{", Some(7)), Scan::Rest { end: 4 });
        assert_eq!(sc.next(b"\":1}{", Some(7)), Scan::NeedMore);
        assert_eq!(sc.next_buffer(5), Some(4));
        assert_eq!(sc.next(b"\"ab\":1}", Some(7)), Scan::TooLarge);
    }
}
