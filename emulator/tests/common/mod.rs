//! Helpers shared by the emulator's tests.
#![allow(dead_code)]

pub mod raw_http;
