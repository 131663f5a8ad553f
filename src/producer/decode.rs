//! Report framing: delivery reports arrive as concatenated JSON objects
//! (CRLF-separated) whose boundaries do not line up with HTTP chunks. This is
//! the one place that splits them.

use crate::report::{Repeated, ReportWire};
use bytes::{Buf, BytesMut};

/// Accumulates response bytes and yields each complete report.
///
/// Reports end with CRLF, so only the text up to the last line feed of what
/// has arrived is parsed; the rest waits for more bytes unless it looks like
/// a complete report (a server that leaves out the CRLF). A report cut
/// across many small pieces is therefore parsed once, not once per piece.
#[derive(Debug, Default)]
pub(crate) struct ReportDecoder {
    buffer: BytesMut,
    repeated: Repeated,
}

impl ReportDecoder {
    /// Adds a chunk and appends every report it completes to `out`.
    pub(crate) fn push(
        &mut self,
        chunk: &[u8],
        out: &mut Vec<ReportWire>,
    ) -> Result<(), serde_json::Error> {
        if self.buffer.is_empty() {
            // Straight from the chunk; only an unfinished tail is copied.
            let (consumed, result) = parse_complete(chunk, &mut self.repeated, out);
            self.buffer.extend_from_slice(&chunk[consumed..]);
            return result;
        }
        self.buffer.extend_from_slice(chunk);
        let (consumed, result) = parse_complete(&self.buffer, &mut self.repeated, out);
        self.buffer.advance(consumed);
        result
    }

    /// Whether bytes of an unfinished report are waiting.
    pub(crate) fn has_partial(&self) -> bool {
        self.buffer.iter().any(|b| !b.is_ascii_whitespace())
    }
}

/// Parses the complete reports at the start of `data`: returns how many
/// bytes they took and whether the text after them is malformed.
fn parse_complete(
    data: &[u8],
    repeated: &mut Repeated,
    out: &mut Vec<ReportWire>,
) -> (usize, Result<(), serde_json::Error>) {
    let lines = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let (mut consumed, result) = parse_reports(&data[..lines], repeated, out);
    if result.is_err() {
        return (consumed, result);
    }
    let rest = data[consumed..].trim_ascii();
    // A complete report without its CRLF, or text that cannot start one
    // (parsed now, to fail now).
    if rest.ends_with(b"}") || rest.first().is_some_and(|&b| b != b'{') {
        let (more, result) = parse_reports(&data[consumed..], repeated, out);
        consumed += more;
        return (consumed, result);
    }
    (consumed, Ok(()))
}

/// Parses concatenated reports until the text ends or stops in the middle
/// of one. Reports in the servers' compact form are read directly; others,
/// and errors, through serde.
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
}
