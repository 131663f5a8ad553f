//! Plays an [`Intermediary`] in process: the request body is read whole (or
//! passed on piece by piece, noting when it ends) before the produce handler
//! gets it, and the handler's response is passed on (or held) frame by frame.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::header::{TE, TRANSFER_ENCODING};
use hyper::{Request, Response, StatusCode};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

use super::body::{BodyReader, Piece, Read, Source};
use super::intermediary::{Intermediary, IntermediaryMode, MAX_HELD_REPORT_BYTES};
use super::produce::{self, Connection};
use super::response::{Chunk, ResponseBody, StreamReset};
use super::state::Shared;

/// How long a response refused by the intermediary waits for the rest of
/// the request body, in all.
const LINGER_TIME: Duration = Duration::from_secs(30);
/// How long it waits for each next piece of that body.
const LINGER_QUIET: Duration = Duration::from_secs(5);
/// Pieces of request body passed on before the intermediary waits for the
/// server to read them.
const RELAY_PIECES: usize = 8;
/// Response chunks passed on before the intermediary waits for the client.
const PASSED_CHUNKS: usize = 32;

/// An HTML error page as nginx writes it, closing the connection.
fn page(status: StatusCode) -> Response<ResponseBody> {
    let reason = match status.as_u16() {
        408 => "Request Time-out",
        413 => "Request Entity Too Large",
        504 => "Gateway Time-out",
        _ => status.canonical_reason().unwrap_or("Error"),
    };
    let line = format!("{} {reason}", status.as_u16());
    let body = format!(
        "<html>\r\n<head><title>{line}</title></head>\r\n<body>\r\n\
         <center><h1>{line}</h1></center>\r\n<hr><center>intermediary</center>\r\n\
         </body>\r\n</html>\r\n"
    );
    let mut response = Response::new(ResponseBody::Full(Some(Bytes::from(body))));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The body length a request announces.
fn announced_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// Reads and discards the rest of a refused request body (within bounds),
/// so that the client is not reset before it has read the answer.
async fn linger(mut source: Source, idle: Duration) {
    let quiet = idle.min(LINGER_QUIET);
    let _ = tokio::time::timeout(LINGER_TIME, async {
        while let Ok(Some(Ok(_))) = tokio::time::timeout(quiet, source.frame()).await {}
    })
    .await;
}

/// Handles a produce request through `intermediary`.
pub(crate) async fn serve(
    shared: &Arc<Shared>,
    intermediary: Arc<Intermediary>,
    connection: Connection,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let idle = shared.limits.idle_timeout;
    let (mut parts, incoming) = req.into_parts();
    if let Some(cap) = intermediary.body_cap()
        && announced_length(&parts.headers).is_some_and(|length| length > cap)
    {
        tracing::debug!(cap, "intermediary: body announced over its cap; 413");
        tokio::spawn(linger(Source::Wire(incoming), idle));
        return page(StatusCode::PAYLOAD_TOO_LARGE);
    }
    let Connection {
        kill: client_kill,
        goaway: client_goaway,
        activity,
    } = connection;
    let holding = intermediary.mode() == IntermediaryMode::HoldingReports;
    let pumped = holding || intermediary.upstream_timeout().is_some();
    let (source, ended, relay_cut) = match intermediary.mode() {
        IntermediaryMode::Buffering => {
            let mut reader = BodyReader::new(
                Source::Wire(incoming),
                Arc::clone(&activity),
                idle,
                intermediary.body_cap(),
            );
            let mut whole = BytesMut::new();
            loop {
                match reader.next().await {
                    Read::Data(data) => whole.extend_from_slice(&data),
                    Read::End => break,
                    Read::TooLarge => {
                        tracing::debug!(
                            cap = intermediary.body_cap(),
                            "intermediary: body over its cap; 413"
                        );
                        tokio::spawn(linger(reader.into_source(), idle));
                        return page(StatusCode::PAYLOAD_TOO_LARGE);
                    }
                    Read::Idle => {
                        tracing::debug!("intermediary: body stopped arriving; 408");
                        return page(StatusCode::REQUEST_TIMEOUT);
                    }
                    Read::Failed(error) => {
                        tracing::debug!(%error, "intermediary: body failed; 400");
                        return page(StatusCode::BAD_REQUEST);
                    }
                }
            }
            let whole = whole.freeze();
            parts.headers.remove(TRANSFER_ENCODING);
            parts.headers.remove(TE);
            parts
                .headers
                .insert(CONTENT_LENGTH, HeaderValue::from(whole.len()));
            (Source::Whole(Some(whole)), None, None)
        }
        _ if !pumped => (Source::Wire(incoming), None, None),
        _ => {
            let (tx, rx) = mpsc::channel(RELAY_PIECES);
            let (ended_tx, ended_rx) = watch::channel(false);
            let cut = Arc::new(Notify::new());
            tokio::spawn(relay(incoming, tx, ended_tx, Arc::clone(&cut), idle));
            (Source::Relayed(rx), Some(ended_rx), Some(cut))
        }
    };
    let req = Request::from_parts(parts, source);
    if !pumped {
        let connection = Connection {
            kill: client_kill,
            goaway: client_goaway,
            activity,
        };
        return produce::produce(shared, connection, req).await;
    }
    // The server's connection is the intermediary's: when it is dropped, or
    // closed after a GOAWAY, the response in flight is cut.
    let server_kill = Arc::new(Notify::new());
    let connection = Connection {
        kill: Arc::clone(&server_kill),
        goaway: Arc::clone(&server_kill),
        activity,
    };
    let server = produce::produce(shared, connection, req);
    let response = match intermediary.upstream_timeout() {
        None => server.await,
        Some(timeout) => match tokio::time::timeout(timeout, server).await {
            Ok(response) => response,
            Err(_) => {
                tracing::debug!(?timeout, "intermediary: no response headers in time; 504");
                // Dropping the handler closes the server's side; no more of
                // the body reaches it.
                if let Some(cut) = relay_cut {
                    cut.notify_one();
                }
                return page(StatusCode::GATEWAY_TIMEOUT);
            }
        },
    };
    let (head, body) = response.into_parts();
    if matches!(body, ResponseBody::Full(_)) {
        // A complete response: nothing left to wait for or hold.
        return Response::from_parts(head, body);
    }
    let (tx, rx) = mpsc::channel(PASSED_CHUNKS);
    let pump = Pump {
        server: body,
        tx,
        ended: if holding { ended } else { None },
        timeout: intermediary.upstream_timeout(),
        server_kill,
        client_kill,
    };
    tokio::spawn(pump.run());
    Response::from_parts(head, ResponseBody::Stream(rx))
}

/// Passes the client's request body on to the server piece by piece, noting
/// when it ends; once cut (or once the server stops reading), discards the
/// rest.
async fn relay(
    mut incoming: Incoming,
    tx: mpsc::Sender<Piece>,
    ended: watch::Sender<bool>,
    cut: Arc<Notify>,
    idle: Duration,
) {
    loop {
        let frame = tokio::select! {
            biased;
            () = cut.notified() => break,
            () = tx.closed() => break,
            frame = incoming.frame() => frame,
        };
        match frame {
            None => {
                ended.send_replace(true);
                tokio::select! {
                    biased;
                    () = cut.notified() => {}
                    _ = tx.send(Piece::End) => {}
                }
                return;
            }
            Some(Err(error)) => {
                tracing::debug!(%error, "intermediary: request body failed");
                // Closing the relay without its end: the server sees a
                // failed body.
                ended.send_replace(true);
                return;
            }
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                if data.is_empty() {
                    continue;
                }
                let sent = tokio::select! {
                    biased;
                    () = cut.notified() => false,
                    sent = tx.send(Piece::Data(data)) => sent.is_ok(),
                };
                if !sent {
                    break;
                }
            }
        }
    }
    drop(tx);
    linger(Source::Wire(incoming), idle).await;
}

/// Passes the server's response on to the client: held until the request
/// body has ended when holding, and given up on when the server is quiet
/// for the upstream timeout.
struct Pump {
    server: ResponseBody,
    tx: mpsc::Sender<Chunk>,
    /// When holding: whether the request body has ended.
    ended: Option<watch::Receiver<bool>>,
    timeout: Option<Duration>,
    /// The server asks for its connection to be dropped.
    server_kill: Arc<Notify>,
    /// Drops the client's connection.
    client_kill: Arc<Notify>,
}

/// What the pump waited for.
enum Event {
    Frame(Option<Bytes>),
    /// The server's response failed: so does the client's.
    Reset,
    End,
    Released,
    Killed,
    TimedOut,
}

/// Waits until the request body has ended (or cannot be known to).
async fn body_ended(ended: &mut Option<watch::Receiver<bool>>) {
    if let Some(ended) = ended {
        let _ = ended.wait_for(|&ended| ended).await;
    }
}

/// Sleeps until `at`, or forever.
async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Pump {
    async fn run(self) {
        let Pump {
            mut server,
            tx,
            mut ended,
            timeout,
            server_kill,
            client_kill,
        } = self;
        let deadline_from_now = || timeout.and_then(|d| Instant::now().checked_add(d));
        let mut released = ended.as_ref().is_none_or(|e| *e.borrow());
        let mut held = BytesMut::new();
        let mut deadline = deadline_from_now();
        loop {
            let room = released || held.len() < MAX_HELD_REPORT_BYTES;
            let event = tokio::select! {
                biased;
                () = server_kill.notified() => Event::Killed,
                () = body_ended(&mut ended), if !released => Event::Released,
                frame = server.frame(), if room => match frame {
                    None => Event::End,
                    Some(Ok(frame)) => Event::Frame(frame.into_data().ok()),
                    Some(Err(StreamReset)) => Event::Reset,
                },
                () = until(deadline), if room => Event::TimedOut,
            };
            match event {
                Event::Frame(data) => {
                    if let Some(data) = data.filter(|d| !d.is_empty()) {
                        if released {
                            if tx.send(Ok(data)).await.is_err() {
                                return;
                            }
                        } else {
                            held.extend_from_slice(&data);
                        }
                    }
                    deadline = deadline_from_now();
                }
                Event::Released => {
                    released = true;
                    if !held.is_empty() && tx.send(Ok(held.split().freeze())).await.is_err() {
                        return;
                    }
                    deadline = deadline_from_now();
                }
                Event::End => {
                    if !held.is_empty() {
                        let _ = tx.send(Ok(held.split().freeze())).await;
                    }
                    return;
                }
                Event::Reset => {
                    // What the server sent goes on first, as on a cut.
                    if !held.is_empty() && tx.send(Ok(held.split().freeze())).await.is_err() {
                        return;
                    }
                    let _ = tx.send(Err(StreamReset)).await;
                    return;
                }
                Event::Killed => {
                    // The server dropped its connection: what it sent goes
                    // on, then the client's connection drops too.
                    if !held.is_empty() && tx.send(Ok(held.split().freeze())).await.is_err() {
                        return;
                    }
                    let give_up = Instant::now() + Duration::from_secs(2);
                    while tx.capacity() < tx.max_capacity() && Instant::now() < give_up {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    client_kill.notify_one();
                    tx.closed().await;
                    return;
                }
                Event::TimedOut => {
                    tracing::debug!(?timeout, "intermediary: the server went quiet; cutting");
                    client_kill.notify_one();
                    // Ending the response instead would let it finish cleanly.
                    tx.closed().await;
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_html() {
        let response = page(StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(response.status(), 504);
        assert_eq!(response.headers()[CONTENT_TYPE], "text/html");
        let ResponseBody::Full(Some(body)) = response.body() else {
            panic!("a complete body");
        };
        let body = std::str::from_utf8(body).unwrap();
        assert!(body.contains("504 Gateway Time-out"), "{body}");
        assert!(!body.contains("error_code"), "{body}");
    }
}
