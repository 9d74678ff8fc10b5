//! The application side: stage an update in the secondary slot, request it, confirm a
//! trial image.
//!
//! ```text
//! let mut updater = Updater::new(&mut flash, &layout)?;
//! updater.install(envelope, component, &mut agent, Mode::Test)?;
//!     // = authenticate; Authenticated::update with Staging as the component storage and
//!     //   Floor(counter) as the rollback store; Staging::commit (header, envelope, request)
//! // reboot: the bootloader verifies the staged image again and swaps it in; the new image
//! // runs on trial and, once it is happy with itself:
//! updater.confirm()?;
//! ```
//!
//! Staging is refused during a swap, a trial or a revert. Until the request is whole the
//! bootloader ignores the staging slot: a cut anywhere before it leaves the old image
//! running, and the agent starts again.

use embedded_storage::nor_flash::NorFlash;
use suitcase_processor::platform::{
    Clock, ComponentStorage, DecryptionKeys, DeviceIdentity, Fetch, KeyStore, NoInvoke,
    RollbackError, RollbackStore, StorageError, Target,
};
use suitcase_processor::report::Reporter;
use suitcase_processor::storage::WordWriter;
use suitcase_processor::{Platform, UpdateSummary, authenticate};

use crate::counter::Counter;
use crate::error::{BootError, flash};
use crate::journal::Journal;
use crate::layout::{Layout, Plan, Region};
use crate::slot::{HEADER_LEN, Slot, encode_header};
use crate::state::{Idle, Mode, Outcome, Record, Requested, State};

/// The application's handle on the update machinery.
pub struct Updater<'a, F: NorFlash> {
    flash: &'a mut F,
    plan: Plan,
    secondary: Region<'a>,
}

impl<'a, F: NorFlash> Updater<'a, F> {
    /// An updater over `flash` laid out as `layout`.
    ///
    /// # Errors
    /// [`BootError::Layout`].
    pub fn new(flash: &'a mut F, layout: &Layout<'a>) -> Result<Self, BootError> {
        Ok(Updater {
            plan: layout.plan::<F>()?,
            secondary: layout.secondary,
            flash,
        })
    }

    /// The plan the layout implies.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The journal's state.
    ///
    /// # Errors
    /// Flash errors.
    pub fn state(&mut self) -> Result<State, BootError> {
        Ok(Journal::read(self.flash, &self.plan)?.1)
    }

    /// The rollback counter: what a staged manifest's sequence number must exceed.
    ///
    /// # Errors
    /// Flash errors.
    pub fn floor(&mut self) -> Result<u64, BootError> {
        Counter::new(self.flash, self.plan).read()
    }

    /// The rollback counter as a [`RollbackStore`].
    pub fn counter(&mut self) -> Counter<'_, F> {
        Counter::new(self.flash, self.plan)
    }

    /// The envelope stored with the running image (the primary slot), read into `buf`;
    /// `None` when the slot holds no image or the envelope does not fit `buf`. Not
    /// authenticated here: the agent authenticates it before acting on it (the trust
    /// store's roll-forward, docs/trust-store.md).
    ///
    /// # Errors
    /// Flash errors.
    pub fn running_envelope<'b>(
        &mut self,
        buf: &'b mut [u8],
    ) -> Result<Option<&'b [u8]>, BootError> {
        Ok(
            crate::slot::read_envelope(self.flash, &self.plan, crate::slot::Slot::Primary, buf)?
                .ok()
                .map(|(envelope, _)| envelope),
        )
    }

    /// Starts staging an image of `component` (its encoded identifier). Refused while a
    /// swap, a trial or a revert is in progress: the secondary slot then holds the image
    /// a revert needs.
    ///
    /// # Errors
    /// [`BootError::Busy`], flash errors.
    pub fn stage<'s>(&'s mut self, component: &'s [u8]) -> Result<Staging<'s, F>, BootError> {
        match self.state()? {
            s @ (State::Swapping(_) | State::Trial(_) | State::Reverting(_)) => {
                Err(BootError::Busy(s))
            }
            State::Idle(_) | State::Requested(_) => Ok(Staging {
                flash: self.flash,
                plan: self.plan,
                secondary: self.secondary,
                component,
                words: WordWriter::new(),
                len: None,
                erased: 0,
            }),
        }
    }

    /// Confirms the running trial image: it becomes permanent, and the rollback counter
    /// rises to its sequence number. Nothing to do when no trial runs.
    ///
    /// # Errors
    /// [`BootError::Busy`] during a request, swap or revert; flash errors.
    pub fn confirm(&mut self) -> Result<(), BootError> {
        let (mut journal, state) = Journal::read(self.flash, &self.plan)?;
        match state {
            State::Trial(t) => {
                let next = state.apply(Record::Confirm, self.plan.max_units);
                journal.commit(self.flash, &self.plan, Record::Confirm, &next)?;
                Counter::new(self.flash, self.plan).advance_to(t.sequence())?;
                Ok(())
            }
            State::Idle(_) => Ok(()),
            s => Err(BootError::Busy(s)),
        }
    }
}

/// What the update agent brings besides the flash: trust, identity and a transport.
pub struct Agent<'p> {
    /// Trust anchors and signing policy.
    pub keys: &'p dyn KeyStore,
    /// Vendor, class and slot answers.
    pub identity: &'p dyn DeviceIdentity,
    /// Where payloads come from.
    pub fetch: &'p mut dyn Fetch,
    /// Time, for use-before.
    pub clock: &'p dyn Clock,
    /// Report records.
    pub reporter: &'p mut dyn Reporter,
    /// Keys for encrypted payloads.
    pub decryption: &'p dyn DecryptionKeys,
    /// Answers to the update-management conditions (installed version, battery,
    /// authorization, events); `NoPolicy` makes them abort rather than pass.
    pub policy: &'p mut dyn suitcase_processor::platform::UpdatePolicy,
}

/// Why [`Updater::install`] did not request an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InstallError {
    /// The processor refused the envelope (authentication, conditions, rollback, fetch).
    Processor(suitcase_processor::Error),
    /// The bootloader side refused (busy, flash, envelope too large).
    Boot(BootError),
}

impl<F: NorFlash> Updater<'_, F> {
    /// The whole agent step: authenticate `envelope`, run its update procedure into the
    /// staging slot (the rollback floor from the counter), store the envelope and request
    /// the update in `mode`. The next boot verifies it again and swaps it in.
    ///
    /// # Errors
    /// [`InstallError`]; nothing is requested unless every step succeeded.
    pub fn install(
        &mut self,
        envelope: &[u8],
        component: &[u8],
        agent: &mut Agent<'_>,
        mode: Mode,
    ) -> Result<UpdateSummary, InstallError> {
        let auth = authenticate(envelope, agent.keys).map_err(InstallError::Processor)?;
        let floor = self.floor().map_err(InstallError::Boot)?;
        let mut staging = self.stage(component).map_err(InstallError::Boot)?;
        let summary = auth
            .update(&mut Platform {
                storage: &mut staging,
                fetch: &mut *agent.fetch,
                identity: agent.identity,
                rollback: &mut Floor(floor),
                clock: agent.clock,
                invoker: &mut NoInvoke,
                reporter: &mut *agent.reporter,
                decryption: agent.decryption,
                policy: &mut *agent.policy,
                dependencies: None,
            })
            .map_err(InstallError::Processor)?;
        staging.commit(envelope, mode).map_err(InstallError::Boot)?;
        Ok(summary)
    }
}

/// The staging slot as the processor's component storage: the image goes to the
/// secondary slot at unit 1 plus `header_size`, in write-size words.
pub struct Staging<'s, F: NorFlash> {
    flash: &'s mut F,
    plan: Plan,
    secondary: Region<'s>,
    component: &'s [u8],
    /// Re-blocks the image into flash words (shared with the processor's `FlashStorage`).
    words: WordWriter,
    /// The image length, once finished.
    len: Option<u32>,
    /// Image bytes the last `begin_write` erased room for (0: none).
    erased: u32,
}

impl<F: NorFlash> Staging<'_, F> {
    fn check(&self, t: &Target<'_>) -> Result<(), StorageError> {
        if t.id.as_bytes() == self.component {
            Ok(())
        } else {
            Err(StorageError::UnknownComponent)
        }
    }

    fn image_at(&self) -> u32 {
        Slot::Staged.content(&self.plan) + self.plan.header
    }

    /// Writes the slot header and `envelope`, then asks the bootloader for the update.
    /// Until the request record is whole, the bootloader ignores the staged image.
    ///
    /// # Errors
    /// [`BootError::NothingStaged`], [`BootError::EnvelopeTooLarge`], flash errors.
    pub fn commit(self, envelope: &[u8], mode: Mode) -> Result<(), BootError> {
        let Some(len) = self.len else {
            return Err(BootError::NothingStaged);
        };
        let env_len = u32::try_from(envelope.len()).map_err(|_| BootError::EnvelopeTooLarge)?;
        if env_len > self.plan.header - HEADER_LEN as u32 {
            return Err(BootError::EnvelopeTooLarge);
        }
        let at = Slot::Staged.content(&self.plan);
        self.flash
            .write(at, &encode_header(env_len, len))
            .map_err(flash)?;
        let w = self.plan.write as usize;
        let whole = envelope.len() / w * w;
        let (body, tail) = envelope.split_at(whole);
        let env_at = at + HEADER_LEN as u32;
        if !body.is_empty() {
            self.flash.write(env_at, body).map_err(flash)?;
        }
        if !tail.is_empty() {
            let mut word = [self.plan.erased; 32];
            crate::record::put(&mut word, 0, tail);
            let word = word.get(..w).ok_or(BootError::BufferTooSmall)?;
            self.flash
                .write(env_at + whole as u32, word)
                .map_err(flash)?;
        }
        let (mut journal, _) = Journal::read(self.flash, &self.plan)?;
        journal.open(
            self.flash,
            &self.plan,
            &State::Requested(Requested { mode }),
        )
    }
}

impl<F: NorFlash> ComponentStorage for Staging<'_, F> {
    fn len(&mut self, t: &Target<'_>) -> Result<u64, StorageError> {
        self.check(t)?;
        Ok(u64::from(self.len.unwrap_or(self.words.written())))
    }

    fn read(&mut self, t: &Target<'_>, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        self.check(t)?;
        let end = offset
            .checked_add(buf.len() as u64)
            .ok_or(StorageError::OutOfBounds)?;
        if end > u64::from(self.len.unwrap_or(self.words.written())) {
            return Err(StorageError::OutOfBounds);
        }
        let at = self.image_at() + u32::try_from(offset).map_err(|_| StorageError::OutOfBounds)?;
        self.flash.read(at, buf).map_err(|_| StorageError::Device)
    }

    fn begin_write(&mut self, t: &Target<'_>, size: Option<u64>) -> Result<(), StorageError> {
        self.check(t)?;
        let max = u64::from(self.plan.max_image());
        let size = size.unwrap_or(max);
        if size > max {
            return Err(StorageError::OutOfSpace);
        }
        // Erase the sectors the header and image will cover, from unit 1 on; no more
        // (each erase is wear).
        let start = self.plan.unit;
        let end = start + self.plan.header + size as u32;
        let end = self
            .secondary
            .boundary_at_or_after(end)
            .ok_or(StorageError::OutOfSpace)?;
        let base = self.secondary.offset;
        self.flash
            .erase(base + start, base + end)
            .map_err(|_| StorageError::Device)?;
        // Never write past what was erased: the rest of the slot may hold anything.
        self.erased = (end - start - self.plan.header).min(self.plan.max_image());
        self.words = WordWriter::new();
        self.len = None;
        Ok(())
    }

    fn write(&mut self, t: &Target<'_>, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        self.check(t)?;
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(StorageError::OutOfSpace)?;
        if offset != self.words.position() || end > u64::from(self.erased) {
            return Err(StorageError::OutOfSpace);
        }
        let base = self.image_at();
        let flash = &mut *self.flash;
        self.words
            .feed(self.plan.write as usize, data, &mut |at, bytes| {
                flash
                    .write(base + at, bytes)
                    .map_err(|_| StorageError::Device)
            })
    }

    fn finish_write(&mut self, t: &Target<'_>, len: u64) -> Result<(), StorageError> {
        self.check(t)?;
        let base = self.image_at();
        let flash = &mut *self.flash;
        self.words.finish(
            self.plan.write as usize,
            self.plan.erased,
            &mut |at, bytes| {
                flash
                    .write(base + at, bytes)
                    .map_err(|_| StorageError::Device)
            },
        )?;
        let len = u32::try_from(len).map_err(|_| StorageError::OutOfSpace)?;
        self.len = Some(len);
        Ok(())
    }
}

/// The rollback store the agent gives the update procedure: it answers the counter, and
/// advancing is left to the confirm (a trial image must not raise the floor above the
/// image a revert returns to).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Floor(pub u64);

impl RollbackStore for Floor {
    fn current(&mut self) -> Result<u64, RollbackError> {
        Ok(self.0)
    }
    fn advance(&mut self, sequence: u64) -> Result<(), RollbackError> {
        if sequence < self.0 {
            Err(RollbackError::WouldDecrease)
        } else {
            Ok(())
        }
    }
}

/// The outcome of the last update, for reports.
pub fn last_outcome(state: &State) -> Option<Outcome> {
    match state {
        State::Idle(Idle { last }) => Some(*last),
        _ => None,
    }
}
