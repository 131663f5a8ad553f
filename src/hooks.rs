//! The generated client's hooks: credentials go on before each request, and
//! the status and headers of each response are noted so that an error body
//! the generated code cannot decode still comes back with its HTTP status.
//!
//! The credential headers of a call are fetched before it starts (an OAuth
//! token may need fetching, which the hook cannot report as this crate's
//! error) and handed to the hook through [`with_credentials`]; calls made
//! without it get theirs in the hook.

use crate::auth::Authenticator;
use crate::generated;
use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use std::cell::RefCell;
use std::future::Future;

/// Status and headers of the response to the current call.
#[derive(Clone, Debug, Default)]
pub(crate) struct ResponseMeta {
    pub(crate) status: Option<StatusCode>,
    pub(crate) headers: HeaderMap,
}

tokio::task_local! {
    static RESPONSE_META: RefCell<ResponseMeta>;
    static CALL_CREDENTIALS: HeaderMap;
}

/// Runs one generated call with these credential headers.
pub(crate) async fn with_credentials<T>(headers: HeaderMap, call: impl Future<Output = T>) -> T {
    CALL_CREDENTIALS.scope(headers, call).await
}

/// Runs one generated call and returns its result with the response's status
/// and headers.
pub(crate) async fn with_response_meta<T>(call: impl Future<Output = T>) -> (T, ResponseMeta) {
    RESPONSE_META
        .scope(RefCell::new(ResponseMeta::default()), async {
            let result = call.await;
            let meta = RESPONSE_META.with(|m| m.take());
            (result, meta)
        })
        .await
}

impl ClientHooks<Authenticator> for generated::Client {
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        _info: &OperationInfo,
    ) -> Result<(), progenitor_client::Error<E>> {
        let credentials = match CALL_CREDENTIALS.try_with(HeaderMap::clone) {
            Ok(credentials) => credentials,
            // A call made without with_credentials: fetch them here (a token
            // error can only travel as text from a hook).
            Err(_) => self
                .inner()
                .headers()
                .await
                .map_err(|e| progenitor_client::Error::Custom(e.to_string()))?,
        };
        let headers = request.headers_mut();
        for (name, value) in credentials {
            if let Some(name) = name {
                headers.insert(name, value);
            }
        }
        Ok(())
    }

    async fn post<E>(
        &self,
        result: &reqwest::Result<reqwest::Response>,
        _info: &OperationInfo,
    ) -> Result<(), progenitor_client::Error<E>> {
        if let Ok(response) = result {
            // Headers are only read for error statuses (Retry-After).
            let status = response.status();
            let headers = match status.is_success() {
                true => HeaderMap::new(),
                false => response.headers().clone(),
            };
            let _ = RESPONSE_META.try_with(|meta| {
                *meta.borrow_mut() = ResponseMeta {
                    status: Some(status),
                    headers,
                };
            });
        }
        Ok(())
    }
}
