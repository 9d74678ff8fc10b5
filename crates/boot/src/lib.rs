//! A power-fail-safe SUIT bootloader core (see README.md and `docs/boot.md`).
//!
//! - [`layout`]: the flash regions and their sector maps, checked into a [`layout::Plan`];
//! - [`boot::boot`]: replay the journal, finish a swap or revert, verify the primary image
//!   with the SUIT processor (signature, then the manifest's own validate sequence), hand
//!   over;
//! - [`update`]: the application side: stage, request, confirm;
//! - [`counter::Counter`]: the anti-rollback counter, a `RollbackStore`;
//! - [`state`]: the state machine's states and the journal fold;
//! - [`stage`]: the updatable bootloader: a tiny first stage choosing between two
//!   second-stage slots, and the second stage's update as a SUIT component.
//!
//! Every flash access goes through embedded-storage's `NorFlash`; nothing here knows a
//! chip, allocates, or uses `unsafe`.
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

pub mod boot;
pub mod counter;
mod error;
mod journal;
pub mod layout;
mod record;
pub mod slot;
pub mod stage;
pub mod state;
mod swap;
pub mod update;

pub use boot::{Config, Handover, boot};
pub use error::{BootError, Refusal};
pub use layout::{Layout, LayoutError, Plan, Region, SectorRun};
pub use state::{Mode, Outcome, State};
