//! When to try again: the one retry decision, the pace a throttling server
//! leaves, and the opt-in retries of one-record calls built on them.

pub(crate) mod pace;
pub(crate) mod policy;
pub(crate) mod produce;
