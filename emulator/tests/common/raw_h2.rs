//! A hand-driven HTTP/2 client over plain TCP (h2c with prior knowledge),
//! frame by frame, to see what the emulator sends as it is: SETTINGS,
//! RST_STREAM and GOAWAY with their codes, DATA per stream, the end of the
//! connection. It acknowledges SETTINGS and PING, and gives the window of
//! every DATA frame back unless told not to.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::timeout;

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;

const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

pub const NO_ERROR: u32 = 0x0;
pub const INTERNAL_ERROR: u32 = 0x2;

/// How long a read may take before the test fails.
const READ_WAIT: Duration = Duration::from_secs(10);

/// One frame as received.
#[derive(Debug, Clone)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The error code of an RST_STREAM or GOAWAY.
    pub fn error_code(&self) -> u32 {
        let at = if self.kind == GOAWAY { 4 } else { 0 };
        u32::from_be_bytes(self.payload[at..at + 4].try_into().unwrap())
    }

    /// The last stream id of a GOAWAY.
    pub fn last_stream_id(&self) -> u32 {
        u32::from_be_bytes(self.payload[..4].try_into().unwrap()) & 0x7fff_ffff
    }

    /// The values of a SETTINGS frame, by identifier.
    pub fn settings(&self) -> HashMap<u16, u32> {
        self.payload
            .chunks_exact(6)
            .map(|s| {
                (
                    u16::from_be_bytes([s[0], s[1]]),
                    u32::from_be_bytes([s[2], s[3], s[4], s[5]]),
                )
            })
            .collect()
    }

    pub fn ends_stream(&self) -> bool {
        matches!(self.kind, DATA | HEADERS) && self.flags & END_STREAM != 0
    }
}

/// A frame, encoded.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An HPACK literal header field without indexing, with a literal name.
fn literal(out: &mut Vec<u8>, name: &str, value: &str) {
    assert!(name.len() < 127 && value.len() < 127);
    out.push(0x00);
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
    out.push(value.len() as u8);
    out.extend_from_slice(value.as_bytes());
}

/// One HTTP/2 connection.
pub struct H2Conn {
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    raw: Vec<u8>,
    authority: String,
    next_stream: u32,
    /// Give the window of every DATA frame received back at once.
    pub window_updates: bool,
    /// Every frame received, in order.
    pub frames: Vec<Frame>,
    /// Response body bytes per stream, not read as reports yet.
    bodies: HashMap<u32, Vec<u8>>,
    /// The server closed the connection.
    pub eof: bool,
}

impl H2Conn {
    /// Connects and sends the preface and empty SETTINGS.
    pub async fn connect(addr: SocketAddr) -> H2Conn {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (reader, mut writer) = stream.into_split();
        let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        hello.extend(frame(SETTINGS, 0, 0, &[]));
        writer.write_all(&hello).await.unwrap();
        H2Conn {
            reader,
            writer,
            raw: Vec::new(),
            authority: addr.to_string(),
            next_stream: 1,
            window_updates: true,
            frames: Vec::new(),
            bodies: HashMap::new(),
            eof: false,
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> bool {
        self.writer.write_all(bytes).await.is_ok()
    }

    /// Opens a `POST` of JSON to `path` whose body is still to come; its
    /// stream id.
    pub async fn post(&mut self, path: &str) -> u32 {
        let id = self.next_stream;
        self.next_stream += 2;
        let mut block = Vec::new();
        literal(&mut block, ":method", "POST");
        literal(&mut block, ":scheme", "http");
        literal(&mut block, ":authority", &self.authority.clone());
        literal(&mut block, ":path", path);
        literal(&mut block, "content-type", "application/json");
        let bytes = frame(HEADERS, END_HEADERS, id, &block);
        assert!(self.write(&bytes).await, "connection closed");
        id
    }

    /// Sends body bytes on a stream, in frames of at most 16 KiB (the
    /// smallest limit a server may set), ending it when `end`. False when the
    /// connection is gone. Past the first 65535 bytes of a connection, wait
    /// for the server's windows first ([`ready`](Self::ready)).
    pub async fn data(&mut self, stream: u32, data: &[u8], end: bool) -> bool {
        let mut bytes = Vec::new();
        let mut pieces = data.chunks(16384).peekable();
        if pieces.peek().is_none() {
            bytes.extend(frame(DATA, if end { END_STREAM } else { 0 }, stream, &[]));
        }
        while let Some(piece) = pieces.next() {
            let last = pieces.peek().is_none();
            let flags = if end && last { END_STREAM } else { 0 };
            bytes.extend(frame(DATA, flags, stream, piece));
        }
        self.write(&bytes).await
    }

    /// Reads frames until the server's SETTINGS and its first connection
    /// WINDOW_UPDATE have arrived: its windows are known from then on.
    pub async fn ready(&mut self) {
        let (mut settings, mut window) = (false, false);
        while !(settings && window) {
            let frame = self.next_frame().await.expect("the server's SETTINGS");
            settings |= frame.kind == SETTINGS && frame.flags & ACK == 0;
            window |= frame.kind == WINDOW_UPDATE && frame.stream == 0;
        }
    }

    /// Whether `stream` has ended (or been reset) in what was received.
    pub fn ended(&self, stream: u32) -> bool {
        self.frames
            .iter()
            .any(|f| f.stream == stream && (f.ends_stream() || f.kind == RST_STREAM))
    }

    /// The next frame that is not an acknowledgement, answering SETTINGS and
    /// PING; `None` once the connection has closed.
    pub async fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if self.raw.len() >= 9 {
                let len = u32::from_be_bytes([0, self.raw[0], self.raw[1], self.raw[2]]) as usize;
                if self.raw.len() >= 9 + len {
                    let head: Vec<u8> = self.raw.drain(..9).collect();
                    let payload: Vec<u8> = self.raw.drain(..len).collect();
                    let frame = Frame {
                        kind: head[3],
                        flags: head[4],
                        stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]])
                            & 0x7fff_ffff,
                        payload,
                    };
                    self.answer(&frame).await;
                    self.frames.push(frame.clone());
                    return Some(frame);
                }
            }
            if self.eof {
                return None;
            }
            let mut buf = [0u8; 16384];
            match timeout(READ_WAIT, self.reader.read(&mut buf))
                .await
                .expect("read in time")
            {
                Ok(0) | Err(_) => self.eof = true,
                Ok(n) => self.raw.extend_from_slice(&buf[..n]),
            }
        }
    }

    async fn answer(&mut self, frame: &Frame) {
        match frame.kind {
            SETTINGS if frame.flags & ACK == 0 => {
                let _ = self.write(&self::frame(SETTINGS, ACK, 0, &[])).await;
            }
            PING if frame.flags & ACK == 0 => {
                let _ = self.write(&self::frame(PING, ACK, 0, &frame.payload)).await;
            }
            DATA => {
                self.bodies
                    .entry(frame.stream)
                    .or_default()
                    .extend_from_slice(&frame.payload);
                if self.window_updates && !frame.payload.is_empty() {
                    let n = u32::try_from(frame.payload.len()).unwrap().to_be_bytes();
                    let mut bytes = self::frame(WINDOW_UPDATE, 0, 0, &n);
                    bytes.extend(self::frame(WINDOW_UPDATE, 0, frame.stream, &n));
                    let _ = self.write(&bytes).await;
                }
            }
            _ => {}
        }
    }

    /// Reads frames until `done` holds for one, which it returns; `None`
    /// when the connection closes first.
    pub async fn until(&mut self, mut done: impl FnMut(&Frame) -> bool) -> Option<Frame> {
        while let Some(frame) = self.next_frame().await {
            if done(&frame) {
                return Some(frame);
            }
        }
        None
    }

    /// The next complete report of `stream` (CRLF-terminated), reading
    /// frames as needed; `None` when the stream ends (or is reset) or the
    /// connection closes first.
    pub async fn report(&mut self, stream: u32) -> Option<Value> {
        loop {
            let body = self.bodies.entry(stream).or_default();
            if let Some(end) = body.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = body.drain(..end + 2).collect();
                return Some(serde_json::from_slice(&line[..end]).unwrap());
            }
            let frame = self.next_frame().await?;
            if frame.stream == stream
                && (frame.ends_stream() || frame.kind == RST_STREAM)
                && !self.bodies[&stream].windows(2).any(|w| w == b"\r\n")
            {
                return None;
            }
        }
    }

    /// The frames received on `stream` so far, of `kind`.
    pub fn received(&self, stream: u32, kind: u8) -> Vec<&Frame> {
        self.frames
            .iter()
            .filter(|f| f.stream == stream && f.kind == kind)
            .collect()
    }
}
