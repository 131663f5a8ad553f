//! The generated client's hooks: credentials go on before each request, and
//! the status and headers of each response are noted so that an error body
//! the generated code cannot decode still comes back with its HTTP status.
//!
//! The credential headers of a call are fetched before it starts (an OAuth
//! token may need fetching, which the hook cannot report as this crate's
//! error) and handed to the hook through [`run_call`]; calls made without
//! them get theirs in the hook.
//!
//! Bodies are read by the hook that sends the request, up to a bound, so
//! that no answer can grow memory without limit.

use crate::auth::Authenticator;
use crate::generated;
use crate::http::body;
use crate::limits::MAX_RESPONSE_BYTES;
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
    /// The bound the body went past, when it was cut there.
    pub(crate) overflowed: Option<usize>,
}

/// What one generated call needs from its caller and gives back to it.
#[derive(Default)]
struct CallContext {
    /// Credential headers fetched by the caller; `None`: the hook fetches them.
    credentials: RefCell<Option<HeaderMap>>,
    response: RefCell<ResponseMeta>,
}

// Boxed: a task-local's value is swapped in and out of its slot on every
// poll of the call.
tokio::task_local! {
    static CALL: Box<CallContext>;
}

/// Runs one generated call, with these credential headers when given, and
/// returns its result with the response's status and headers.
pub(crate) async fn run_call<T>(
    credentials: Option<HeaderMap>,
    call: impl Future<Output = T>,
) -> (T, ResponseMeta) {
    let context = Box::new(CallContext {
        credentials: RefCell::new(credentials),
        response: RefCell::default(),
    });
    CALL.scope(context, async {
        let result = call.await;
        let meta = CALL.with(|c| c.response.take());
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
        let given = CALL.try_with(|c| c.credentials.take()).ok().flatten();
        let credentials = match given {
            Some(credentials) => credentials,
            // A call made without credentials: fetch them here (a token
            // error can only travel as text from a hook).
            None => self
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
            let _ = CALL.try_with(|c| {
                let mut meta = c.response.borrow_mut();
                meta.status = Some(status);
                meta.headers = headers;
            });
        }
        Ok(())
    }

    /// Sends the request and reads the answer's body here, up to a bound
    /// ([`MAX_RESPONSE_BYTES`], or [`MAX_ERROR_BODY_BYTES`](crate::MAX_ERROR_BODY_BYTES) for an error
    /// status), so that the generated code never reads a body of any size.
    async fn exec(
        &self,
        request: reqwest::Request,
        _info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        let response = self.client().execute(request).await?;
        let (response, overflowed) = body::in_memory(response, MAX_RESPONSE_BYTES).await?;
        if overflowed.is_some() {
            let _ = CALL.try_with(|c| c.response.borrow_mut().overflowed = overflowed);
        }
        Ok(response)
    }
}
