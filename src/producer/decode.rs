//! Report framing: delivery reports arrive as concatenated JSON objects
//! (CRLF-separated) whose boundaries do not line up with HTTP chunks. This is
//! the one place that splits them.

use crate::report::ReportWire;
use bytes::{Buf, BytesMut};

/// Accumulates response bytes and yields each complete report.
#[derive(Debug, Default)]
pub(crate) struct ReportDecoder {
    buffer: BytesMut,
}

impl ReportDecoder {
    /// Adds a chunk and appends every report it completes to `out`.
    pub(crate) fn push(
        &mut self,
        chunk: &[u8],
        out: &mut Vec<ReportWire>,
    ) -> Result<(), serde_json::Error> {
        self.buffer.extend_from_slice(chunk);
        let mut reports = serde_json::Deserializer::from_slice(&self.buffer).into_iter();
        let mut consumed = 0;
        let result = loop {
            match reports.next() {
                Some(Ok(report)) => {
                    out.push(report);
                    consumed = reports.byte_offset();
                }
                // An incomplete report: wait for the next chunk.
                Some(Err(e)) if e.is_eof() => break Ok(()),
                Some(Err(e)) => break Err(e),
                None => {
                    consumed = reports.byte_offset();
                    break Ok(());
                }
            }
        };
        self.buffer.advance(consumed);
        result
    }

    /// Whether bytes of an unfinished report are waiting.
    pub(crate) fn has_partial(&self) -> bool {
        self.buffer.iter().any(|b| !b.is_ascii_whitespace())
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
