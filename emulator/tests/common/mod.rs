//! Helpers shared by the emulator's tests.
#![allow(dead_code)]

pub mod raw_h2;
pub mod raw_http;
