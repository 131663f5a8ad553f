//! The records to produce, made on a thread of their own (input lines read
//! and parsed, or generated records) and handed over in batches, so that
//! reading overlaps sending and the hand-over costs one wake-up per batch.

use crate::input::{Item, Shape};
use ccloud_kafka_rest::DEFAULT_MAX_RECORD_BYTES;
use futures_util::stream::{self, BoxStream, StreamExt};
use std::io::{BufRead, BufReader, Read};
use tokio::sync::{mpsc, oneshot};

/// Records per batch, at most.
const BATCH_RECORDS: usize = 1024;
/// Bytes of input per batch, about: with the channel's few batches, this
/// bounds what is read ahead of the producer.
const BATCH_BYTES: usize = 1024 * 1024;
/// Batches read ahead of the producer.
const BATCHES_AHEAD: usize = 4;
const READ_BUFFER: usize = 256 * 1024;
/// The longest line read: no record made of a longer one fits (base64 and
/// JSON spacing included), and one is refused without being held whole.
pub const MAX_LINE_BYTES: usize = 4 * DEFAULT_MAX_RECORD_BYTES;

/// Where the records come from.
pub enum Source {
    /// `count` generated records with values of `size` bytes.
    Generated { count: u64, size: usize },
    /// One record per line of `input`; when `demo` is set and the input
    /// ends without a line, `demo` generated records instead.
    Lines {
        input: Box<dyn Read + Send>,
        demo: Option<(u64, usize)>,
    },
}

/// The records, in order, and the error that ended the input early, if one did.
pub fn start(
    source: Source,
    shape: Shape,
) -> (BoxStream<'static, Item>, oneshot::Receiver<std::io::Error>) {
    let (records, batches) = mpsc::channel(BATCHES_AHEAD);
    let (error_tx, error_rx) = oneshot::channel();
    let mut out = Batches::new(records);
    std::thread::Builder::new()
        .name("input".to_owned())
        .spawn(move || {
            let _ = match source {
                Source::Generated { count, size } => generate(&shape, count, size, &mut out),
                Source::Lines { input, demo } => match read_lines(&shape, input, &mut out) {
                    Ok(0) => match demo {
                        Some((count, size)) => {
                            eprintln!(
                                "standard input ended without a line: producing {count} generated records"
                            );
                            generate(&shape, count, size, &mut out)
                        }
                        None => Ok(()),
                    },
                    Ok(_) => Ok(()),
                    Err(Stop::Read(error)) => {
                        let _ = out.send();
                        let _ = error_tx.send(error);
                        Ok(())
                    }
                    Err(Stop::Gone) => Err(Stop::Gone),
                },
            }
            .and_then(|()| out.send());
        })
        .expect("a thread for reading input");
    let items = stream::unfold(batches, |mut batches| async move {
        let batch = batches.recv().await?;
        Some((stream::iter(batch), batches))
    })
    .flatten()
    .boxed();
    (items, error_rx)
}

/// Why the thread stopped early.
enum Stop {
    /// The input could not be read.
    Read(std::io::Error),
    /// Nobody takes records any more (interrupted, or the end of the run).
    Gone,
}

/// Records gathered into batches on their way to the producer.
struct Batches {
    to: mpsc::Sender<Vec<Item>>,
    batch: Vec<Item>,
    bytes: usize,
}

impl Batches {
    fn new(to: mpsc::Sender<Vec<Item>>) -> Batches {
        Batches {
            to,
            batch: Vec::with_capacity(BATCH_RECORDS),
            bytes: 0,
        }
    }

    /// Adds a record made of `bytes` bytes of input; hands the batch over
    /// when it is full.
    fn push(&mut self, item: Item, bytes: usize) -> Result<(), Stop> {
        self.batch.push(item);
        self.bytes += bytes;
        if self.batch.len() >= BATCH_RECORDS || self.bytes >= BATCH_BYTES {
            self.send()?;
        }
        Ok(())
    }

    /// Hands over what is gathered, waiting for room.
    fn send(&mut self) -> Result<(), Stop> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH_RECORDS));
        self.bytes = 0;
        self.to.blocking_send(batch).map_err(|_| Stop::Gone)
    }
}

fn generate(shape: &Shape, count: u64, size: usize, out: &mut Batches) -> Result<(), Stop> {
    let values = shape.value_maker(size);
    for i in 0..count {
        out.push(Ok(shape.generated(&values, i)), size)?;
    }
    Ok(())
}

/// Reads `input` line by line (without `\n` or `\r\n`) and returns how many
/// lines it held. What is gathered is handed over before any read that may
/// wait, so a slow source's records go out as each line comes.
fn read_lines(shape: &Shape, input: Box<dyn Read + Send>, out: &mut Batches) -> Result<u64, Stop> {
    let mut reader = BufReader::with_capacity(READ_BUFFER, input);
    // A line that spans reads, gathered here; `overlong` once it passed the cap.
    let mut pending = Vec::new();
    let mut overlong = false;
    let mut number = 0;
    loop {
        if reader.buffer().is_empty() {
            out.send()?;
        }
        let buffer = match reader.fill_buf() {
            Ok(buffer) => buffer,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(Stop::Read(error)),
        };
        if buffer.is_empty() {
            // The end: a last line without its `\n`.
            if !pending.is_empty() || overlong {
                number += 1;
                let item = line_item(shape, number, &pending, overlong);
                out.push(item, pending.len())?;
            }
            return Ok(number);
        }
        match memchr::memchr(b'\n', buffer) {
            Some(at) => {
                number += 1;
                let (item, bytes) = if pending.is_empty() && !overlong {
                    (line_item(shape, number, strip_cr(&buffer[..at]), false), at)
                } else {
                    overlong |= pending.len() + at > MAX_LINE_BYTES;
                    if !overlong {
                        pending.extend_from_slice(&buffer[..at]);
                    }
                    let item = line_item(shape, number, strip_cr(&pending), overlong);
                    (item, pending.len())
                };
                reader.consume(at + 1);
                pending.clear();
                overlong = false;
                out.push(item, bytes)?;
            }
            None => {
                let length = buffer.len();
                overlong |= pending.len() + length > MAX_LINE_BYTES;
                if overlong {
                    pending = Vec::new();
                } else {
                    pending.extend_from_slice(buffer);
                }
                reader.consume(length);
            }
        }
    }
}

/// The record of line `number` (from 1), or why there is none.
fn line_item(shape: &Shape, number: u64, line: &[u8], overlong: bool) -> Item {
    if overlong {
        return Err(format!(
            "line {number}: longer than {MAX_LINE_BYTES} bytes, more than a record can hold \
             (at most {DEFAULT_MAX_RECORD_BYTES}); skipped"
        ));
    }
    shape.parse(number, line)
}

/// A line that ended with `\r\n` without its `\r`.
fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}
