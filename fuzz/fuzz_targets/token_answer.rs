//! The client's reading of an OAuth token endpoint's answer: a token with a
//! bounded lifetime or an error, never a panic, and never the client secret
//! in the error.

#![no_main]

use ccloud_kafka_rest::__fuzz::{FUZZ_CLIENT_SECRET, token_answer};
use ccloud_kafka_rest::MAX_TOKEN_LIFETIME;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&seed, body)) = data.split_first() else {
        return;
    };
    let status = [200, 201, 400, 401, 403, 429, 500, 503][usize::from(seed % 8)];
    match token_answer(status, body) {
        Ok((token, lifetime)) => {
            assert!(!token.is_empty());
            assert!(lifetime.is_none_or(|l| l <= MAX_TOKEN_LIFETIME));
        }
        Err(message) => assert!(!message.contains(FUZZ_CLIENT_SECRET), "{message}"),
    }
});
