//! Report framing: delivery reports arrive as concatenated JSON objects
//! (CRLF-separated) whose boundaries do not line up with HTTP chunks. This is
//! the one place that splits them.

use crate::limits::MAX_REPORT_BYTES;
use crate::wire::report::{Repeated, ReportWire};
use bytes::BytesMut;
use std::fmt;

/// Accumulates response bytes and yields each complete report.
///
/// Complete reports are parsed straight from the piece they arrive in. What
/// is left, the start of an unfinished report, is kept and scanned (braces
/// outside strings) for where it ends, and the next pieces are scanned only
/// up to that end; then it is parsed, and the rest of the piece is parsed
/// straight again. So each byte is looked at a bounded number of times
/// however the text is cut (at most three: parsed from its piece, scanned,
/// parsed from the buffer), CRLF or not, and an unfinished report longer
/// than [`MAX_REPORT_BYTES`] is an error rather than a buffer that grows.
#[derive(Debug, Default)]
pub(crate) struct ReportDecoder {
    /// The start of an unfinished report (or nothing).
    buffer: BytesMut,
    /// The scan of `buffer`.
    scan: Scan,
    repeated: Repeated,
    /// Bytes looked at so far (parsed or scanned), for the bound above.
    examined: u64,
}

/// Why the rest of a response cannot be decoded.
#[derive(Debug)]
pub(crate) enum DecodeError {
    /// Text that is not a delivery report.
    Malformed(serde_json::Error),
    /// Text between reports that cannot start one.
    NotAReport(u8),
    /// A report went on past [`MAX_REPORT_BYTES`].
    TooLong,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Malformed(e) => write!(f, "undecodable delivery report: {e}"),
            DecodeError::NotAReport(byte) => write!(
                f,
                "undecodable delivery report: expected a JSON object, found {:?}",
                char::from(*byte)
            ),
            DecodeError::TooLong => write!(
                f,
                "a delivery report went on past {MAX_REPORT_BYTES} bytes (MAX_REPORT_BYTES) \
                 without ending"
            ),
        }
    }
}

impl ReportDecoder {
    /// Adds a chunk and appends every report it completes to `out`.
    pub(crate) fn push(
        &mut self,
        mut chunk: &[u8],
        out: &mut Vec<ReportWire>,
    ) -> Result<(), DecodeError> {
        if !self.buffer.is_empty() {
            let Some(end) = self.scan.advance(chunk)? else {
                self.examined += chunk.len() as u64;
                self.buffer.extend_from_slice(chunk);
                return self.check_length();
            };
            self.buffer.extend_from_slice(&chunk[..end]);
            self.examined += (end + self.buffer.len()) as u64;
            let (consumed, result) = parse_reports(&self.buffer, &mut self.repeated, out);
            result.map_err(DecodeError::Malformed)?;
            if consumed < self.buffer.len() {
                // Balanced braces the parser still finds unfinished.
                return Err(DecodeError::NotAReport(self.buffer[consumed]));
            }
            self.buffer.clear();
            self.scan = Scan::default();
            chunk = &chunk[end..];
        }
        // Straight from the chunk; only an unfinished tail is kept, scanned.
        self.examined += chunk.len() as u64;
        let (consumed, result) = parse_reports(chunk, &mut self.repeated, out);
        result.map_err(DecodeError::Malformed)?;
        let tail = &chunk[consumed..];
        self.examined += tail.len() as u64;
        if let Some(end) = self.scan.advance(tail)? {
            // The parser found it unfinished, the scan complete.
            return Err(DecodeError::NotAReport(tail[end - 1]));
        }
        self.buffer.extend_from_slice(tail);
        self.check_length()
    }

    fn check_length(&self) -> Result<(), DecodeError> {
        match self.buffer.len() > MAX_REPORT_BYTES {
            true => Err(DecodeError::TooLong),
            false => Ok(()),
        }
    }

    /// Whether bytes of an unfinished report are waiting.
    pub(crate) fn has_partial(&self) -> bool {
        self.buffer.iter().any(|b| !b.is_ascii_whitespace())
    }

    /// Bytes looked at so far, counting a byte once per look.
    #[cfg(test)]
    pub(crate) fn examined(&self) -> u64 {
        self.examined
    }
}

/// Where an unfinished report ends: its nesting depth and string state,
/// carried from one piece to the next.
#[derive(Debug, Default)]
struct Scan {
    depth: u32,
    in_string: bool,
    escaped: bool,
}

impl Scan {
    /// Scans `data`, the text after what was scanned before, up to the end
    /// of the value under way: returns where it ends, if it does in `data`.
    /// Text outside a value that cannot start a report is an error.
    fn advance(&mut self, data: &[u8]) -> Result<Option<usize>, DecodeError> {
        for (i, &b) in data.iter().enumerate() {
            if self.in_string {
                match b {
                    _ if self.escaped => self.escaped = false,
                    b'\\' => self.escaped = true,
                    b'"' => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'{' => self.depth = self.depth.saturating_add(1),
                _ if self.depth == 0 && !b.is_ascii_whitespace() => {
                    return Err(DecodeError::NotAReport(b));
                }
                _ if self.depth == 0 => {}
                b'"' => self.in_string = true,
                b'[' => self.depth = self.depth.saturating_add(1),
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        return Ok(Some(i + 1));
                    }
                }
                _ => {}
            }
        }
        Ok(None)
    }
}

/// Parses concatenated reports until the text ends or stops in the middle
/// of one: returns how many bytes the complete ones took, and the error if
/// the text after them is not a report. Reports in the servers' compact
/// form are read directly; others, and errors, through serde.
fn parse_reports(
    data: &[u8],
    repeated: &mut Repeated,
    out: &mut Vec<ReportWire>,
) -> (usize, Result<(), serde_json::Error>) {
    let mut consumed = 0;
    loop {
        while data.get(consumed).is_some_and(u8::is_ascii_whitespace) {
            consumed += 1;
        }
        let rest = &data[consumed..];
        if rest.is_empty() {
            return (consumed, Ok(()));
        }
        if let Some((report, len)) = ReportWire::parse_compact_in_stream(rest, Some(repeated)) {
            out.push(report);
            consumed += len;
            continue;
        }
        let mut reports = serde_json::Deserializer::from_slice(rest).into_iter();
        match reports.next() {
            Some(Ok(report)) => {
                out.push(report);
                consumed += reports.byte_offset();
            }
            // An incomplete report: wait for the next chunk.
            Some(Err(e)) if e.is_eof() => return (consumed, Ok(())),
            Some(Err(e)) => return (consumed, Err(e)),
            None => return (data.len(), Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reports(n: usize) -> Vec<u8> {
        let mut body = Vec::new();
        for i in 0..n {
            body.extend_from_slice(
                format!(
                    "{{\"error_code\":200,\"cluster_id\":\"c\",\"topic_name\":\"t\",\"partition_id\":0,\"offset\":{i},\"key\":{{\"type\":\"STRING\",\"size\":3}}}}\r\n"
                )
                .as_bytes(),
            );
            if i % 7 == 3 {
                body.extend_from_slice(
                    b"{\"error_code\":42901,\"message\":\"throttled \\u00e9\"}\r\n",
                );
            }
        }
        body
    }

    fn decode_in_pieces(
        body: &[u8],
        sizes: impl Iterator<Item = usize>,
    ) -> Vec<(i32, Option<i64>)> {
        let mut decoder = ReportDecoder::default();
        let mut out = Vec::new();
        let mut rest = body;
        for size in sizes {
            if rest.is_empty() {
                break;
            }
            let (piece, tail) = rest.split_at(size.clamp(1, rest.len()));
            decoder.push(piece, &mut out).unwrap();
            rest = tail;
        }
        decoder.push(rest, &mut out).unwrap();
        assert!(!decoder.has_partial());
        out.iter().map(|r| (r.error_code(), r.offset())).collect()
    }

    #[test]
    fn any_chunk_split_gives_the_same_reports() {
        let body = reports(50);
        let whole = decode_in_pieces(&body, std::iter::once(body.len()));
        assert_eq!(whole.len(), 50 + 7);
        for size in [1, 2, 3, 5, 7, 13, 64, 333] {
            assert_eq!(
                decode_in_pieces(&body, std::iter::repeat(size)),
                whole,
                "size {size}"
            );
        }
        // Irregular splits from a fixed pseudo-random sequence.
        let mut state = 0x2545_f491_u64;
        let sizes = std::iter::from_fn(move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            Some((state % 40) as usize + 1)
        });
        assert_eq!(decode_in_pieces(&body, sizes), whole);
    }

    #[test]
    fn reports_without_crlf_or_with_newlines_inside() {
        let mut decoder = ReportDecoder::default();
        let mut out = Vec::new();
        decoder
            .push(
                b"{\"error_code\":200,\"partition_id\":0,\"offset\":1}",
                &mut out,
            )
            .unwrap();
        assert_eq!(out.len(), 1, "a complete report is not held back");
        let pretty = b"{\n  \"error_code\": 200,\n  \"partition_id\": 0,\n  \"offset\": 2\n}\r\n";
        for cut in 1..pretty.len() {
            let mut decoder = ReportDecoder::default();
            let mut out = Vec::new();
            decoder.push(&pretty[..cut], &mut out).unwrap();
            decoder.push(&pretty[cut..], &mut out).unwrap();
            assert_eq!(out.len(), 1, "cut at {cut}");
            assert_eq!(out[0].offset(), Some(2));
            assert!(!decoder.has_partial());
        }
    }

    #[test]
    fn garbage_is_an_error_and_a_cut_report_is_partial() {
        let mut decoder = ReportDecoder::default();
        let mut out = Vec::new();
        decoder
            .push(b"{\"error_code\":200,\"partition_id\":0,\"off", &mut out)
            .unwrap();
        assert!(out.is_empty());
        assert!(decoder.has_partial());
        let mut bad = ReportDecoder::default();
        assert!(bad.push(b"<html>oops</html>", &mut out).is_err());
    }

    /// A report that never ends, in pieces of any size: each byte is looked
    /// at a bounded number of times, and past the bound it is an error.
    #[test]
    fn an_endless_report_is_bounded_in_memory_and_in_work() {
        for size in [1, 7, 4096, 64 * 1024] {
            let mut decoder = ReportDecoder::default();
            let mut out = Vec::new();
            let piece = vec![b'x'; size];
            decoder
                .push(b"{\"error_code\":200,\"message\":\"", &mut out)
                .unwrap();
            let mut pushed = 0usize;
            let error = loop {
                // Bounded: the decoder must refuse within twice the limit.
                assert!(pushed <= 2 * MAX_REPORT_BYTES, "size {size}: never refused");
                match decoder.push(&piece, &mut out) {
                    Ok(()) => pushed += size,
                    Err(e) => break e,
                }
            };
            assert!(
                matches!(error, DecodeError::TooLong),
                "size {size}: {error}"
            );
            assert!(error.to_string().contains("MAX_REPORT_BYTES"));
            assert!(out.is_empty());
            assert!(decoder.buffer.len() <= MAX_REPORT_BYTES + size);
            let total = (pushed + size) as u64;
            assert!(
                decoder.examined() <= 3 * total,
                "size {size}: {} bytes examined for {total}",
                decoder.examined()
            );
        }
    }

    /// The same with many nested objects and braces in strings, none
    /// complete: the scan's depth and string state carry across pieces.
    #[test]
    fn nesting_and_braces_in_strings_are_followed_across_pieces() {
        let text = br#"{"error_code":200,"message":"}{\"}","x":{"y":[{"z":"]"}]},"partition_id":1,"offset":5}"#;
        for cut in 1..text.len() {
            let mut decoder = ReportDecoder::default();
            let mut out = Vec::new();
            for piece in text[..cut].chunks(3).chain([&text[cut..]]) {
                decoder.push(piece, &mut out).unwrap();
            }
            assert_eq!(out.len(), 1, "cut at {cut}");
            assert_eq!(out[0].offset(), Some(5));
            assert!(!decoder.has_partial());
        }
    }

    #[test]
    fn garbage_after_a_partial_is_an_error() {
        let mut decoder = ReportDecoder::default();
        let mut out = Vec::new();
        decoder
            .push(
                b"{\"error_code\":200,\"partition_id\":0,\"offset\":1}\r\n{\"err",
                &mut out,
            )
            .unwrap();
        assert_eq!(out.len(), 1);
        assert!(decoder.push(b"or_code\":200}]", &mut out).is_err());
    }
}
