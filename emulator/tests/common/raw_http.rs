//! Plain HTTP clients for the emulator's wire tests: reqwest without the
//! crate, and a hand-driven HTTP/1.1 client for the streaming endpoint whose
//! request body is written chunk by chunk while the response is read, with
//! exact control over chunk boundaries and over when the body ends.

use ccloud_kafka_rest_emulator::Emulator;
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// A plain reqwest client. reqwest is built without a default TLS crypto
/// provider, so one is installed first even though these tests never use TLS.
pub fn client() -> reqwest::Client {
    static PROVIDER: std::sync::Once = std::sync::Once::new();
    PROVIDER.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::new()
}

/// How long a read may take before the test fails.
const READ_WAIT: Duration = Duration::from_secs(10);

/// One chunked `POST` and its response.
pub struct RawConn {
    reader: OwnedReadHalf,
    writer: Option<OwnedWriteHalf>,
    /// Response bytes not decoded yet.
    raw: Vec<u8>,
    /// Decoded response body not read as reports yet.
    body: Vec<u8>,
    /// The payload of every response chunk, in order.
    pub chunks: Vec<Vec<u8>>,
    status: Option<u16>,
    /// The response head (status line and headers), once it has arrived.
    pub head: Option<String>,
    chunked: bool,
    /// The response's final chunk arrived.
    pub ended: bool,
    /// The server closed the connection.
    pub eof: bool,
}

/// One chunk of a chunked body, framed.
pub fn chunk_frame(data: &[u8]) -> Vec<u8> {
    let mut frame = format!("{:x}\r\n", data.len()).into_bytes();
    frame.extend_from_slice(data);
    frame.extend_from_slice(b"\r\n");
    frame
}

impl RawConn {
    /// Connects and sends the request head for `path`, with JSON content
    /// and a chunked body.
    pub async fn open(emu: &Emulator, path: &str, extra_headers: &[(&str, &str)]) -> RawConn {
        let stream = TcpStream::connect(emu.addr()).await.unwrap();
        let (reader, mut writer) = stream.into_split();
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n",
            emu.addr()
        );
        for (name, value) in extra_headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        writer.write_all(head.as_bytes()).await.unwrap();
        RawConn {
            reader,
            writer: Some(writer),
            raw: Vec::new(),
            body: Vec::new(),
            chunks: Vec::new(),
            status: None,
            head: None,
            chunked: false,
            ended: false,
            eof: false,
        }
    }

    /// Writes one body chunk (nothing for empty data, which would end the
    /// body); false if the connection is gone.
    pub async fn chunk(&mut self, data: &[u8]) -> bool {
        if data.is_empty() {
            return true;
        }
        let writer = self.writer.as_mut().expect("body still open");
        writer.write_all(&chunk_frame(data)).await.is_ok() && writer.flush().await.is_ok()
    }

    /// Writes bytes as they are, chunk framing and all; false if the
    /// connection is gone.
    pub async fn raw(&mut self, bytes: &[u8]) -> bool {
        let writer = self.writer.as_mut().expect("body still open");
        writer.write_all(bytes).await.is_ok() && writer.flush().await.is_ok()
    }

    /// Ends the body.
    pub async fn finish(&mut self) {
        let writer = self.writer.as_mut().expect("body still open");
        writer.write_all(b"0\r\n\r\n").await.unwrap();
    }

    /// Writes the body in the background (then ends it), so that a large body
    /// cannot dead-lock against unread reports. Write errors are ignored: the
    /// server may drop the connection on purpose.
    pub fn send_all(&mut self, data: Vec<u8>) -> JoinHandle<()> {
        let mut writer = self.writer.take().expect("body still open");
        tokio::spawn(async move {
            let mut frame = chunk_frame(&data);
            frame.extend_from_slice(b"0\r\n\r\n");
            let _ = writer.write_all(&frame).await;
            let _ = writer.flush().await;
            // Keep the write half (and so the connection) open until the reader is done.
            std::future::pending::<()>().await;
        })
    }

    /// Reads more bytes; false at end of connection.
    pub async fn read_more(&mut self) -> bool {
        if self.eof {
            return false;
        }
        let mut buf = [0u8; 16384];
        match timeout(READ_WAIT, self.reader.read(&mut buf))
            .await
            .expect("read in time")
        {
            Ok(0) | Err(_) => {
                self.eof = true;
                false
            }
            Ok(n) => {
                self.raw.extend_from_slice(&buf[..n]);
                self.decode();
                true
            }
        }
    }

    fn decode(&mut self) {
        if self.status.is_none() {
            let Some(end) = find(&self.raw, b"\r\n\r\n") else {
                return;
            };
            let head = String::from_utf8(self.raw[..end].to_vec()).unwrap();
            self.raw.drain(..end + 4);
            self.status = Some(head[9..12].parse().unwrap());
            self.chunked = head
                .to_ascii_lowercase()
                .contains("transfer-encoding: chunked");
            self.head = Some(head);
        }
        if !self.chunked {
            self.body.append(&mut self.raw);
            return;
        }
        let mut at = 0;
        while !self.ended {
            let Some(line_end) = find(&self.raw[at..], b"\r\n") else {
                break;
            };
            let size_text = std::str::from_utf8(&self.raw[at..at + line_end]).unwrap();
            let size =
                usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
            if size == 0 {
                self.ended = true;
                break;
            }
            let start = at + line_end + 2;
            if self.raw.len() < start + size + 2 {
                break;
            }
            let payload = &self.raw[start..start + size];
            self.body.extend_from_slice(payload);
            self.chunks.push(payload.to_vec());
            at = start + size + 2;
        }
        self.raw.drain(..at);
    }

    /// The response status, once its head has arrived.
    pub async fn status(&mut self) -> u16 {
        while self.status.is_none() {
            assert!(self.read_more().await, "connection closed before the head");
        }
        self.status.unwrap()
    }

    /// The body bytes received and not read as reports yet.
    pub fn unread_body(&self) -> &[u8] {
        &self.body
    }

    /// The next CRLF-terminated report, or `None` when the body or connection ends.
    pub async fn report(&mut self) -> Option<Value> {
        let mut searched = 0;
        loop {
            if let Some(end) = find(&self.body[searched..], b"\r\n").map(|e| e + searched) {
                let line: Vec<u8> = self.body.drain(..end + 2).collect();
                return Some(serde_json::from_slice(&line[..end]).unwrap());
            }
            searched = self.body.len().saturating_sub(1);
            if self.ended || !self.read_more().await {
                assert!(
                    self.body.is_empty(),
                    "unterminated report data: {:?}",
                    String::from_utf8_lossy(&self.body)
                );
                return None;
            }
        }
    }

    /// All remaining reports, and whether the response ended with its final
    /// chunk (false when the connection was dropped).
    pub async fn rest(&mut self) -> (Vec<Value>, bool) {
        let mut reports = Vec::new();
        while let Some(r) = self.report().await {
            reports.push(r);
        }
        (reports, self.ended)
    }
}

/// Where `needle` first occurs in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
