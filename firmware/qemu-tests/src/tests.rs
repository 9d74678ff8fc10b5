//! The table of on-target tests.
//!
//! Adding a test is writing a `fn() -> Outcome` in one of the modules below
//! (or a new `tests/<area>.rs`) and adding its path to [`ALL`].

mod cose;
mod digest;

use crate::harness::{self, Test};

/// Builds the table; each entry is named `module::function`.
macro_rules! tests {
    ($($module:ident :: $function:ident),* $(,)?) => {
        &[$(Test {
            name: concat!(stringify!($module), "::", stringify!($function)),
            run: $module::$function,
        }),*]
    };
}

/// Every test, run in this order.
pub static ALL: &[Test] = tests![
    harness::icount_calibration,
    digest::sha256_abc,
    digest::example0_auth_digest,
    digest::example0_flipped_manifest_digest_differs,
    cose::example0_decode,
    cose::example0_sign1_verifies,
    cose::example0_flipped_signature_rejected,
    cose::example0_flipped_payload_rejected,
];
