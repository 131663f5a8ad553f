//! The generated client's hooks: credentials go on before each request, and
//! the status and headers of each response are noted so that an error body
//! the generated code cannot decode still comes back with its HTTP status.

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
        self.inner().apply(request.headers_mut());
        Ok(())
    }

    async fn post<E>(
        &self,
        result: &reqwest::Result<reqwest::Response>,
        _info: &OperationInfo,
    ) -> Result<(), progenitor_client::Error<E>> {
        if let Ok(response) = result {
            let _ = RESPONSE_META.try_with(|meta| {
                *meta.borrow_mut() = ResponseMeta {
                    status: Some(response.status()),
                    headers: response.headers().clone(),
                };
            });
        }
        Ok(())
    }
}
