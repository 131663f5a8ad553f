//! Splits a body of concatenated JSON objects into one slice per object, across
//! reads of arbitrary size.
//!
//! The scanner only tracks object nesting and string literals; the slices it yields
//! are then fully parsed, which is where malformed JSON inside an object shows up.

/// What the scanner found next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    /// A complete object at `start..end` of the buffer.
    Object { start: usize, end: usize },
    /// The buffer ends before the next object is complete.
    NeedMore,
    /// A byte that cannot start an object (a comma, an array, a bare value...).
    Unexpected { byte: u8 },
    /// The object being read has grown past the size limit.
    TooLarge,
}

/// Incremental framing state. Positions are indexes into the caller's buffer; when
/// the caller drops a consumed prefix it calls [`Scanner::shift`].
#[derive(Debug, Default)]
pub(crate) struct Scanner {
    pos: usize,
    start: usize,
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
    /// Finds the next object in `buf` (which must hold everything not yet consumed),
    /// resuming where the previous call stopped.
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
            self.depth = 0;
            self.in_string = false;
            self.escaped = false;
        }
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
                        if limit.is_some_and(|l| i - self.start > l) {
                            return Scan::TooLarge;
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
        if limit.is_some_and(|l| i - self.start > l) {
            return Scan::TooLarge;
        }
        Scan::NeedMore
    }

    /// How many leading bytes of the buffer are no longer needed.
    pub fn consumed(&self) -> usize {
        if self.in_object { self.start } else { self.pos }
    }

    /// Whether an object has started but not finished.
    pub fn in_object(&self) -> bool {
        self.in_object
    }

    /// Adjusts positions after the caller removed `n` leading bytes.
    pub fn shift(&mut self, n: usize) {
        self.pos -= n;
        self.start = self.start.saturating_sub(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(chunks: &[&[u8]]) -> (Vec<String>, Scan) {
        let mut sc = Scanner::default();
        let mut buf = Vec::new();
        let mut out = Vec::new();
        let mut last = Scan::NeedMore;
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            loop {
                last = sc.next(&buf, None);
                match last {
                    Scan::Object { start, end } => {
                        out.push(String::from_utf8(buf[start..end].to_vec()).unwrap())
                    }
                    _ => break,
                }
            }
            let n = sc.consumed();
            buf.drain(..n);
            sc.shift(n);
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
}
