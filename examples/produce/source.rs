//! The records to produce, made on a thread of their own (input lines read
//! and parsed, or generated records) and handed over in batches, so that
//! reading overlaps sending and the hand-over costs one wake-up per batch.

use crate::input::{Item, Shape};
use ccloud_kafka_rest::DEFAULT_MAX_RECORD_BYTES;
use futures_util::stream::{self, BoxStream, StreamExt};
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::SeqCst;
use tokio::sync::{mpsc, oneshot, watch};

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

/// Ctrl-C as the input thread and the runtime see it.
#[derive(Clone)]
pub struct Interrupt {
    /// Set first: the thread reads it before each record.
    pub pressed: Arc<AtomicBool>,
    /// Then this, for the runtime's side.
    pub watch: watch::Receiver<bool>,
}

/// Each record made into a `T` by `hand` on the input thread (the streaming
/// producer's hand-over runs there, beside the reading), in order, and how
/// the input ended: `Ok` at its end, an error when a read failed; nothing
/// sent when the thread failed, and nothing yet when it waits on a read
/// after Ctrl-C. After Ctrl-C no further
/// record is handed over, and the stream ends once every record handed over
/// has come out of it.
pub fn start<T: Send + 'static>(
    source: Source,
    shape: Shape,
    interrupt: Interrupt,
    hand: impl FnMut(Item) -> T + Send + 'static,
) -> (
    BoxStream<'static, T>,
    oneshot::Receiver<std::io::Result<()>>,
) {
    let (records, batches) = mpsc::channel(BATCHES_AHEAD);
    let (end_tx, end_rx) = oneshot::channel();
    let reading = Arc::new(AtomicBool::new(false));
    // The thread is in the caller's runtime, entered once for every record
    // handed over (a lane's task is started on it).
    let runtime = tokio::runtime::Handle::current();
    let mut out = Batches {
        to: records,
        hand,
        batch: Vec::with_capacity(BATCH_RECORDS),
        bytes: 0,
        reading: Arc::clone(&reading),
        pressed: Arc::clone(&interrupt.pressed),
    };
    std::thread::Builder::new()
        .name("input".to_owned())
        .spawn(move || {
            let _entered = runtime.enter();
            let ended = match source {
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
                    Err(stop) => Err(stop),
                },
            }
            .and_then(|()| out.send());
            // Sent before the channel closes with this thread's end: the
            // stream's reader finds it when the records end.
            let _ = end_tx.send(match ended {
                Err(Stop::Read(error)) => {
                    let _ = out.send();
                    Err(error)
                }
                _ => Ok(()),
            });
        })
        .expect("a thread for reading input");
    let state = (batches, interrupt.watch, reading);
    let items = stream::unfold(state, |(mut batches, mut watch, reading)| async move {
        if !*watch.borrow() {
            let batch = tokio::select! {
                biased;
                batch = batches.recv() => Some(batch),
                _ = watch.wait_for(|pressed| *pressed) => None,
            };
            if let Some(batch) = batch {
                return Some((stream::iter(batch?), (batches, watch, reading)));
            }
        }
        // Interrupted: what the thread handed over is taken until it has
        // stopped, or waits on a read, which cannot be cancelled (it hands
        // its batch over before any read).
        loop {
            match batches.try_recv() {
                Ok(batch) => return Some((stream::iter(batch), (batches, watch, reading))),
                Err(mpsc::error::TryRecvError::Disconnected) => return None,
                Err(mpsc::error::TryRecvError::Empty) if reading.load(SeqCst) => {
                    return match batches.try_recv() {
                        Ok(batch) => Some((stream::iter(batch), (batches, watch, reading))),
                        Err(_) => None,
                    };
                }
                Err(mpsc::error::TryRecvError::Empty) => {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await
                }
            }
        }
    })
    .flatten()
    .boxed();
    (items, end_rx)
}

/// Why the thread stopped early.
enum Stop {
    /// The input could not be read.
    Read(std::io::Error),
    /// Nobody takes records any more (interrupted, or the end of the run).
    Gone,
}

/// Records gathered into batches on their way to the producer.
struct Batches<T, H> {
    to: mpsc::Sender<Vec<T>>,
    hand: H,
    batch: Vec<T>,
    bytes: usize,
    /// Set while the thread waits on a read with nothing gathered.
    reading: Arc<AtomicBool>,
    pressed: Arc<AtomicBool>,
}

impl<T, H: FnMut(Item) -> T> Batches<T, H> {
    /// Adds a record made of `bytes` bytes of input; hands the batch over
    /// when it is full. Stops after Ctrl-C, with what was gathered handed over.
    fn push(&mut self, item: Item, bytes: usize) -> Result<(), Stop> {
        if self.pressed.load(SeqCst) {
            self.send()?;
            return Err(Stop::Gone);
        }
        self.batch.push((self.hand)(item));
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

fn generate<T, H: FnMut(Item) -> T>(
    shape: &Shape,
    count: u64,
    size: usize,
    out: &mut Batches<T, H>,
) -> Result<(), Stop> {
    let values = shape.value_maker(size);
    for i in 0..count {
        out.push(Ok(shape.generated(&values, i)), size)?;
    }
    Ok(())
}

/// Reads `input` line by line (without `\n` or `\r\n`) and returns how many
/// lines it held. What is gathered is handed over before any read that may
/// wait, so a slow source's records go out as each line comes.
fn read_lines<T, H: FnMut(Item) -> T>(
    shape: &Shape,
    input: Box<dyn Read + Send>,
    out: &mut Batches<T, H>,
) -> Result<u64, Stop> {
    let mut reader = BufReader::with_capacity(READ_BUFFER, input);
    // A line that spans reads, gathered here; `overlong` once it passed the cap.
    let mut pending = Vec::new();
    let mut overlong = false;
    let mut number = 0;
    loop {
        if reader.buffer().is_empty() {
            out.send()?;
            out.reading.store(true, SeqCst);
        }
        let read = reader.fill_buf();
        out.reading.store(false, SeqCst);
        let buffer = match read {
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
