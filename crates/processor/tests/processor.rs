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
    #[cfg(all(feature = "report", feature = "p256", feature = "hmac"))]
    pub mod report;
    pub mod rollback;
    #[cfg(feature = "trust-domains")]
    pub mod trust_domains;
    #[cfg(feature = "update-management")]
    pub mod update_management;
}
