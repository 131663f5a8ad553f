//! A server on loopback that answers every request with a fixed head and
//! then a body of any length, written from one small buffer so that the
//! server itself holds no memory: for the client's bounds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the server answers.
#[derive(Clone)]
pub struct Reply {
    /// Status line and headers, without the blank line that ends them.
    pub head: String,
    /// The start of the body.
    pub prefix: Vec<u8>,
    /// The byte the rest of the body is made of.
    pub filler: u8,
    /// Bytes of filler after the prefix.
    pub filler_len: u64,
    /// Whether the body is sent in chunks (the head must say so).
    pub chunked: bool,
}

impl Reply {
    /// `200 OK`, chunked, `prefix` then `filler_len` bytes of `filler`.
    pub fn chunked(status: &str, prefix: &str, filler: u8, filler_len: u64) -> Reply {
        Reply {
            head: format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked"
            ),
            prefix: prefix.as_bytes().to_vec(),
            filler,
            filler_len,
            chunked: true,
        }
    }

    /// The same body with a `content-length`.
    pub fn sized(status: &str, prefix: &str, filler: u8, filler_len: u64) -> Reply {
        let length = prefix.len() as u64 + filler_len;
        Reply {
            head: format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {length}"
            ),
            prefix: prefix.as_bytes().to_vec(),
            filler,
            filler_len,
            chunked: false,
        }
    }
}

/// The server's address and how many body bytes it managed to write.
pub struct Hostile {
    pub url: String,
    pub written: Arc<AtomicU64>,
    pub requests: Arc<AtomicU64>,
    _task: tokio::task::JoinHandle<()>,
}

pub async fn serve(reply: Reply) -> Hostile {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let written = Arc::new(AtomicU64::new(0));
    let requests = Arc::new(AtomicU64::new(0));
    let (count, seen) = (written.clone(), requests.clone());
    let task = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (reply, count, seen) = (reply.clone(), count.clone(), seen.clone());
            tokio::spawn(async move {
                let (mut reader, mut writer) = socket.into_split();
                // The request's head (at most 64 KiB), then drain the rest.
                let mut head = Vec::new();
                let mut buffer = vec![0u8; 16 * 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
                    match reader.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buffer[..n]),
                    }
                }
                seen.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    while matches!(reader.read(&mut buffer).await, Ok(n) if n > 0) {}
                });
                let frame = |data: &[u8]| -> Vec<u8> {
                    match reply.chunked {
                        true => {
                            let mut out = format!("{:x}\r\n", data.len()).into_bytes();
                            out.extend_from_slice(data);
                            out.extend_from_slice(b"\r\n");
                            out
                        }
                        false => data.to_vec(),
                    }
                };
                let start = format!("{}\r\n\r\n", reply.head);
                if writer.write_all(start.as_bytes()).await.is_err() {
                    return;
                }
                if !reply.prefix.is_empty()
                    && writer.write_all(&frame(&reply.prefix)).await.is_err()
                {
                    return;
                }
                let piece = frame(&vec![reply.filler; 64 * 1024]);
                let mut left = reply.filler_len;
                while left > 0 {
                    let n = left.min(64 * 1024);
                    let data = match n == 64 * 1024 {
                        true => piece.clone(),
                        false => frame(&vec![reply.filler; n as usize]),
                    };
                    if writer.write_all(&data).await.is_err() {
                        return;
                    }
                    count.fetch_add(n, Ordering::Relaxed);
                    left -= n;
                }
                if reply.chunked {
                    let _ = writer.write_all(b"0\r\n\r\n").await;
                }
            });
        }
    });
    Hostile {
        url,
        written,
        requests,
        _task: task,
    }
}
