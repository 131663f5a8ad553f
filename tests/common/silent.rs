//! A server that takes records and never reports them.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A server on loopback that answers every request with 200 and a chunked
/// body of whitespace, forever: it reads the records and never reports.
pub async fn silent_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 64 * 1024];
                // The request's head, then whatever body comes.
                if socket.read(&mut buffer).await.unwrap_or(0) == 0 {
                    return;
                }
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                            transfer-encoding: chunked\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for _ in 0..600 {
                    tokio::select! {
                        read = socket.read(&mut buffer) => {
                            if read.unwrap_or(0) == 0 { return; }
                        }
                        _ = tokio::time::sleep(Duration::from_millis(50)) => {
                            if socket.write_all(b"1\r\n \r\n").await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (url, task)
}
