//! When to try again: the one retry decision, and the opt-in retries of
//! one-record calls built on it.

pub(crate) mod policy;
pub(crate) mod produce;
