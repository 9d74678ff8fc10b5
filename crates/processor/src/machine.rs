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

use suitcase_suit::ComponentId;

use crate::MAX_DEPENDENCY_DEPTH;
#[cfg(feature = "trust-domains")]
use crate::auth;
use crate::auth::Authenticated;
use crate::error::{DependencyError, Error};
use crate::params::Params;
use crate::pipeline::{self, Source, Written};
#[cfg(feature = "trust-domains")]
use crate::platform::Role;
use crate::platform::{KeyStore, Platform, Procedure, Target};
use crate::report::{ManifestPath, Outcome, Record, SequenceKind, wanted};

const MAX: usize = suitcase_suit::MAX_COMPONENTS;
/// `Machine::slots` entry of an index that has no identifier (a dependency without prefix).
const NO_SLOT: u8 = u8::MAX;

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

/// What image-match reads of a component's parameters: copying the whole set instead is
/// a `memcpy` on a Cortex-M4.
#[derive(Clone, Copy)]
struct ImageParams<'m> {
    digest: Option<suitcase_suit::Digest<'m>>,
    size: Option<u64>,
    slot: Option<u64>,
}

impl<'m> ImageParams<'m> {
    fn of(p: &Params<'m>) -> Self {
        ImageParams {
            digest: p.digest,
            size: p.size,
            slot: p.slot,
        }
    }
}

/// Summary of a completed update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpdateSummary {
    /// The manifest's sequence number, now the installed one.
    pub sequence_number: u64,
    /// Bit set of the root manifest's components written (write, fetch, copy, swap).
    pub components_written: u32,
    /// Bytes streamed into storage, dependencies' writes included.
    pub bytes_written: u64,
    /// Components written by dependency manifests (trust domains), counted per write.
    pub dependency_writes: u32,
}

/// Runs `procedure` on the authenticated root manifest.
pub(crate) fn run(
    auth: &Authenticated<'_>,
    platform: &mut Platform<'_>,
    procedure: Procedure,
) -> Result<UpdateSummary, Error> {
    // The dependency buffer is lent by the platform; the procedure borrows it through a
    // local, so parameters may point into it, and it is handed back whole afterwards.
    let mut support = platform.dependencies.take();
    let result = {
        let (keys, buffer): (Option<&dyn KeyStore>, &mut [u8]) = match support.as_mut() {
            Some(s) => (Some(s.keys), &mut *s.buffer),
            None => (None, &mut []),
        };
        let mut table = [None; MAX];
        let mut ctx = Context::new(keys, buffer, &mut table);
        ctx.chain[0] = auth.manifest_digest();
        let mut written = [None; MAX];
        let mut m = Machine::new(
            auth,
            platform,
            &mut ctx,
            procedure,
            0,
            ManifestPath::ROOT,
            &mut written,
        );
        m.bind().and_then(|()| m.run_procedure())
    };
    platform.dependencies = support;
    result
}

/// What the root manifest and its dependencies share during one procedure.
struct Context<'m> {
    /// The parameter table. The root's indices map to the first entries one to one;
    /// a dependency's components are found by identifier (the draft: changes a
    /// dependency makes "persist in the dependent", and set-parameters exists so a
    /// dependent can steer its dependency), new identifiers take the next free entry.
    /// Entries from `used` on are `None`, so an empty table is eight tags, and an entry
    /// gets its (empty) set when it is taken. Borrowed from a local of [`run`]: as a
    /// field the table (~1.6 KB) was built and then moved into place, a `memcpy` of
    /// ~2 k instructions per procedure on a Cortex-M4.
    params: &'m mut [Option<Entry<'m>>; MAX],
    used: usize,
    /// Who may sign dependencies; `None`: the platform lends no dependency support.
    #[cfg_attr(not(feature = "trust-domains"), allow(dead_code))]
    keys: Option<&'m dyn KeyStore>,
    /// What is left of the platform's dependency buffer. Regions handed out are never
    /// reused within the procedure, so verified bytes stay as they were checked.
    #[cfg_attr(not(feature = "trust-domains"), allow(dead_code))]
    buffer: &'m mut [u8],
    /// Manifest digests of the chain being run (root first): a cycle shows up here.
    #[cfg_attr(not(feature = "trust-domains"), allow(dead_code))]
    chain: [&'m [u8]; MAX_DEPENDENCY_DEPTH + 1],
    bytes_written: u64,
    dependency_writes: u32,
    /// The innermost command whose failure is travelling up (cleared when a sequence
    /// absorbs it softly): handed to `Reporter::failed` when the procedure stops.
    failure: Option<Record>,
}

/// One entry of the parameter table: the component it is for (`None`: a dependency
/// index without prefix) and its parameters.
type Entry<'m> = (Option<ComponentId<'m>>, Params<'m>);

impl<'m> Context<'m> {
    fn new(
        keys: Option<&'m dyn KeyStore>,
        buffer: &'m mut [u8],
        params: &'m mut [Option<Entry<'m>>; MAX],
    ) -> Self {
        Context {
            params,
            used: 0,
            keys,
            buffer,
            chain: [&[]; MAX_DEPENDENCY_DEPTH + 1],
            bytes_written: 0,
            dependency_writes: 0,
            failure: None,
        }
    }

    /// The table entry of component `id`, allocated if new.
    fn slot_for(&mut self, id: ComponentId<'m>) -> Option<usize> {
        let used = self.params.get(..self.used)?;
        if let Some(j) = used
            .iter()
            .position(|e| e.as_ref().is_some_and(|(k, _)| *k == Some(id)))
        {
            return Some(j);
        }
        let free = self.params.get_mut(self.used)?;
        *free = Some((Some(id), Params::default()));
        self.used += 1;
        Some(self.used - 1)
    }
}

/// The interpreter for one manifest (the root, or a dependency being processed).
pub(crate) struct Machine<'m, 'e, 'p> {
    auth: &'e Authenticated<'m>,
    platform: &'e mut Platform<'p>,
    ctx: &'e mut Context<'m>,
    procedure: Procedure,
    /// 0 for the root.
    depth: usize,
    /// Where this manifest sits in the dependency tree (records carry it).
    path: ManifestPath,
    /// The size of the index space (components and dependencies).
    ncomp: usize,
    /// The component identifiers, decoded once (commands look them up constantly).
    ids: [Option<ComponentId<'m>>; MAX],
    /// Each index's entry in the shared parameter table.
    slots: [u8; MAX],
    /// Digest and length of what this run wrote into each component, and the slot it
    /// went to: image-match after a fetch uses it, so the payload is hashed once, as it
    /// streams in. Keyed by slot because try-each branches move the slot parameter back
    /// and forth while choosing. Borrowed from the caller's local, as the parameter
    /// table is: as a field it was built and then moved into place (a `memcpy`).
    written: &'e mut [Option<(Option<u64>, Written)>; MAX],
    /// The bytes written into a component when they came untransformed from the
    /// envelope (write, integrated fetch): a dependency installed that way is checked
    /// in place, with no copy.
    #[cfg_attr(not(feature = "trust-domains"), allow(dead_code))]
    plain: [Option<&'m [u8]>; MAX],
    /// Dependencies that passed dependency-integrity since they were last written: the
    /// very bytes that were verified, and their signers.
    #[cfg_attr(not(feature = "trust-domains"), allow(dead_code))]
    verified: [Option<(&'m [u8], u32)>; MAX],
    components_written: u32,
    /// The component the current command is acting on (for the failure record).
    at: u32,
    /// What the current command measured or wrote (its record's system information).
    observed: Option<Written>,
}

impl<'m, 'e, 'p> Machine<'m, 'e, 'p> {
    /// A frame for `auth`'s manifest; [`Machine::bind`] then gives each index its entry
    /// of the shared parameter table. Two steps, so the (large) frame is built where it
    /// stays instead of being moved out of a `Result`.
    fn new(
        auth: &'e Authenticated<'m>,
        platform: &'e mut Platform<'p>,
        ctx: &'e mut Context<'m>,
        procedure: Procedure,
        depth: usize,
        path: ManifestPath,
        written: &'e mut [Option<(Option<u64>, Written)>; MAX],
    ) -> Self {
        Machine {
            auth,
            platform,
            ctx,
            procedure,
            depth,
            path,
            ncomp: auth.manifest().index_count(),
            ids: [None; MAX],
            slots: [NO_SLOT; MAX],
            written,
            plain: [None; MAX],
            verified: [None; MAX],
            components_written: 0,
            at: 0,
            observed: None,
        }
    }

    /// Decodes the component identifiers and finds each index's parameter entry.
    fn bind(&mut self) -> Result<(), Error> {
        let m = self.auth.manifest();
        let (ncomp, depth) = (self.ncomp, self.depth);
        let ctx = &mut *self.ctx;
        for (i, (id, slot)) in self
            .ids
            .iter_mut()
            .zip(self.slots.iter_mut())
            .enumerate()
            .take(ncomp)
        {
            *id = m.component_id(i as u32);
            if depth == 0 {
                // The root owns the first entries, index for index.
                if let Some(entry) = ctx.params.get_mut(i) {
                    *entry = Some((*id, Params::default()));
                }
                ctx.used = ncomp;
                *slot = i as u8;
            } else if let Some(id) = *id {
                *slot = ctx.slot_for(id).ok_or(Error::Dependency {
                    component: i as u32,
                    kind: DependencyError::TooManyComponents,
                })? as u8;
            }
        }
        Ok(())
    }

    /// Runs the procedure's sequences in the spec's order, each after the shared sequence.
    fn run_procedure(&mut self) -> Result<UpdateSummary, Error> {
        let plan: &[SequenceKind] = match self.procedure {
            Procedure::Update => &[
                SequenceKind::DependencyResolution,
                SequenceKind::PayloadFetch,
                SequenceKind::CandidateVerification,
                SequenceKind::Install,
                SequenceKind::Validate,
            ],
            Procedure::Invoke => &[
                SequenceKind::Validate,
                SequenceKind::Load,
                SequenceKind::Invoke,
            ],
        };
        for &kind in plan {
            let r = match section(self.auth, kind) {
                Ok(Some(seq)) => self.run_top(kind, seq),
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                if let Some(r) = self.ctx.failure {
                    self.platform.reporter.failed(&r, &e);
                }
                return Err(e);
            }
        }
        Ok(UpdateSummary {
            sequence_number: self.auth.manifest().sequence_number,
            components_written: self.components_written,
            bytes_written: self.ctx.bytes_written,
            dependency_writes: self.ctx.dependency_writes,
        })
    }

    fn default_selection(&self) -> Selection<'m> {
        if self.ncomp == 1 {
            Selection::One(0)
        } else {
            Selection::Nothing
        }
    }

    /// The shared sequence, then `seq`, each with a fresh selection (every sequence of a
    /// multi-component manifest must start with set-component-index, §6.2).
    fn run_top(&mut self, kind: SequenceKind, seq: CommandSequence<'m>) -> Result<(), Error> {
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
        seq: CommandSequence<'m>,
        sel: &mut Selection<'m>,
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

    /// The selected indices; `None` when nothing is selected (the callers' error:
    /// [`Error::NoComponentSelected`]). An `Option`, not a `Result`: the error is large
    /// enough that returning `Result<Indices, Error>` costs a `memcpy` per command on
    /// a Cortex-M4.
    #[inline]
    fn indices(&self, sel: &Selection<'m>) -> Option<Indices<'m>> {
        Some(match sel {
            Selection::Nothing => return None,
            Selection::One(i) => Indices::Range(*i..*i + 1),
            Selection::All => Indices::Range(0..self.ncomp as u32),
            Selection::List(l) => Indices::List(l.iter()),
        })
    }

    fn target(&self, index: u32) -> Result<Target<'m>, Error> {
        let i = index as usize;
        self.check_index(index)?;
        let id = self
            .ids
            .get(i)
            .copied()
            .flatten()
            // In range but unnamed: a dependency without a prefix.
            .ok_or(Error::Dependency {
                component: index,
                kind: DependencyError::NoPrefix,
            })?;
        let slot = self.params(index)?.slot;
        Ok(Target { index: i, id, slot })
    }

    fn params(&self, index: u32) -> Result<&Params<'m>, Error> {
        let slot = self.slot(index)?;
        self.ctx
            .params
            .get(slot)
            .and_then(Option::as_ref)
            .map(|(_, p)| p)
            .ok_or(Error::ComponentIndexOutOfRange(index))
    }

    fn params_mut(&mut self, index: u32) -> Result<&mut Params<'m>, Error> {
        let slot = self.slot(index)?;
        self.ctx
            .params
            .get_mut(slot)
            .and_then(Option::as_mut)
            .map(|(_, p)| p)
            .ok_or(Error::ComponentIndexOutOfRange(index))
    }

    fn slot(&self, index: u32) -> Result<usize, Error> {
        self.check_index(index)?;
        match self.slots.get(index as usize) {
            Some(&s) if s != NO_SLOT => Ok(usize::from(s)),
            Some(_) => Err(Error::Dependency {
                component: index,
                kind: DependencyError::NoPrefix,
            }),
            None => Err(Error::ComponentIndexOutOfRange(index)),
        }
    }

    #[cfg(feature = "trust-domains")]
    fn is_dependency(&self, index: u32) -> bool {
        self.auth
            .manifest()
            .common
            .dependencies
            .is_some_and(|d| d.contains(index))
    }

    fn report(
        &mut self,
        kind: SequenceKind,
        offset: usize,
        cmd: &Command<'m>,
        component: u32,
        policy: ReportingPolicy,
        outcome: Outcome,
    ) {
        if let Some(sysinfo) = wanted(policy, outcome) {
            self.platform.reporter.record(&Record {
                manifest: self.path,
                sequence: kind,
                offset,
                command: cmd.code(),
                component,
                outcome,
                sysinfo,
                observed: self.observed,
            });
        }
    }

    /// Runs one sequence. Recursion depth is bounded by the decoder's
    /// [`suitcase_suit::command::MAX_SEQUENCE_DEPTH`], checked again here.
    fn run(
        &mut self,
        kind: SequenceKind,
        seq: CommandSequence<'m>,
        sel: &mut Selection<'m>,
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
            let result = self.command(kind, offset, cmd, sel, scope, &mut soft, depth);
            // The code only matters for a failure record: not worked out per command.
            let code = || cmd.code();
            match result {
                Ok(()) => {}
                // Rows 2 and 3: a condition failure here, or one handed up from a nested
                // sequence, is decided by this sequence's soft-failure.
                Err(Stop::Condition(f)) => {
                    if soft {
                        self.ctx.failure = None;
                        return Err(Stop::Soft);
                    }
                    self.note_failure(kind, offset, code());
                    return Err(Stop::Condition(f));
                }
                Err(Stop::Abort(e)) => {
                    self.note_failure(kind, offset, code());
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
        if self.ctx.failure.is_none() {
            self.ctx.failure = Some(Record {
                manifest: self.path,
                sequence: kind,
                offset,
                command,
                component: self.at,
                outcome: Outcome::Failure,
                sysinfo: false,
                observed: None,
            });
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn command(
        &mut self,
        kind: SequenceKind,
        offset: usize,
        cmd: Command<'m>,
        sel: &mut Selection<'m>,
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
                let Some(indices) = self.indices(sel) else {
                    return Err(Error::NoComponentSelected.into());
                };
                for i in indices {
                    self.at = i;
                    self.observed = None;
                    // An abort while evaluating (the platform cannot answer, storage
                    // failed) is a failure of this condition too, recorded as such.
                    let r = self.condition(c, i);
                    let outcome = if matches!(r, Ok(true)) {
                        Outcome::Success
                    } else {
                        Outcome::Failure
                    };
                    self.report(kind, offset, &cmd, i, policy, outcome);
                    if !r? {
                        return Err(Stop::Condition(Failed::Condition(c, i)));
                    }
                }
                Ok(())
            }
            #[cfg(feature = "trust-domains")]
            Command::Directive(Directive::ProcessDependency, policy) => {
                let Some(indices) = self.indices(sel) else {
                    return Err(Error::NoComponentSelected.into());
                };
                for i in indices {
                    self.at = i;
                    let r = self.process_dependency(kind, i);
                    let outcome = if r.is_ok() {
                        Outcome::Success
                    } else {
                        Outcome::Failure
                    };
                    self.at = i;
                    self.report(kind, offset, &cmd, i, policy, outcome);
                    r?;
                }
                Ok(())
            }
            Command::Directive(d, policy) => {
                let Some(indices) = self.indices(sel) else {
                    return Err(Error::NoComponentSelected.into());
                };
                for i in indices {
                    self.at = i;
                    self.observed = None;
                    let r = self.directive(d, i);
                    let outcome = if r.is_ok() {
                        Outcome::Success
                    } else {
                        Outcome::Failure
                    };
                    self.report(kind, offset, &cmd, i, policy, outcome);
                    r?;
                }
                Ok(())
            }
            Command::TryEach(t) => {
                let Some(indices) = self.indices(sel) else {
                    return Err(Error::NoComponentSelected.into());
                };
                for i in indices {
                    self.at = i;
                    self.try_each(kind, t, i, depth)?;
                }
                Ok(())
            }
            Command::RunSequence(body) => {
                let Some(indices) = self.indices(sel) else {
                    return Err(Error::NoComponentSelected.into());
                };
                for i in indices {
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
                    let Some(indices) = self.indices(sel) else {
                        return Err(Error::NoComponentSelected.into());
                    };
                    for i in indices {
                        let to = self.params_mut(i)?;
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
        p: Parameters<'m>,
        sel: &Selection<'m>,
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
                    let Some(indices) = self.indices(sel) else {
                        return Err(Error::NoComponentSelected.into());
                    };
                    for i in indices {
                        self.params_mut(i)?.apply(other, only_if_unset);
                    }
                }
            }
        }
        Ok(())
    }

    fn try_each(
        &mut self,
        kind: SequenceKind,
        t: TryEach<'m>,
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
        // Borrowed, not copied: the identity checks are most of the conditions run, and
        // a copy of the whole parameter set is a `memcpy` each on a Cortex-M4. The arms
        // that need `&mut self` copy it first.
        let p = self.params(i)?;
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
            Condition::ImageMatch => {
                let m = ImageParams::of(p);
                self.image_matches(i, &t, m)?.unwrap_or(false)
            }
            Condition::ImageNotMatch => {
                let m = ImageParams::of(p);
                matches!(self.image_matches(i, &t, m)?, Some(false))
            }
            Condition::CheckContent => match p.content {
                Some(c) => pipeline::content_equals(self.platform.storage, &t, c)?,
                None => false,
            },
            Condition::Abort => false,
            #[cfg(feature = "trust-domains")]
            Condition::IsDependency => self.is_dependency(i),
            // Any failure of dependency-integrity aborts (`Err`): the draft leaves it no
            // soft outcome.
            #[cfg(feature = "trust-domains")]
            Condition::DependencyIntegrity => {
                let p = *p;
                self.dependency_integrity(i, &t, &p)?;
                true
            }
            Condition::UseBefore => match (p.use_before, self.platform.clock.now()) {
                (Some(limit), Some(now)) => now <= limit,
                _ => false,
            },
            #[cfg(feature = "update-management")]
            Condition::MinimumBattery | Condition::UpdateAuthorized | Condition::Version => {
                let p = *p;
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
        t: &Target<'m>,
        p: ImageParams<'m>,
    ) -> Result<Option<bool>, Error> {
        let Some(d) = p.digest else { return Ok(None) };
        if d.algorithm != suitcase_suit::DigestAlgorithm::Sha256 {
            return Err(Error::UnsupportedDigest);
        }
        #[cfg(feature = "trust-domains")]
        if self.is_dependency(i) {
            return self.dependency_matches(i, t, p.size, d.bytes).map(Some);
        }
        if let Some(Some((slot, w))) = self.written.get(i as usize)
            && *slot == p.slot
            && p.size.is_none_or(|s| s == w.len)
        {
            let matched = crate::bytes::same(&w.digest, d.bytes);
            self.observed = Some(*w);
            return Ok(Some(matched));
        }
        let len = match p.size {
            Some(s) => s,
            None => self.platform.storage.len(t)?,
        };
        let h = pipeline::digest_component(self.platform.storage, t, len)?;
        self.observed = h.map(|digest| Written { digest, len });
        Ok(Some(h.is_some_and(|h| crate::bytes::same(&h, d.bytes))))
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
                // Both contents moved: forget what was written (image-match reads back)
                // and what was verified.
                for k in [i, src] {
                    self.forget(k);
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
        t: &Target<'m>,
        p: &Params<'m>,
        from: Input<'m, '_>,
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
        let from_bytes = match from {
            Input::Bytes(b) => Some(b),
            _ => None,
        };
        let platform = &mut *self.platform;
        let source = match from {
            Input::Bytes(b) => Source::Bytes(b),
            Input::Component(src, len) => Source::Component(src, len),
            Input::Fetch(uri) => {
                platform.fetch.open(uri, p.fetch_args)?;
                Source::Fetch(&mut *platform.fetch)
            }
        };
        // Bytes that reach storage unchanged from the envelope can be used in place.
        let plain = match (&from_bytes, &transform) {
            (Some(b), None) => Some(*b),
            _ => None,
        };
        let w = pipeline::install(platform.storage, t, p.size, source, transform);
        self.record_write(i, t.slot, w)?;
        if let Some(slot) = self.plain.get_mut(i as usize) {
            *slot = plain;
        }
        Ok(())
    }

    /// Forgets what this run knows of component `i`'s contents.
    fn forget(&mut self, i: u32) {
        let i = i as usize;
        if let Some(w) = self.written.get_mut(i) {
            *w = None;
        }
        if let Some(p) = self.plain.get_mut(i) {
            *p = None;
        }
        // The draft's cache rule: a fetch or copy into the component drops the result
        // of dependency-integrity.
        if let Some(v) = self.verified.get_mut(i) {
            *v = None;
        }
    }

    fn record_write(
        &mut self,
        i: u32,
        slot_param: Option<u64>,
        w: Result<Written, Error>,
    ) -> Result<(), Error> {
        self.forget(i);
        let w = w?;
        let slot = self
            .written
            .get_mut(i as usize)
            .ok_or(Error::ComponentIndexOutOfRange(i))?;
        *slot = Some((slot_param, w));
        self.observed = Some(w);
        self.components_written |= 1 << i;
        self.ctx.bytes_written += w.len;
        if self.depth > 0 {
            self.ctx.dependency_writes += 1;
        }
        Ok(())
    }

    /// The dependency envelope in component `i`: in place when it came untransformed
    /// from the envelope, else read from storage into `buf` (`len` bytes: image-size,
    /// else the component's length).
    #[cfg(feature = "trust-domains")]
    fn dependency_bytes<'b>(
        &mut self,
        i: u32,
        t: &Target<'m>,
        size: Option<u64>,
        buf: &'b mut [u8],
    ) -> Result<&'b [u8], Error>
    where
        'm: 'b,
    {
        if let Some(Some(b)) = self.plain.get(i as usize) {
            return Ok(b);
        }
        let len = match size {
            Some(s) => s,
            None => self.platform.storage.len(t)?,
        };
        let dst = usize::try_from(len)
            .ok()
            .and_then(|n| buf.get_mut(..n))
            .ok_or(Error::Dependency {
                component: i,
                kind: DependencyError::TooLarge,
            })?;
        self.platform.storage.read(t, 0, dst)?;
        Ok(dst)
    }

    /// image-match on a dependency component: the digest names the dependency's
    /// *manifest* (the bstr-wrapped SUIT_Manifest), not the bytes of the envelope. An
    /// envelope that does not decode does not match. The bytes are read into the free
    /// part of the buffer and not kept: dependency-integrity reads them again.
    #[cfg(feature = "trust-domains")]
    fn dependency_matches(
        &mut self,
        i: u32,
        t: &Target<'m>,
        size: Option<u64>,
        want: &[u8],
    ) -> Result<bool, Error> {
        use sha2::Digest as _;
        if self.ctx.keys.is_none() {
            return Err(Error::Dependency {
                component: i,
                kind: DependencyError::Unsupported,
            });
        }
        let scratch = core::mem::take(&mut self.ctx.buffer);
        let r = self
            .dependency_bytes(i, t, size, &mut *scratch)
            .map(|bytes| {
                suitcase_suit::Envelope::decode(bytes)
                    .is_ok_and(|env| sha2::Sha256::digest(env.manifest_bytes).as_slice() == want)
            });
        self.ctx.buffer = scratch;
        r
    }

    /// dependency-integrity (7): authenticate the dependency envelope in component `i`
    /// under the key store's dependency policy, and check that its manifest digest is the
    /// image-digest parameter. The verified bytes are kept for process-dependency.
    #[cfg(feature = "trust-domains")]
    fn dependency_integrity(
        &mut self,
        i: u32,
        t: &Target<'m>,
        p: &Params<'m>,
    ) -> Result<(), Error> {
        let dep = |kind| Error::Dependency { component: i, kind };
        if !self.is_dependency(i) {
            return Err(dep(DependencyError::NotADependency));
        }
        let keys = self.ctx.keys.ok_or(dep(DependencyError::Unsupported))?;
        let want = p.digest.ok_or(Error::MissingParameter {
            parameter: 3,
            component: i,
        })?;
        if want.algorithm != suitcase_suit::DigestAlgorithm::Sha256 {
            return Err(Error::UnsupportedDigest);
        }
        let bytes: &'m [u8] = match self.plain.get(i as usize).copied().flatten() {
            Some(b) => b,
            None => {
                // Take the envelope's length from the front of the buffer for the rest
                // of the procedure: these bytes are the ones process-dependency runs.
                let len = match p.size {
                    Some(s) => s,
                    None => self.platform.storage.len(t)?,
                };
                let rest = core::mem::take(&mut self.ctx.buffer);
                let n = usize::try_from(len).unwrap_or(usize::MAX);
                if n > rest.len() {
                    self.ctx.buffer = rest;
                    return Err(dep(DependencyError::TooLarge));
                }
                let (head, tail) = rest.split_at_mut(n);
                self.ctx.buffer = tail;
                self.platform.storage.read(t, 0, head)?;
                head
            }
        };
        let role = Role::Dependency {
            id: t.id,
            depth: (self.depth + 1) as u8,
        };
        let a = auth::authenticate_as(bytes, keys, role).map_err(|e| match e {
            Error::Auth(a) => dep(DependencyError::Auth(a)),
            Error::Decode(d) => dep(DependencyError::Decode(d)),
            other => other,
        })?;
        if a.envelope().auth.digest.algorithm != suitcase_suit::DigestAlgorithm::Sha256
            || a.manifest_digest() != want.bytes
        {
            return Err(dep(DependencyError::DigestMismatch));
        }
        if a.manifest().component_id.is_some_and(|id| id != t.id) {
            return Err(dep(DependencyError::IdMismatch));
        }
        if let Some(v) = self.verified.get_mut(i as usize) {
            *v = Some((bytes, a.signers()));
        }
        Ok(())
    }

    /// process-dependency (11): run the verified dependency's shared sequence and its
    /// section `kind`, in a frame of its own over the shared parameter table. Its
    /// condition failures are this command's (soft-able here); its aborts abort.
    #[cfg(feature = "trust-domains")]
    fn process_dependency(&mut self, kind: SequenceKind, i: u32) -> Result<(), Stop> {
        let dep = |kind| Stop::Abort(Error::Dependency { component: i, kind });
        if kind == SequenceKind::Shared {
            return Err(dep(DependencyError::InCommonSequence));
        }
        if !self.is_dependency(i) {
            return Err(dep(DependencyError::NotADependency));
        }
        let Some((bytes, signers)) = self.verified.get(i as usize).copied().flatten() else {
            return Err(dep(DependencyError::NotVerified));
        };
        let depth = self.depth + 1;
        if depth > MAX_DEPENDENCY_DEPTH {
            return Err(dep(DependencyError::TooDeep));
        }
        let child = auth::reopen(bytes, signers)?;
        let digest = child.manifest_digest();
        if self.ctx.chain.iter().take(depth).any(|d| *d == digest) {
            return Err(dep(DependencyError::Cycle));
        }
        let path = self.path.child(i).ok_or(Error::Dependency {
            component: i,
            kind: DependencyError::TooDeep,
        })?;
        let Some(seq) = section(&child, kind)? else {
            return Ok(());
        };
        if let Some(d) = self.ctx.chain.get_mut(depth) {
            *d = digest;
        }
        let mut written = [None; MAX];
        let mut frame = Machine::new(
            &child,
            &mut *self.platform,
            &mut *self.ctx,
            self.procedure,
            depth,
            path,
            &mut written,
        );
        frame.bind()?;
        match frame.run_top(kind, seq) {
            Ok(()) => Ok(()),
            Err(Error::ConditionFailed {
                condition,
                component,
                ..
            }) => Err(Stop::Condition(Failed::Condition(condition, component))),
            Err(Error::TryEachExhausted { .. }) => Err(Stop::Condition(Failed::TryEach)),
            Err(e) => Err(Stop::Abort(e)),
        }
    }
}

/// The manifest's sequence for `kind`: `None` when absent; severed and not carried is
/// an error.
fn section<'m>(
    auth: &Authenticated<'m>,
    kind: SequenceKind,
) -> Result<Option<CommandSequence<'m>>, Error> {
    let m = auth.manifest();
    let severable = match kind {
        SequenceKind::DependencyResolution => SeverableKind::DependencyResolution,
        SequenceKind::PayloadFetch => SeverableKind::PayloadFetch,
        SequenceKind::CandidateVerification => SeverableKind::CandidateVerification,
        SequenceKind::Install => SeverableKind::Install,
        SequenceKind::Validate => return Ok(m.validate),
        SequenceKind::Load => return Ok(m.load),
        SequenceKind::Invoke => return Ok(m.invoke),
        SequenceKind::Shared => return Ok(m.common.shared_sequence),
    };
    match auth.envelope().sequence(m, severable)? {
        SequenceSource::Absent => Ok(None),
        SequenceSource::Available(q) => Ok(Some(q)),
        SequenceSource::Severed => Err(Error::Severed(severable)),
    }
}
