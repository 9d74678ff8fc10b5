//! The SUIT abstract machine (draft-ietf-suit-manifest §6.4, §8.4.8–8.4.10).
//!
//! State: the component list, the selected components, one parameter set per component,
//! and the global soft-failure flag (strict-order is accepted and ignored: this is a
//! serial processor, which the spec allows).
//!
//! How a failure travels (the decision table, evaluated in order):
//!
//! | # | what failed                         | soft-failure | effect                                   |
//! |---|-------------------------------------|--------------|------------------------------------------|
//! | 1 | a directive, or an unsupported item | any          | abort the procedure                      |
//! | 2 | a condition (or a nested sequence   | true         | end this sequence "softly": the enclosing |
//! |   | that ended with a hard condition)   |              | try-each tries its next branch, the      |
//! |   |                                     |              | enclosing run-sequence carries on        |
//! | 3 | the same                            | false        | hand the condition failure to the        |
//! |   |                                     |              | enclosing sequence, which applies its    |
//! |   |                                     |              | own row 2/3; at top level: abort         |
//! | 4 | every try-each branch, no `nil`     | —            | a condition failure of the try-each      |
//!
//! soft-failure starts true in each try-each branch and false in each run-sequence body,
//! is local to that sequence, and may not be set at top level (abort).

use suitcase_suit::command::{IndexIter, TryEach};
use suitcase_suit::{
    Command, CommandSequence, Condition, Directive, IndexArg, Parameter, Parameters,
    ReportingPolicy, SequenceSource, SeverableKind, VendorId,
};

use crate::auth::Authenticated;
use crate::error::Error;
use crate::params::Params;
use crate::pipeline::{self, Source, Written};
use crate::platform::{Platform, Procedure, Target};
use crate::report::{Outcome, Record, SequenceKind, wanted};

const MAX: usize = suitcase_suit::MAX_COMPONENTS;

/// The components commands currently apply to.
#[derive(Clone, Copy)]
enum Selection<'a> {
    /// None yet (several components and no set-component-index).
    Nothing,
    One(u32),
    All,
    List(suitcase_suit::command::IndexList<'a>),
}

/// Iterator over a selection's indices.
enum Indices<'a> {
    Range(core::ops::Range<u32>),
    List(IndexIter<'a>),
}

impl Iterator for Indices<'_> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        match self {
            Indices::Range(r) => r.next(),
            Indices::List(l) => l.next(),
        }
    }
}

/// What ends a sequence early.
#[derive(Clone, Copy, Debug)]
enum Stop {
    /// A condition failed while soft-failure was true: the sequence halts, and the
    /// enclosing construct decides what next (row 2).
    Soft,
    /// A condition failed with soft-failure false (row 3).
    Condition(Failed),
    /// Row 1.
    Abort(Error),
}

#[derive(Clone, Copy, Debug)]
enum Failed {
    Condition(Condition, u32),
    TryEach,
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Abort(e)
    }
}

/// Where a sequence runs: decides soft-failure's start value and whether it may be set.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    TopLevel,
    TryBranch,
    RunSequence,
}

/// Where an install reads from (the pipeline's `Source` before the transport is opened).
enum Input<'a, 'u> {
    Bytes(&'a [u8]),
    Fetch(&'u str),
    Component(Target<'a>, u64),
}

/// Summary of a completed update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpdateSummary {
    /// The manifest's sequence number, now the installed one.
    pub sequence_number: u64,
    /// Bit set of the components written (write, fetch, copy, swap).
    pub components_written: u32,
    /// Bytes streamed into storage.
    pub bytes_written: u64,
}

pub(crate) struct Machine<'a, 'e, 'p> {
    auth: &'e Authenticated<'a>,
    platform: &'e mut Platform<'p>,
    procedure: Procedure,
    params: [Params<'a>; MAX],
    /// Digest and length of what this run wrote into each component, and the slot it
    /// went to: image-match after a fetch uses it, so the payload is hashed once, as it
    /// streams in. Keyed by slot because try-each branches move the slot parameter back
    /// and forth while choosing.
    written: [Option<(Option<u64>, Written)>; MAX],
    ncomp: usize,
    /// The component identifiers, decoded once (commands look them up constantly).
    ids: [Option<suitcase_suit::ComponentId<'a>>; MAX],
    components_written: u32,
    bytes_written: u64,
    /// The component the current command is acting on (for the failure record).
    at: u32,
    /// The innermost command whose failure is travelling up (cleared when a sequence
    /// absorbs it softly): handed to `Reporter::failed` when the procedure stops.
    failure: Option<Record>,
}

impl<'a, 'e, 'p> Machine<'a, 'e, 'p> {
    pub(crate) fn new(
        auth: &'e Authenticated<'a>,
        platform: &'e mut Platform<'p>,
        procedure: Procedure,
    ) -> Self {
        let mut ids = [None; MAX];
        for (slot, id) in ids.iter_mut().zip(auth.manifest().common.components.iter()) {
            *slot = Some(id);
        }
        Machine {
            ids,
            ncomp: auth.manifest().common.components.len(),
            auth,
            platform,
            procedure,
            params: [Params::default(); MAX],
            written: [None; MAX],
            components_written: 0,
            bytes_written: 0,
            at: 0,
            failure: None,
        }
    }

    /// Runs the procedure's sequences in the spec's order, each after the shared sequence.
    pub(crate) fn run_procedure(&mut self) -> Result<UpdateSummary, Error> {
        let m = *self.auth.manifest();
        let env = *self.auth.envelope();
        let plan: &[(SequenceKind, Option<SeverableKind>)] = match self.procedure {
            Procedure::Update => &[
                (
                    SequenceKind::DependencyResolution,
                    Some(SeverableKind::DependencyResolution),
                ),
                (
                    SequenceKind::PayloadFetch,
                    Some(SeverableKind::PayloadFetch),
                ),
                (
                    SequenceKind::CandidateVerification,
                    Some(SeverableKind::CandidateVerification),
                ),
                (SequenceKind::Install, Some(SeverableKind::Install)),
                (SequenceKind::Validate, None),
            ],
            Procedure::Invoke => &[
                (SequenceKind::Validate, None),
                (SequenceKind::Load, None),
                (SequenceKind::Invoke, None),
            ],
        };
        for &(kind, severable) in plan {
            let seq = match severable {
                Some(s) => match env.sequence(&m, s)? {
                    SequenceSource::Absent => None,
                    SequenceSource::Available(q) => Some(q),
                    SequenceSource::Severed => return Err(Error::Severed(s)),
                },
                None => match kind {
                    SequenceKind::Validate => m.validate,
                    SequenceKind::Load => m.load,
                    _ => m.invoke,
                },
            };
            if let Some(seq) = seq
                && let Err(e) = self.run_top(kind, seq)
            {
                if let Some(r) = self.failure {
                    self.platform.reporter.failed(&r, &e);
                }
                return Err(e);
            }
        }
        Ok(UpdateSummary {
            sequence_number: m.sequence_number,
            components_written: self.components_written,
            bytes_written: self.bytes_written,
        })
    }

    fn default_selection(&self) -> Selection<'a> {
        if self.ncomp == 1 {
            Selection::One(0)
        } else {
            Selection::Nothing
        }
    }

    /// The shared sequence, then `seq`, each with a fresh selection (every sequence of a
    /// multi-component manifest must start with set-component-index, §6.2).
    fn run_top(&mut self, kind: SequenceKind, seq: CommandSequence<'a>) -> Result<(), Error> {
        if let Some(shared) = self.auth.manifest().common.shared_sequence {
            let mut sel = self.default_selection();
            self.top(SequenceKind::Shared, shared, &mut sel)?;
        }
        let mut sel = self.default_selection();
        self.top(kind, seq, &mut sel)
    }

    fn top(
        &mut self,
        kind: SequenceKind,
        seq: CommandSequence<'a>,
        sel: &mut Selection<'a>,
    ) -> Result<(), Error> {
        match self.run(kind, seq, sel, Scope::TopLevel, 0) {
            Ok(()) => Ok(()),
            Err(Stop::Abort(e)) => Err(e),
            Err(Stop::Condition(Failed::Condition(condition, component))) => {
                Err(Error::ConditionFailed {
                    condition,
                    component,
                    sequence: kind,
                })
            }
            Err(Stop::Condition(Failed::TryEach)) => {
                Err(Error::TryEachExhausted { sequence: kind })
            }
            // soft-failure cannot be true at top level.
            Err(Stop::Soft) => Err(Error::SoftFailureNotAllowed),
        }
    }

    fn indices(&self, sel: &Selection<'a>) -> Result<Indices<'a>, Error> {
        Ok(match sel {
            Selection::Nothing => return Err(Error::NoComponentSelected),
            Selection::One(i) => Indices::Range(*i..*i + 1),
            Selection::All => Indices::Range(0..self.ncomp as u32),
            Selection::List(l) => Indices::List(l.iter()),
        })
    }

    fn target(&self, index: u32) -> Result<Target<'a>, Error> {
        let i = index as usize;
        let id = self
            .ids
            .get(i)
            .copied()
            .flatten()
            .ok_or(Error::ComponentIndexOutOfRange(index))?;
        let slot = self
            .params
            .get(i)
            .ok_or(Error::ComponentIndexOutOfRange(index))?
            .slot;
        Ok(Target { index: i, id, slot })
    }

    fn params(&self, index: u32) -> Result<&Params<'a>, Error> {
        self.params
            .get(index as usize)
            .ok_or(Error::ComponentIndexOutOfRange(index))
    }

    fn report(
        &mut self,
        kind: SequenceKind,
        offset: usize,
        code: i64,
        component: u32,
        policy: ReportingPolicy,
        outcome: Outcome,
    ) {
        if let Some(sysinfo) = wanted(policy, outcome) {
            self.platform.reporter.record(&Record {
                sequence: kind,
                offset,
                command: code,
                component,
                outcome,
                sysinfo,
            });
        }
    }

    /// Runs one sequence. Recursion depth is bounded by the decoder's
    /// [`suitcase_suit::command::MAX_SEQUENCE_DEPTH`], checked again here.
    fn run(
        &mut self,
        kind: SequenceKind,
        seq: CommandSequence<'a>,
        sel: &mut Selection<'a>,
        scope: Scope,
        depth: usize,
    ) -> Result<(), Stop> {
        if depth >= suitcase_suit::command::MAX_SEQUENCE_DEPTH {
            return Err(Stop::Abort(Error::Decode(suitcase_suit::DecodeError {
                kind: suitcase_suit::DecodeErrorKind::TooDeep,
                offset: seq.offset() as u32,
            })));
        }
        let mut soft = scope == Scope::TryBranch;
        for item in seq.iter() {
            let (offset, cmd) = item.map_err(Error::from)?;
            let code = cmd.code();
            let result = self.command(kind, offset, cmd, sel, scope, &mut soft, depth);
            match result {
                Ok(()) => {}
                // Rows 2 and 3: a condition failure here, or one handed up from a nested
                // sequence, is decided by this sequence's soft-failure.
                Err(Stop::Condition(f)) => {
                    if soft {
                        self.failure = None;
                        return Err(Stop::Soft);
                    }
                    self.note_failure(kind, offset, code);
                    return Err(Stop::Condition(f));
                }
                Err(Stop::Abort(e)) => {
                    self.note_failure(kind, offset, code);
                    return Err(Stop::Abort(e));
                }
                Err(Stop::Soft) => return Err(Stop::Soft),
            }
        }
        Ok(())
    }

    /// Remembers the innermost failing command (the first one noted while a failure
    /// travels up; enclosing try-each / run-sequence commands do not overwrite it).
    fn note_failure(&mut self, kind: SequenceKind, offset: usize, command: i64) {
        if self.failure.is_none() {
            self.failure = Some(Record {
                sequence: kind,
                offset,
                command,
                component: self.at,
                outcome: Outcome::Failure,
                sysinfo: false,
            });
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn command(
        &mut self,
        kind: SequenceKind,
        offset: usize,
        cmd: Command<'a>,
        sel: &mut Selection<'a>,
        scope: Scope,
        soft: &mut bool,
        depth: usize,
    ) -> Result<(), Stop> {
        match cmd {
            Command::SetComponentIndex(arg) => {
                *sel = match arg {
                    IndexArg::All => Selection::All,
                    IndexArg::One(i) => {
                        self.check_index(i)?;
                        Selection::One(i)
                    }
                    IndexArg::List(l) => {
                        for i in l.iter() {
                            self.check_index(i)?;
                        }
                        Selection::List(l)
                    }
                };
                Ok(())
            }
            Command::OverrideParameters(p) => self.set_params(p, sel, scope, soft, false),
            Command::SetParameters(p) => self.set_params(p, sel, scope, soft, true),
            Command::Condition(c, policy) => {
                for i in self.indices(sel)? {
                    self.at = i;
                    // An abort while evaluating (the platform cannot answer, storage
                    // failed) is a failure of this condition too, recorded as such.
                    let r = self.condition(c, i);
                    let outcome = if matches!(r, Ok(true)) {
                        Outcome::Success
                    } else {
                        Outcome::Failure
                    };
                    self.report(kind, offset, cmd.code(), i, policy, outcome);
                    if !r? {
                        return Err(Stop::Condition(Failed::Condition(c, i)));
                    }
                }
                Ok(())
            }
            Command::Directive(d, policy) => {
                for i in self.indices(sel)? {
                    self.at = i;
                    let r = self.directive(d, i);
                    let outcome = if r.is_ok() {
                        Outcome::Success
                    } else {
                        Outcome::Failure
                    };
                    self.report(kind, offset, cmd.code(), i, policy, outcome);
                    r?;
                }
                Ok(())
            }
            Command::TryEach(t) => {
                for i in self.indices(sel)? {
                    self.at = i;
                    self.try_each(kind, t, i, depth)?;
                }
                Ok(())
            }
            Command::RunSequence(body) => {
                for i in self.indices(sel)? {
                    self.at = i;
                    let mut inner = Selection::One(i);
                    match self.run(kind, body, &mut inner, Scope::RunSequence, depth + 1) {
                        // Halted softly: "no side effects" on the caller, carry on.
                        Ok(()) | Err(Stop::Soft) => self.at = i,
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
            Command::OverrideMultiple(map) => {
                for entry in map.parameters() {
                    let (i, p) = entry.map_err(Error::from)?;
                    self.check_index(i)?;
                    let one = Selection::One(i);
                    self.set_params(p, &one, scope, soft, false)?;
                }
                Ok(())
            }
            Command::CopyParams(map) => {
                for entry in map.code_lists() {
                    let (src, codes) = entry.map_err(Error::from)?;
                    let from = *self.params(src)?;
                    for i in self.indices(sel)? {
                        let to = self
                            .params
                            .get_mut(i as usize)
                            .ok_or(Error::ComponentIndexOutOfRange(i))?;
                        for code in codes.iter() {
                            if !to.copy_from(&from, code) {
                                return Err(Stop::Abort(Error::UnsupportedParameter(code)));
                            }
                        }
                    }
                }
                Ok(())
            }
            Command::Custom(code, _) => Err(Stop::Abort(Error::UnsupportedCommand(code))),
            _ => Err(Stop::Abort(Error::UnsupportedCommand(cmd.code()))),
        }
    }

    fn check_index(&self, i: u32) -> Result<(), Error> {
        if (i as usize) < self.ncomp {
            Ok(())
        } else {
            Err(Error::ComponentIndexOutOfRange(i))
        }
    }

    fn set_params(
        &mut self,
        p: Parameters<'a>,
        sel: &Selection<'a>,
        scope: Scope,
        soft: &mut bool,
        only_if_unset: bool,
    ) -> Result<(), Stop> {
        for param in p.iter() {
            match param {
                Parameter::SoftFailure(v) => {
                    if scope == Scope::TopLevel {
                        return Err(Stop::Abort(Error::SoftFailureNotAllowed));
                    }
                    *soft = v;
                }
                // A serial processor runs everything in order already (§6.7 makes
                // parallel processing optional).
                Parameter::StrictOrder(_) => {}
                Parameter::Custom(code, _) => {
                    return Err(Stop::Abort(Error::UnsupportedParameter(code)));
                }
                other => {
                    for i in self.indices(sel)? {
                        let params = self
                            .params
                            .get_mut(i as usize)
                            .ok_or(Error::ComponentIndexOutOfRange(i))?;
                        params.apply(other, only_if_unset);
                    }
                }
            }
        }
        Ok(())
    }

    fn try_each(
        &mut self,
        kind: SequenceKind,
        t: TryEach<'a>,
        i: u32,
        depth: usize,
    ) -> Result<(), Stop> {
        for branch in t.branches() {
            let branch = branch.map_err(Error::from)?;
            let mut inner = Selection::One(i);
            match self.run(kind, branch, &mut inner, Scope::TryBranch, depth + 1) {
                Ok(()) => return Ok(()),
                Err(Stop::Soft) => continue,
                Err(e) => return Err(e),
            }
        }
        self.at = i;
        if t.has_empty_fallback {
            Ok(())
        } else {
            Err(Stop::Condition(Failed::TryEach))
        }
    }

    /// Evaluates a condition: `Ok(false)` is a condition failure (soft-able); `Err` is
    /// an abort (the platform cannot answer, storage failed, the build lacks it).
    fn condition(&mut self, c: Condition, i: u32) -> Result<bool, Error> {
        let t = self.target(i)?;
        let p = *self.params(i)?;
        let identity = self.platform.identity;
        Ok(match c {
            // A condition whose parameter is unset fails (§8.4.9).
            Condition::VendorIdentifier => p
                .vendor
                .is_some_and(|v: VendorId<'_>| identity.vendor_matches(&t, v)),
            Condition::ClassIdentifier => p.class.is_some_and(|v| identity.class_matches(&t, v)),
            Condition::DeviceIdentifier => p.device.is_some_and(|v| identity.device_matches(&t, v)),
            Condition::ComponentSlot => p
                .slot
                .is_some_and(|s| identity.slot_matches(&t, s, self.procedure)),
            Condition::ImageMatch => self.image_matches(i, &t, &p)?.unwrap_or(false),
            Condition::ImageNotMatch => matches!(self.image_matches(i, &t, &p)?, Some(false)),
            Condition::CheckContent => match p.content {
                Some(c) => pipeline::content_equals(self.platform.storage, &t, c)?,
                None => false,
            },
            Condition::Abort => false,
            Condition::UseBefore => match (p.use_before, self.platform.clock.now()) {
                (Some(limit), Some(now)) => now <= limit,
                _ => false,
            },
            #[cfg(feature = "update-management")]
            Condition::MinimumBattery | Condition::UpdateAuthorized | Condition::Version => {
                return crate::manage::condition(self.platform.policy, c, i, &t, &p);
            }
            other => {
                return Err(Error::UnsupportedCommand(
                    suitcase_suit::command::condition_code(other),
                ));
            }
        })
    }

    /// `None` when no digest is set (image-match fails, image-not-match fails too).
    fn image_matches(
        &mut self,
        i: u32,
        t: &Target<'a>,
        p: &Params<'a>,
    ) -> Result<Option<bool>, Error> {
        let Some(d) = p.digest else { return Ok(None) };
        if d.algorithm != suitcase_suit::DigestAlgorithm::Sha256 {
            return Err(Error::UnsupportedDigest);
        }
        if let Some(Some((slot, w))) = self.written.get(i as usize)
            && *slot == p.slot
            && p.size.is_none_or(|s| s == w.len)
        {
            return Ok(Some(w.digest.as_slice() == d.bytes));
        }
        let len = match p.size {
            Some(s) => s,
            None => self.platform.storage.len(t)?,
        };
        Ok(Some(
            pipeline::digest_component(self.platform.storage, t, len)?
                .is_some_and(|h| h.as_slice() == d.bytes),
        ))
    }

    fn directive(&mut self, d: Directive, i: u32) -> Result<(), Error> {
        let t = self.target(i)?;
        let p = *self.params(i)?;
        match d {
            Directive::Write => {
                let content = p.content.ok_or(Error::MissingParameter {
                    parameter: 18,
                    component: i,
                })?;
                self.install(i, &t, &p, Input::Bytes(content))
            }
            Directive::Fetch => {
                let uri = p.uri.ok_or(Error::MissingParameter {
                    parameter: 21,
                    component: i,
                })?;
                if uri.starts_with('#') {
                    // Integrated payload: carried in the envelope under its URI.
                    let env = *self.auth.envelope();
                    let bytes = env
                        .integrated(uri)
                        .ok_or(Error::Fetch(crate::platform::FetchError::NotFound))?;
                    self.install(i, &t, &p, Input::Bytes(bytes))
                } else {
                    self.install(i, &t, &p, Input::Fetch(uri))
                }
            }
            Directive::Copy => {
                let src = p.source.ok_or(Error::MissingParameter {
                    parameter: 22,
                    component: i,
                })?;
                if src == i {
                    return Err(Error::SourceIsDestination);
                }
                let st = self.target(src)?;
                let sp = *self.params(src)?;
                let len = match sp.size {
                    Some(s) => s,
                    None => self.platform.storage.len(&st)?,
                };
                self.install(i, &t, &p, Input::Component(st, len))
            }
            Directive::Swap => {
                let src = p.source.ok_or(Error::MissingParameter {
                    parameter: 22,
                    component: i,
                })?;
                if src == i {
                    return Err(Error::SourceIsDestination);
                }
                let st = self.target(src)?;
                self.platform.storage.swap(&t, &st)?;
                // Both contents moved: forget what was written, image-match reads back.
                for k in [i, src] {
                    if let Some(w) = self.written.get_mut(k as usize) {
                        *w = None;
                    }
                }
                self.components_written |= (1 << i) | (1 << src);
                Ok(())
            }
            Directive::Invoke => self
                .platform
                .invoker
                .invoke(&t, p.invoke_args)
                .map_err(Error::from),
            #[cfg(feature = "update-management")]
            Directive::Wait => crate::manage::wait(self.platform.policy, i, &t, &p),
            other => Err(Error::UnsupportedCommand(
                suitcase_suit::command::directive_code(other),
            )),
        }
    }

    /// One streaming pass into component `i` (write, fetch, copy).
    fn install(
        &mut self,
        i: u32,
        t: &Target<'a>,
        p: &Params<'a>,
        from: Input<'a, '_>,
    ) -> Result<(), Error> {
        // Decryption is this pass's transform: each byte is decrypted, hashed and written
        // once. A build without it refuses an encrypted payload rather than install
        // ciphertext as if it were an image.
        #[cfg(not(feature = "encryption"))]
        if p.encryption_info.is_some() {
            return Err(Error::UnsupportedParameter(19));
        }
        #[cfg(feature = "encryption")]
        let mut decryptor = match p.encryption_info {
            Some(info) => Some(crate::decrypt::Decryptor::new(
                info,
                self.platform.decryption,
            )?),
            None => None,
        };
        #[cfg(feature = "encryption")]
        let transform = decryptor
            .as_mut()
            .map(|d| d as &mut dyn pipeline::Transform);
        #[cfg(not(feature = "encryption"))]
        let transform = None;
        let platform = &mut *self.platform;
        let source = match from {
            Input::Bytes(b) => Source::Bytes(b),
            Input::Component(src, len) => Source::Component(src, len),
            Input::Fetch(uri) => {
                platform.fetch.open(uri, p.fetch_args)?;
                Source::Fetch(&mut *platform.fetch)
            }
        };
        let w = pipeline::install(platform.storage, t, p.size, source, transform);
        self.record_write(i, t.slot, w)
    }

    fn record_write(
        &mut self,
        i: u32,
        slot_param: Option<u64>,
        w: Result<Written, Error>,
    ) -> Result<(), Error> {
        let slot = self
            .written
            .get_mut(i as usize)
            .ok_or(Error::ComponentIndexOutOfRange(i))?;
        *slot = None;
        let w = w?;
        *slot = Some((slot_param, w));
        self.components_written |= 1 << i;
        self.bytes_written += w.len;
        Ok(())
    }
}
