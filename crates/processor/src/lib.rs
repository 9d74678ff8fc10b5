//! The SUIT manifest processor: authenticates an envelope, decides whether it applies to
//! this device and is newer than what is installed, and streams its payloads into place,
//! all in bounded RAM with no heap.
//!
//! ```text
//!  bytes ──authenticate()──▶ Authenticated ──update(&mut Platform)──▶ UpdateSummary
//!          (digest, COSE,                   ──invoke(&mut Platform)──▶ ()
//!           policy, severed)
//! ```
//!
//! The device talks to the processor through the small traits of [`platform`]: storage,
//! fetch, identity, keys, rollback counter, clock, invoke, reporter, decryption keys. The same code runs
//! in the bootloader, the simulator, the CLI's dry runs and the server's checks.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

mod auth;
mod bytes;
#[cfg(feature = "encryption")]
pub mod decrypt;
mod error;
mod machine;
#[cfg(feature = "update-management")]
mod manage;
mod params;
pub mod pipeline;
pub mod platform;
pub mod report;
pub mod storage;

/// How deep dependency manifests nest (trust domains): the root, its dependencies and
/// theirs. Each level costs one interpreter frame on the stack.
pub const MAX_DEPENDENCY_DEPTH: usize = 2;

pub use auth::{Authenticated, authenticate, authenticate_as};
pub use error::{AuthError, DependencyError, Error};
pub use machine::UpdateSummary;
pub use platform::{DependencySupport, Platform, Procedure};
pub use suitcase_cose as cose;
pub use suitcase_suit as suit;

impl<'a> Authenticated<'a> {
    /// The update procedure: dependency-resolution, payload-fetch, candidate-verification,
    /// install, validate (each after the shared sequence). Refused unless the sequence
    /// number is strictly above the installed one; the installed number advances only
    /// when every sequence succeeded.
    pub fn update(&self, platform: &mut Platform<'_>) -> Result<UpdateSummary, Error> {
        let offered = self.manifest().sequence_number;
        let installed = platform.rollback.current()?;
        if offered <= installed {
            return Err(Error::Rollback { installed, offered });
        }
        #[cfg(feature = "update-management")]
        let set_version = manage::set_version(self.manifest())?;
        let summary = machine::run(self, platform, Procedure::Update)?;
        platform.rollback.advance(offered)?;
        #[cfg(feature = "update-management")]
        manage::record_set_version(set_version, platform);
        Ok(summary)
    }

    /// The invocation procedure: validate, load, invoke. The installed manifest itself
    /// is accepted (equal sequence number), an older one is not.
    pub fn invoke(&self, platform: &mut Platform<'_>) -> Result<(), Error> {
        let offered = self.manifest().sequence_number;
        let installed = platform.rollback.current()?;
        if offered < installed {
            return Err(Error::Rollback { installed, offered });
        }
        machine::run(self, platform, Procedure::Invoke).map(|_| ())
    }
}
