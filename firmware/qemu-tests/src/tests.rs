//! The table of on-target tests.
//!
//! Adding a test is writing a `fn() -> Outcome` in one of the modules below
//! (or a new `tests/<area>.rs`) and adding its path to [`ALL`].

mod boot;
mod cose;
mod digest;
mod encryption;
pub(crate) mod flash;
mod processor;

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
    digest::example3_update_hashing,
    cose::example0_decode,
    cose::example0_sign1_verifies,
    cose::example0_flipped_signature_rejected,
    cose::example0_flipped_payload_rejected,
    processor::example0_authenticates,
    processor::example1_authenticates,
    processor::example2_authenticates,
    processor::example2_severed_authenticates,
    processor::example3_authenticates,
    processor::example4_authenticates,
    processor::example5_authenticates,
    processor::example0_unsigned_refused,
    processor::example1_unsigned_refused,
    processor::example2_unsigned_refused,
    processor::example3_unsigned_refused,
    processor::example4_unsigned_refused,
    processor::example5_unsigned_refused,
    processor::example3_verify_only,
    processor::example3_decode_only,
    processor::example3_authenticate_only,
    processor::example3_update_harness,
    processor::example3_update_slot1,
    processor::example3_update_slot0,
    processor::example0_validate_invoke,
    processor::example0_tampered_image_not_invoked,
    flash::install_uneven_chunks_write4,
    flash::install_uneven_chunks_write8,
    flash::install_bytes_write8,
    encryption::aes_kw_gcm_decrypts,
    encryption::aes_kw_ctr_decrypts,
    encryption::es_ecdh_gcm_decrypts,
    encryption::es_ecdh_ctr_decrypts,
    encryption::gcm_flipped_tag_refused,
    encryption::es_ecdh_content_update,
    boot::verified_boot,
    boot::staged_swap_trial_confirm,
    boot::unconfirmed_trial_reverted,
];
