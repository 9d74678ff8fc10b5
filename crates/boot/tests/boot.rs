//! suitcase-boot integration tests: one binary, a module per concern.
//!
//! - `common`: the simulated device (flash-sim + the bootloader + an update agent) and its fixtures;
//! - `geometries`: the geometry matrix (sector layouts × write sizes × erased values);
//! - `powercut`: the exhaustive power-cut test;
//! - `flows`: update, confirm, revert, permanent, wear, on one geometry;
//! - `rows`: one test per row of the boot decision table (`src/boot.rs`);
//! - `security`: downgrades, tampered slots and envelopes.

mod boot {
    pub mod common;
    pub mod flows;
    pub mod geometries;
    pub mod powercut;
    pub mod rows;
    pub mod security;
    pub mod stage;
}
