//! Integration tests of the processor: one binary, one module per concern.

mod processor {
    pub mod auth;
    pub mod bitflip;
    pub mod common;
    #[cfg(feature = "encryption")]
    pub mod encryption;
    pub mod examples;
    pub mod machine;
    pub mod props;
    pub mod rollback;
}
