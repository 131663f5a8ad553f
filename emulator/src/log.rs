//! One partition's log: the key and value bytes of its records packed into
//! large blocks, and a small fixed-size entry per record.
//!
//! Appending a record copies its bytes into the current block instead of
//! allocating for each key and value, so memory grows in a few large steps.

use chrono::{DateTime, Utc};

use super::DataType;
use super::record::{Headers, Prepared};

/// The size of a partition's first block; each next block doubles it, up to
/// [`MAX_BLOCK`].
const FIRST_BLOCK: usize = 4 * 1024;

/// The largest block made for several records. A record that does not fit one
/// gets a block of its own. Blocks stay under the allocator's threshold for
/// mapping memory of their own, so that the memory of a dropped log is reused
/// rather than unmapped and faulted in again.
const MAX_BLOCK: usize = 64 * 1024;

/// Marks a null key or value in an [`Entry`].
const NULL: u32 = u32::MAX;

/// A record as kept in the log: where its key and value bytes are (the key's,
/// then the value's, in one block) and what else it carries.
struct Entry {
    block: u32,
    start: u32,
    /// Key bytes, or [`NULL`].
    key_len: u32,
    /// Value bytes, or [`NULL`].
    value_len: u32,
    key_type: Option<DataType>,
    value_type: Option<DataType>,
    timestamp_millis: i64,
    /// Boxed: few records have headers, and the entry stays small without them.
    headers: Option<Box<Headers>>,
}

/// A record read back from the log.
pub(crate) struct LogRecord<'a> {
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub key_type: Option<DataType>,
    pub value_type: Option<DataType>,
    pub headers: &'a [(String, Option<Vec<u8>>)],
    pub timestamp: DateTime<Utc>,
}

/// The records of one partition, in offset order.
#[derive(Default)]
pub(crate) struct PartitionLog {
    /// Filled in order; only the last one receives new bytes, and no block ever
    /// grows past its capacity, so its bytes never move.
    blocks: Vec<Vec<u8>>,
    entries: Vec<Entry>,
}

impl PartitionLog {
    /// Appends a record (whose key plus value is under 4 GiB, as the size check
    /// before appending ensures) and returns its offset. The record's headers
    /// are taken; it is passed by reference only to spare copying it.
    pub fn append(&mut self, record: &mut Prepared<'_>, timestamp: DateTime<Utc>) -> i64 {
        let key = record.key.as_ref().and_then(|k| k.data.as_deref());
        let value = record.value.as_ref().and_then(|v| v.data.as_deref());
        let size = key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len);
        let block = self.block_with_room(size);
        let start = block.len() as u32;
        let mut put = |bytes: Option<&[u8]>| match bytes {
            Some(bytes) => {
                block.extend_from_slice(bytes);
                bytes.len() as u32
            }
            None => NULL,
        };
        let key_len = put(key);
        let value_len = put(value);
        let offset = self.entries.len() as i64;
        self.entries.push(Entry {
            block: (self.blocks.len() - 1) as u32,
            start,
            key_len,
            value_len,
            key_type: record.key.as_ref().map(|k| k.ty),
            value_type: record.value.as_ref().map(|v| v.ty),
            timestamp_millis: timestamp.timestamp_millis(),
            headers: (!record.headers.is_empty())
                .then(|| Box::new(std::mem::take(&mut record.headers))),
        });
        offset
    }

    /// The block to copy `size` more bytes into, starting a new one when the
    /// last one has no room left.
    fn block_with_room(&mut self, size: usize) -> &mut Vec<u8> {
        let full = self
            .blocks
            .last()
            .is_none_or(|block| block.capacity() - block.len() < size);
        if full {
            let next = self
                .blocks
                .last()
                .map_or(FIRST_BLOCK, |block| (block.capacity() * 2).min(MAX_BLOCK));
            self.blocks.push(Vec::with_capacity(next.max(size)));
        }
        self.blocks.last_mut().expect("a block was just ensured")
    }

    /// The records in offset order.
    pub fn iter(&self) -> impl Iterator<Item = LogRecord<'_>> {
        self.iter_from(0)
    }

    /// The records from offset `from` on, in offset order.
    pub fn iter_from(&self, from: usize) -> impl Iterator<Item = LogRecord<'_>> {
        let skipped = self.entries.get(from..).unwrap_or_default();
        skipped.iter().enumerate().map(move |(i, e)| {
            let offset = from + i;
            let block = &self.blocks[e.block as usize];
            let mut at = e.start as usize;
            let mut take = |len: u32| {
                (len != NULL).then(|| {
                    let bytes = &block[at..at + len as usize];
                    at += len as usize;
                    bytes
                })
            };
            let key = take(e.key_len);
            let value = take(e.value_len);
            LogRecord {
                offset: offset as i64,
                key,
                value,
                key_type: e.key_type,
                value_type: e.value_type,
                headers: e.headers.as_deref().map_or(&[], Vec::as_slice),
                timestamp: DateTime::from_timestamp_millis(e.timestamp_millis)
                    .expect("stored from a valid timestamp"),
            }
        })
    }

    /// How many records the log holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::record::Payload;

    fn record(key: Option<&[u8]>, value: Option<Vec<u8>>, headers: Headers) -> Prepared<'_> {
        Prepared {
            partition: None,
            key: Some(Payload {
                ty: DataType::String,
                data: key.map(Cow::Borrowed),
            }),
            value: value.map(|v| Payload {
                ty: DataType::Binary,
                data: Some(Cow::Owned(v)),
            }),
            headers,
            timestamp: None,
        }
    }

    #[test]
    fn reads_back_what_was_appended() {
        let mut log = PartitionLog::default();
        let at = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
        let big = vec![7u8; 3 * MAX_BLOCK];
        let mut expected = Vec::new();
        for i in 0..5000usize {
            let key = format!("k{i}").into_bytes();
            let value = match i % 3 {
                0 => None,
                1 if i == 1 => Some(big.clone()),
                _ => Some(vec![i as u8; i % 700]),
            };
            let headers = if i % 7 == 0 {
                vec![("h".to_owned(), Some(vec![1, 2])), ("n".to_owned(), None)]
            } else {
                Vec::new()
            };
            let key = (i % 5 != 0).then_some(key);
            let offset = log.append(
                &mut record(key.as_deref(), value.clone(), headers.clone()),
                at + chrono::Duration::milliseconds(i as i64),
            );
            assert_eq!(offset, i as i64);
            expected.push((key, value, headers));
        }
        assert_eq!(log.len(), expected.len());
        for (read, (key, value, headers)) in log.iter().zip(&expected) {
            assert_eq!(read.key, key.as_deref());
            assert_eq!(read.value, value.as_deref());
            assert_eq!(read.headers, &headers[..]);
            assert_eq!(read.key_type, Some(DataType::String));
            assert_eq!(read.value_type, value.as_ref().map(|_| DataType::Binary));
            assert_eq!(
                read.timestamp,
                at + chrono::Duration::milliseconds(read.offset)
            );
        }
        assert!(log.blocks.iter().all(|b| b.len() <= b.capacity()));
    }
}
