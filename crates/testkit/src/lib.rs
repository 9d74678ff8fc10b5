//! Host-side helpers for tests, benchmarks and the demo (see README.md).
#![warn(missing_docs)]

pub mod build;
pub mod device;
pub mod resign;
pub mod vectors;
