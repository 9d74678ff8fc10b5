//! The store an envelope carries, read without running it: what the fleet server checks
//! at upload, and what a device rolls forward when a power cut fell between requesting
//! the swap and committing the store (the envelope the bootloader keeps is the journal).
//!
//! Read statically: the last `content` parameter set on the trust-store component in the
//! shared, payload-fetch and install sequences, following set-component-index in order
//! (each sequence starts at index 0, as on the device). That is what `suitcase build`
//! writes for `content = "store.cbor"`. A store fetched by URI, or set only inside a
//! try-each branch, is not seen: [`Carried::Unreadable`].

use suitcase_processor::Authenticated;
use suitcase_suit::{Command, CommandSequence, IndexArg, Parameter, SequenceSource, SeverableKind};

use crate::{Store, TRUST_STORE_COMPONENT};

/// What an envelope says about the trust store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carried<'a> {
    /// The manifest has no trust-store component.
    None,
    /// The signed store the manifest writes into the trust-store component.
    Store(&'a [u8]),
    /// The manifest names the component, but its bytes are not readable here (fetched,
    /// severed, set only in a try-each branch, or a sequence does not decode).
    Unreadable,
}

/// The trust store `auth`'s manifest carries.
pub fn carried<'a>(auth: &Authenticated<'a>) -> Carried<'a> {
    let m = auth.manifest();
    let count = u32::try_from(m.index_count()).unwrap_or(u32::MAX);
    let Some(index) = (0..count).find(|&i| {
        m.component_id(i)
            .is_some_and(|c| c.as_bytes() == TRUST_STORE_COMPONENT)
    }) else {
        return Carried::None;
    };
    let mut found = None;
    if let Some(shared) = &m.common.shared_sequence
        && content_for(shared, index, &mut found).is_err()
    {
        return Carried::Unreadable;
    }
    for kind in [SeverableKind::PayloadFetch, SeverableKind::Install] {
        match auth.envelope().sequence(m, kind) {
            Ok(SequenceSource::Available(q)) => {
                if content_for(&q, index, &mut found).is_err() {
                    return Carried::Unreadable;
                }
            }
            Ok(_) => {}
            Err(_) => return Carried::Unreadable,
        }
    }
    found.map_or(Carried::Unreadable, Carried::Store)
}

/// The store `auth` carries when `current` would still accept it: a store the device
/// has not committed yet. `None` when there is none, it is unreadable, or `current`
/// refuses it (already committed: not newer; or never acceptable).
///
/// The agent calls this on every start of a confirmed image with the envelope the
/// bootloader keeps, and commits what it returns: a cut between the swap request and the
/// store commit then only delays the store to the next start.
pub fn pending<'a>(current: &Store<'_>, auth: &Authenticated<'a>) -> Option<&'a [u8]> {
    match carried(auth) {
        Carried::Store(s) if current.verify_update(s).is_ok() => Some(s),
        _ => None,
    }
}

/// The last `content` set on component `index` in `seq`.
fn content_for<'a>(
    seq: &CommandSequence<'a>,
    index: u32,
    found: &mut Option<&'a [u8]>,
) -> Result<(), ()> {
    let mut selected = index == 0;
    for item in seq.iter() {
        let (_, cmd) = item.map_err(|_| ())?;
        match cmd {
            Command::SetComponentIndex(IndexArg::One(i)) => selected = i == index,
            Command::SetComponentIndex(IndexArg::All) => selected = true,
            Command::SetComponentIndex(IndexArg::List(l)) => {
                selected = l.iter().any(|i| i == index);
            }
            Command::OverrideParameters(p) if selected => {
                if let Some(bytes) = content(&p) {
                    *found = Some(bytes);
                }
            }
            // set-parameters does not replace a value already set (as in the processor).
            Command::SetParameters(p) if selected && found.is_none() => {
                *found = content(&p);
            }
            // Content set inside a try-each branch or a nested sequence depends on which
            // branch runs, or on the selection inside it: not read statically.
            Command::TryEach(t) => {
                for branch in t.branches() {
                    if sets_content(&branch.map_err(|_| ())?)? {
                        return Err(());
                    }
                }
            }
            Command::RunSequence(q) if sets_content(&q)? => return Err(()),
            _ => {}
        }
    }
    Ok(())
}

/// The `content` parameter in `p`, if any.
fn content<'a>(p: &suitcase_suit::Parameters<'a>) -> Option<&'a [u8]> {
    p.iter().find_map(|param| match param {
        Parameter::Content(bytes) => Some(bytes),
        _ => None,
    })
}

/// Whether `seq` (nested sequences included) sets a `content` parameter anywhere.
fn sets_content(seq: &CommandSequence<'_>) -> Result<bool, ()> {
    for item in seq.iter() {
        let (_, cmd) = item.map_err(|_| ())?;
        let nested = match cmd {
            Command::OverrideParameters(p) | Command::SetParameters(p) => content(&p).is_some(),
            Command::TryEach(t) => {
                let mut any = false;
                for branch in t.branches() {
                    any |= sets_content(&branch.map_err(|_| ())?)?;
                }
                any
            }
            Command::RunSequence(q) => sets_content(&q)?,
            _ => false,
        };
        if nested {
            return Ok(true);
        }
    }
    Ok(false)
}
