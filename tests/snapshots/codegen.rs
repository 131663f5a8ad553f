#[allow(unused_imports)]
pub use progenitor_client::{ByteStream, ClientInfo, Error, ResponseValue};
#[allow(unused_imports)]
use progenitor_client::{encode_path, ClientHooks, OperationInfo, RequestBuilderExt};
/// Types used as operation parameters and responses.
#[allow(clippy::all)]
pub mod types {
    ///An error answered by the server.
    #[derive(
        ::serde::Deserialize,
        ::serde::Serialize,
        Clone,
        Debug,
        schemars::JsonSchema
    )]
    pub struct Error {
        pub error_code: i32,
        #[serde(deserialize_with = "::std::option::Option::deserialize")]
        pub message: ::std::option::Option<::std::string::String>,
    }
    ///A record to append to the topic.
    #[derive(
        ::serde::Deserialize,
        ::serde::Serialize,
        Clone,
        Debug,
        Default,
        schemars::JsonSchema
    )]
    pub struct ProduceRequest {
        #[serde(default, skip_serializing_if = "::std::vec::Vec::is_empty")]
        pub headers: ::std::vec::Vec<ProduceRequestHeader>,
        #[serde(skip_serializing_if = "::std::option::Option::is_none")]
        pub key: ::std::option::Option<ProduceRequestData>,
        ///Target partition; absent or null lets the server choose.
        #[serde(skip_serializing_if = "::std::option::Option::is_none")]
        pub partition_id: ::std::option::Option<i32>,
        ///Record timestamp (RFC 3339); absent means the time of arrival.
        #[serde(skip_serializing_if = "::std::option::Option::is_none")]
        pub timestamp: ::std::option::Option<::chrono::DateTime<::chrono::offset::Utc>>,
        #[serde(skip_serializing_if = "::std::option::Option::is_none")]
        pub value: ::std::option::Option<ProduceRequestData>,
    }
    ///A key or value and the type that says how to read `data`.
    #[derive(
        ::serde::Deserialize,
        ::serde::Serialize,
        Clone,
        Debug,
        Default,
        schemars::JsonSchema
    )]
    pub struct ProduceRequestData {
        ///The payload, read according to `type`; null is a Kafka null.
        #[serde(skip_serializing_if = "::std::option::Option::is_none")]
        pub data: ::std::option::Option<::serde_json::Value>,
        ///One of BINARY (base64 data), JSON (any JSON value) or STRING.
        #[serde(rename = "type", skip_serializing_if = "::std::option::Option::is_none")]
        pub type_: ::std::option::Option<::std::string::String>,
    }
    ///`ProduceRequestHeader`
    #[derive(
        ::serde::Deserialize,
        ::serde::Serialize,
        Clone,
        Debug,
        schemars::JsonSchema
    )]
    pub struct ProduceRequestHeader {
        pub name: ::std::string::String,
        ///Header bytes in standard base64, or null.
        #[serde(skip_serializing_if = "::std::option::Option::is_none")]
        pub value: ::std::option::Option<::std::string::String>,
    }
    ///A delivery report. On success `error_code` is 200 and the location fields are set; on failure only `error_code` and `message` are.
    #[derive(
        ::serde::Deserialize,
        ::serde::Serialize,
        Clone,
        Debug,
        schemars::JsonSchema
    )]
    pub struct ProduceResponse {
        #[serde(skip_serializing_if = "::std::option::Option::is_none")]
        pub cluster_id: ::std::option::Option<::std::string::String>,
        pub error_code: i32,
        #[serde(skip_serializing_if = "::std::option::Option::is_none")]
        pub key: ::std::option::Option<ProduceResponseData>,
        #[serde(skip_serializing_if = "::std::option::Option::is_none")]
        pub message: ::std::option::Option<::std::string::String>,
        #[serde(skip_serializing_if = "::std::option::Option::is_none")]
        pub offset: ::std::option::Option<i64>,
        #[serde(skip_serializing_if = "::std::option::Option::is_none")]
        pub partition_id: ::std::option::Option<i32>,
        #[serde(skip_serializing_if = "::std::option::Option::is_none")]
        pub timestamp: ::std::option::Option<::chrono::DateTime<::chrono::offset::Utc>>,
        #[serde(skip_serializing_if = "::std::option::Option::is_none")]
        pub topic_name: ::std::option::Option<::std::string::String>,
        #[serde(skip_serializing_if = "::std::option::Option::is_none")]
        pub value: ::std::option::Option<ProduceResponseData>,
    }
    ///The type of a stored key or value and its size in bytes.
    #[derive(
        ::serde::Deserialize,
        ::serde::Serialize,
        Clone,
        Debug,
        schemars::JsonSchema
    )]
    pub struct ProduceResponseData {
        pub size: i64,
        #[serde(rename = "type")]
        pub type_: ::std::string::String,
    }
    /// Error types.
    pub mod error {
        /// Error from a `TryFrom` or `FromStr` implementation.
        pub struct ConversionError(::std::borrow::Cow<'static, str>);
        impl ::std::error::Error for ConversionError {}
        impl ::std::fmt::Display for ConversionError {
            fn fmt(
                &self,
                f: &mut ::std::fmt::Formatter<'_>,
            ) -> Result<(), ::std::fmt::Error> {
                ::std::fmt::Display::fmt(&self.0, f)
            }
        }
        impl ::std::fmt::Debug for ConversionError {
            fn fmt(
                &self,
                f: &mut ::std::fmt::Formatter<'_>,
            ) -> Result<(), ::std::fmt::Error> {
                ::std::fmt::Debug::fmt(&self.0, f)
            }
        }
        impl From<&'static str> for ConversionError {
            fn from(value: &'static str) -> Self {
                Self(value.into())
            }
        }
        impl From<String> for ConversionError {
            fn from(value: String) -> Self {
                Self(value.into())
            }
        }
    }
}
#[derive(Clone, Debug)]
/**Client for Kafka REST v3 produce API

Version: 3.0.0*/
pub struct Client {
    pub(crate) baseurl: String,
    pub(crate) client: reqwest::Client,
    pub(crate) inner: crate::auth::Authenticator,
}
impl Client {
    /// Create a new client.
    ///
    /// `baseurl` is the base URL provided to the internal
    /// `reqwest::Client`, and should include a scheme and hostname,
    /// as well as port and a path stem if applicable.
    pub fn new(baseurl: &str, inner: crate::auth::Authenticator) -> Self {
        #[cfg(not(target_arch = "wasm32"))]
        let client = {
            let dur = ::std::time::Duration::from_secs(15u64);
            reqwest::ClientBuilder::new().connect_timeout(dur).timeout(dur)
        };
        #[cfg(target_arch = "wasm32")]
        let client = reqwest::ClientBuilder::new();
        Self::new_with_client(baseurl, client.build().unwrap(), inner)
    }
    /// Construct a new client with an existing `reqwest::Client`,
    /// allowing more control over its configuration.
    ///
    /// `baseurl` is the base URL provided to the internal
    /// `reqwest::Client`, and should include a scheme and hostname,
    /// as well as port and a path stem if applicable.
    pub fn new_with_client(
        baseurl: &str,
        client: reqwest::Client,
        inner: crate::auth::Authenticator,
    ) -> Self {
        Self {
            baseurl: baseurl.to_string(),
            client,
            inner,
        }
    }
}
impl ClientInfo<crate::auth::Authenticator> for Client {
    fn api_version() -> &'static str {
        "3.0.0"
    }
    fn baseurl(&self) -> &str {
        self.baseurl.as_str()
    }
    fn client(&self) -> &reqwest::Client {
        &self.client
    }
    fn inner(&self) -> &crate::auth::Authenticator {
        &self.inner
    }
}
const _: () = {
    #[allow(dead_code)]
    fn assert_client_hooks()
    where
        Client: ClientHooks<crate::auth::Authenticator>,
    {}
};
#[allow(clippy::all)]
impl Client {
    /**Produce records

Appends records to a topic and answers with one delivery report per record.

The request body holds one record, or several records written one after
the other as concatenated JSON objects. Sent with chunked transfer
encoding, the request stays open for as long as the client keeps writing
(streaming mode) and reports come back while it is open, in the order the
records were written, each carrying its own `error_code` (200 when the
record was appended). The HTTP status is 200 once the stream is accepted;
a record that fails later does not change it.

Only the BINARY, JSON and STRING data types are accepted; schemas from a
Schema Registry are not.

Sends a `POST` request to `/clusters/{cluster_id}/topics/{topic_name}/records`

Arguments:
- `cluster_id`: The Kafka cluster ID.
- `topic_name`: The topic name.
- `body`: One record; to produce several in one request, write them one after the other. Reports come back in the same order.
*/
    pub async fn produce_record<'a>(
        &'a self,
        cluster_id: &'a str,
        topic_name: &'a str,
        body: &'a crate::wire::record::Record,
    ) -> Result<
        ResponseValue<crate::client::response::ReportBody>,
        Error<types::Error>,
    > {
        let url = format!(
            "{}/clusters/{}/topics/{}/records", self.baseurl, encode_path(& cluster_id
            .to_string()), encode_path(& topic_name.to_string()),
        );
        let mut header_map = ::reqwest::header::HeaderMap::with_capacity(1usize);
        header_map
            .append(
                ::reqwest::header::HeaderName::from_static("api-version"),
                ::reqwest::header::HeaderValue::from_static(Self::api_version()),
            );
        #[allow(unused_mut)]
        let mut request = self
            .client
            .post(url)
            .header(
                ::reqwest::header::ACCEPT,
                ::reqwest::header::HeaderValue::from_static("application/json"),
            )
            .json(&body)
            .headers(header_map)
            .build()?;
        let info = OperationInfo {
            operation_id: "produce_record",
        };
        self.pre(&mut request, &info).await?;
        let result = self.exec(request, &info).await;
        self.post(&result, &info).await?;
        let response = result?;
        match response.status().as_u16() {
            200u16 => ResponseValue::from_response(response).await,
            400u16 => {
                Err(Error::ErrorResponse(ResponseValue::from_response(response).await?))
            }
            401u16 => {
                Err(Error::ErrorResponse(ResponseValue::from_response(response).await?))
            }
            403u16 => {
                Err(Error::ErrorResponse(ResponseValue::from_response(response).await?))
            }
            404u16 => {
                Err(Error::ErrorResponse(ResponseValue::from_response(response).await?))
            }
            413u16 => {
                Err(Error::ErrorResponse(ResponseValue::from_response(response).await?))
            }
            415u16 => {
                Err(Error::ErrorResponse(ResponseValue::from_response(response).await?))
            }
            422u16 => {
                Err(Error::ErrorResponse(ResponseValue::from_response(response).await?))
            }
            500u16..=599u16 => {
                Err(Error::ErrorResponse(ResponseValue::from_response(response).await?))
            }
            _ => Err(Error::UnexpectedResponse(response)),
        }
    }
}
/// Items consumers will typically use such as the Client.
pub mod prelude {
    #[allow(unused_imports)]
    pub use super::Client;
}
