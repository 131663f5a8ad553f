//! The producer's own HTTP/2 connections: each lane's request is a stream,
//! and lanes share a connection up to a number of streams (within the
//! server's `SETTINGS_MAX_CONCURRENT_STREAMS`); a full connection makes the
//! next lane open another rather than queue behind it. reqwest's pool keeps
//! one HTTP/2 connection per host and queues past the limit, which would
//! hold a lane's records for as long as another lane streams.
//!
//! One-record and batch requests go on reqwest (HTTP/2 there too, by ALPN).
//! Through an HTTP proxy the pool's connections go in a CONNECT tunnel.

mod connect;
mod failure;
mod pool;
mod socket;
mod stream;
mod tunnel;

pub(crate) use connect::Target;
pub(crate) use pool::{H2Pool, H2Settings, Route};
pub(crate) use stream::{H2Body, H2Response, send};
pub(crate) use tunnel::Tunnel;
