//! Crossing the boundary with the generated code: its results into reports
//! and errors.
//!
//! The produce call itself sends the crate's `Record` and reads a
//! [`ReportBody`] (the build replaces the document's types in that call), so
//! only error bodies, typed by the document, are converted here, through
//! JSON text so the crate compiles whatever field types the document gives
//! them.

use crate::client::hooks::ResponseMeta;
use crate::error::{ApiError, Error, ErrorScope};
use crate::generated::types;
use crate::limits::MAX_RETRY_AFTER;
use crate::wire::report::{DeliveryReport, ReportWire};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use std::time::Duration;

/// Error bodies kept in messages are cut to this many bytes.
const MAX_BODY_IN_ERROR: usize = 4096;

/// The body of a successful produce response: one delivery report, read by
/// the compact report reader when it is in the server's compact form, by
/// serde otherwise.
#[derive(Debug)]
pub(crate) struct ReportBody(ReportWire);

impl<'de> serde::Deserialize<'de> for ReportBody {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        let text = raw.get().as_bytes();
        match ReportWire::parse_compact(text) {
            Some((report, len)) if len == text.len() => Ok(ReportBody(report)),
            _ => serde_json::from_slice(text)
                .map(ReportBody)
                .map_err(serde::de::Error::custom),
        }
    }
}

pub(crate) async fn into_report(
    result: Result<
        progenitor_client::ResponseValue<ReportBody>,
        progenitor_client::Error<types::Error>,
    >,
    meta: ResponseMeta,
) -> Result<DeliveryReport, Error> {
    use progenitor_client::Error as E;
    match result {
        Ok(value) => value.into_inner().0.into_result(),
        Err(E::ErrorResponse(value)) => {
            let status = value.status().as_u16();
            let retry_after = retry_after(value.headers());
            let body: serde_json::Value = reencode(&value.into_inner(), status)?;
            Err(Error::Api(api_error(status, &body, retry_after)))
        }
        Err(E::UnexpectedResponse(response)) => {
            let status = response.status().as_u16();
            let retry_after = retry_after(response.headers());
            let text = response.text().await.map_err(Error::transport)?;
            Err(from_body(status, text.as_bytes(), retry_after))
        }
        Err(E::InvalidResponsePayload(bytes, source)) => match meta.status {
            // An error status whose body is not the documented JSON (a proxy's
            // page, for instance): keep the status, the body becomes the message.
            Some(status) if !status.is_success() => Err(from_body(
                status.as_u16(),
                &bytes,
                retry_after(&meta.headers),
            )),
            // A success body cut at its bound: the request was carried out,
            // its answer is lost.
            Some(status) if meta.overflowed.is_some() => Err(Error::Interrupted(format!(
                "the answer (HTTP {}) is longer than {} bytes (MAX_RESPONSE_BYTES) and was \
                 not read further",
                status.as_u16(),
                meta.overflowed.unwrap_or_default()
            ))),
            // A success status (the post hook notes every response): the
            // record may have been written.
            status => Err(Error::decode(
                truncate(&bytes),
                status.map(|s| s.as_u16()),
                source,
            )),
        },
        Err(E::CommunicationError(e) | E::ResponseBodyError(e) | E::InvalidUpgrade(e)) => {
            Err(Error::transport(e))
        }
        Err(E::InvalidRequest(message) | E::Custom(message)) => Err(Error::Config(message)),
    }
}

/// An HTTP error from its body: Confluent's JSON error when it is one,
/// otherwise the text itself.
fn from_body(status: u16, body: &[u8], retry_after: Option<Duration>) -> Error {
    Error::Api(api_error_from_body(status, body, retry_after))
}

/// The server's refusal of a whole request, from its status and body.
pub(crate) fn api_error_from_body(
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
) -> ApiError {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(json) if json.get("error_code").is_some() => api_error(status, &json, retry_after),
        _ => ApiError {
            status,
            error_code: None,
            message: truncate(body),
            retry_after,
            scope: ErrorScope::Request,
        },
    }
}

fn api_error(status: u16, body: &serde_json::Value, retry_after: Option<Duration>) -> ApiError {
    let error_code = body
        .get("error_code")
        .and_then(serde_json::Value::as_i64)
        .and_then(|c| i32::try_from(c).ok());
    let message = body
        .get("message")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    ApiError {
        status,
        error_code,
        message,
        retry_after,
        scope: ErrorScope::Request,
    }
}

/// An error body of an answer with `status`, as another type.
fn reencode<T: serde::de::DeserializeOwned>(
    value: &impl serde::Serialize,
    status: u16,
) -> Result<T, Error> {
    // Through the JSON text: cheaper than through a `serde_json::Value`.
    let json = serde_json::to_vec(value)
        .map_err(|source| Error::decode(String::new(), Some(status), source))?;
    serde_json::from_slice(&json).map_err(|source| {
        Error::decode(
            String::from_utf8_lossy(&json).into_owned(),
            Some(status),
            source,
        )
    })
}

/// `Retry-After` as seconds or as an HTTP date, at most
/// [`MAX_RETRY_AFTER`]: a later time is waited for that long (and deadlines
/// computed from the delay cannot overflow). A date in the past is no delay.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let delay = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64 is still a number of seconds: a long one.
        text.parse::<u64>()
            .map_or(MAX_RETRY_AFTER, Duration::from_secs)
    } else {
        let when = chrono::DateTime::parse_from_rfc2822(text).ok()?;
        let delay = when.signed_duration_since(chrono::Utc::now());
        delay.to_std().unwrap_or(Duration::ZERO)
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// The body as text for an error message, cut to 4 KiB.
pub(crate) fn truncate(body: &[u8]) -> String {
    let cut = &body[..body.len().min(MAX_BODY_IN_ERROR)];
    String::from_utf8_lossy(cut).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("-5"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn absurd_retry_after_is_capped() {
        let mut headers = HeaderMap::new();
        for value in [
            "601",
            "18446744073709551615",
            "99999999999999999999999999999999999999",
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "Thu, 31 Dec 2150 23:59:59 +0000",
        ] {
            headers.insert(RETRY_AFTER, HeaderValue::from_static(value));
            assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER), "{value}");
        }
        headers.insert(RETRY_AFTER, HeaderValue::from_static("600"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(600)));
        // A deadline from the largest delay cannot overflow.
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("18446744073709551615"),
        );
        let delay = retry_after(&headers).unwrap();
        assert!(tokio::time::Instant::now().checked_add(delay).is_some());
    }
}
