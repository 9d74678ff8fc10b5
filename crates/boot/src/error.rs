//! Errors: small `Copy` enums, one variant per fault.

use embedded_storage::nor_flash::{NorFlashError, NorFlashErrorKind};

use crate::layout::LayoutError;
use crate::state::State;

/// Why an image in a slot was not accepted. Signature failures stay opaque (they come
/// from the processor as one variant).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// No slot header (erased, torn or foreign content).
    NoHeader,
    /// The header's envelope does not fit the header area or the boot buffer.
    EnvelopeTooLarge,
    /// The header's image length does not fit the slot.
    ImageTooLarge,
    /// The processor refused: authentication, a validate condition (the image digest),
    /// or rollback.
    Processor(suitcase_processor::Error),
    /// A staged image that is not newer than the installed counter.
    NotNewer {
        /// The rollback counter.
        installed: u64,
        /// The staged manifest's sequence number.
        offered: u64,
    },
    /// The manifest's invoke sequence did not invoke the image.
    NotInvoked,
}

/// Everything that stops the bootloader or the update calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BootError {
    /// The flash failed (power loss included: the operation is retried at the next boot).
    Flash(NorFlashErrorKind),
    /// The layout does not fit the flash or the swap algorithm.
    Layout(LayoutError),
    /// The primary slot holds no image that verifies: nothing is handed over.
    NoBootableImage(Refusal),
    /// The operation is not allowed in this state (staging during a trial or a swap).
    Busy(State),
    /// `commit` without a staged image.
    NothingStaged,
    /// The envelope does not fit the slot header area.
    EnvelopeTooLarge,
    /// The buffer given to `boot` is smaller than the write size.
    BufferTooSmall,
}

impl From<LayoutError> for BootError {
    fn from(e: LayoutError) -> Self {
        BootError::Layout(e)
    }
}

/// `map_err` helper for flash errors.
pub(crate) fn flash<E: NorFlashError>(e: E) -> BootError {
    BootError::Flash(e.kind())
}
