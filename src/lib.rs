#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod auth;
mod batch;
mod client;
mod config;
mod error;
mod generated;
mod hooks;
mod producer;
mod record;
mod report;
mod response;
mod retry_class;
mod tls;

#[cfg(feature = "emulator")]
pub mod emulator;

pub use auth::Credentials;
pub use client::Client;
pub use config::{
    ApiFlavour, ClientBuilder, DEFAULT_MAX_BATCH_ENTRIES, DEFAULT_MAX_RECORD_BYTES, ENV_API_KEY,
    ENV_API_SECRET, ENV_BEARER_TOKEN, ENV_CLUSTER_ID, ENV_ENDPOINT, ENV_FLAVOUR,
    ENV_IDENTITY_POOL_ID,
};
pub use error::{ApiError, Error, InvalidInput};
pub use producer::{
    DeliveryFuture, OnOutcomeUnknown, Producer, ProducerConfig, ProducerStats, Routing,
};
pub use record::{DataType, Header, Payload, Record};
pub use report::{DeliveryReport, StoredData};
pub use retry_class::RetryClass;

/// The request and response types generated from the OpenAPI document, for
/// users who want to work with the API's own shapes. Their fields follow the
/// vendored document and may change when it is updated; the rest of the
/// crate does not depend on them.
pub mod types {
    pub use crate::generated::types::{
        Error as ApiErrorBody, ProduceRequest, ProduceRequestData, ProduceRequestHeader,
        ProduceResponse, ProduceResponseData,
    };
}
