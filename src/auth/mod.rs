//! Who the client is: credentials, the OAuth client-credentials flow, the
//! token cache, and the headers each request carries.

mod authenticator;
mod credentials;
pub(crate) mod oauth;
pub(crate) mod token;

pub(crate) use authenticator::Authenticator;
pub use credentials::Credentials;
