//! Records from input lines, or generated ones.

use crate::args::{Args, Format};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ccloud_kafka_rest::{Payload, Record};
use futures_util::stream::{self, BoxStream, StreamExt};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// A record, or why its line could not become one.
pub type Item = Result<Record, String>;

/// How every record is completed: partition and headers from the flags.
#[derive(Clone)]
pub struct Shape {
    key_format: Format,
    value_format: Format,
    key_separator: Option<String>,
    partition: Option<i32>,
    headers: Vec<(String, String)>,
}

impl Shape {
    pub fn new(args: &Args) -> Shape {
        Shape {
            key_format: args.key_format.unwrap_or(args.format),
            value_format: args.value_format.unwrap_or(args.format),
            key_separator: args.key_separator.clone(),
            partition: args.partition,
            headers: args.headers.clone(),
        }
    }

    fn finish(&self, mut record: Record) -> Record {
        if let Some(partition) = self.partition {
            record = record.with_partition(partition);
        }
        for (name, value) in &self.headers {
            record = record.with_header(name.clone(), value.clone().into_bytes());
        }
        record
    }

    /// The record of input line `number` (from 1), without its line ending.
    pub fn parse(&self, number: u64, line: &[u8]) -> Item {
        let (key, value) = match &self.key_separator {
            None => (None, line),
            Some(separator) => {
                let at = find(line, separator.as_bytes())
                    .ok_or_else(|| format!("line {number}: no key separator {separator:?}"))?;
                (Some(&line[..at]), &line[at + separator.len()..])
            }
        };
        let value = payload(self.value_format, value).map_err(|e| {
            format!(
                "line {number}: value is not {}: {e}",
                name(self.value_format)
            )
        })?;
        let mut record = Record::from_value(value);
        if let Some(key) = key {
            let key = payload(self.key_format, key)
                .map_err(|e| format!("line {number}: key is not {}: {e}", name(self.key_format)))?;
            record = record.with_key(key);
        }
        Ok(self.finish(record))
    }

    /// Generated record `i`: key `key-{i}`, a value of `size` printable bytes.
    pub fn generated(&self, i: u64, size: usize) -> Record {
        const TEXT: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let start = (i % TEXT.len() as u64) as usize;
        let value: String = TEXT
            .iter()
            .cycle()
            .skip(start)
            .take(size)
            .map(|&b| b as char)
            .collect();
        self.finish(Record::new().with_key(format!("key-{i}")).with_value(value))
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The lines of `reader` (without `\n` or `\r\n`) as they are read; a read
/// error ends the lines after being reported in their place.
pub fn lines<R>(reader: R) -> BoxStream<'static, std::io::Result<Vec<u8>>>
where
    R: AsyncBufRead + Unpin + Send + 'static,
{
    stream::unfold(Some(reader), |reader| async move {
        let mut reader = reader?;
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) => None,
            Ok(_) => {
                if line.ends_with(b"\n") {
                    line.pop();
                    if line.ends_with(b"\r") {
                        line.pop();
                    }
                }
                Some((Ok(line), Some(reader)))
            }
            Err(error) => Some((Err(error), None)),
        }
    })
    .boxed()
}

/// A key or value read from `text` in `format`.
fn payload(format: Format, text: &[u8]) -> Result<Payload, String> {
    match format {
        Format::String => std::str::from_utf8(text)
            .map(Payload::from)
            .map_err(|e| e.to_string()),
        Format::Json => serde_json::from_slice::<serde_json::Value>(text)
            .map(Payload::from)
            .map_err(|e| e.to_string()),
        Format::Binary => STANDARD
            .decode(text)
            .map(Payload::from)
            .map_err(|e| e.to_string()),
    }
}

/// What `format` expects, for messages.
fn name(format: Format) -> &'static str {
    match format {
        Format::String => "UTF-8 text",
        Format::Json => "JSON",
        Format::Binary => "standard base64",
    }
}
