//! Records from input lines, or generated ones.

use crate::args::{Args, Format};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ccloud_kafka_rest::{Payload, Record};

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

    /// What [`Shape::generated`] takes its values from: `size` printable
    /// bytes from each offset of a repeating text.
    pub fn value_maker(&self, size: usize) -> Values {
        let text = TEXT.repeat(size / TEXT.len() + 2);
        Values { text, size }
    }

    /// Generated record `i`: key `key-{i}`, a value of printable bytes.
    pub fn generated(&self, values: &Values, i: u64) -> Record {
        let start = (i % TEXT.len() as u64) as usize;
        let value = values.text[start..start + values.size].to_owned();
        let mut key = String::with_capacity(24);
        key.push_str("key-");
        key.push_str(itoa::Buffer::new().format(i));
        self.finish(Record::new().with_key(key).with_value(value))
    }
}

const TEXT: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// See [`Shape::value_maker`].
pub struct Values {
    text: String,
    size: usize,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
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
