//! A trust-store update as a SUIT component: [`Staging`] keeps the component
//! `["suitcase", "trust-store"]` in RAM (the processor's [`Held`] storage), checks it against
//! the current store the moment its write finishes, and hands every other component to the
//! device's storage.

use suitcase_processor::platform::ComponentStorage;
use suitcase_processor::storage::{Accept, Held};

use crate::{Store, TrustError};

/// The encoded component identifier of the trust store: `["suitcase", "trust-store"]`.
pub const TRUST_STORE_COMPONENT: &[u8] = &[
    0x82, 0x48, b's', b'u', b'i', b't', b'c', b'a', b's', b'e', 0x4b, b't', b'r', b'u', b's', b't',
    b'-', b's', b't', b'o', b'r', b'e',
];

/// The check: [`Store::verify_update`] against the store in force.
pub struct UpdateCheck<'s, 'c> {
    current: &'s Store<'c>,
    /// Why the last staged store was refused.
    pub refused: Option<TrustError>,
}

impl Accept for UpdateCheck<'_, '_> {
    fn accept(&mut self, bytes: &[u8]) -> bool {
        self.refused = self.current.verify_update(bytes).err();
        self.refused.is_none()
    }
}

/// Storage for an update that may carry a new trust store: after the update succeeded,
/// commit [`Held::accepted`] with [`crate::Area::commit`]; `check.refused` says why a
/// store was refused.
pub type Staging<'s, 'c> = Held<'s, UpdateCheck<'s, 'c>>;

/// `inner` holds every other component; `current` is the store in force; `buf` takes the
/// new store (size it for the largest store: keys and root signatures).
pub fn staging<'s, 'c>(
    inner: &'s mut dyn ComponentStorage,
    current: &'s Store<'c>,
    buf: &'s mut [u8],
) -> Staging<'s, 'c> {
    Held::new(
        inner,
        TRUST_STORE_COMPONENT,
        buf,
        UpdateCheck {
            current,
            refused: None,
        },
    )
}
