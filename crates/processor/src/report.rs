//! Records of what each command did, emitted as its reporting policy asks. The SUIT
//! report encoder (signed, for the fleet server) consumes these; the processor only
//! decides what is recorded.

use suitcase_suit::ReportingPolicy;

#[cfg(feature = "report")]
mod encode;
#[cfg(all(feature = "report", any(feature = "p256", feature = "hmac")))]
pub use encode::{DeviceKey, sign_report};
#[cfg(feature = "report")]
pub use encode::{Reason, Reference, ReportError, ReportLog, encode_report, reason};

/// Which command sequence a record comes from (manifest keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SequenceKind {
    /// common.shared-sequence (common key 4).
    Shared,
    /// 15
    DependencyResolution,
    /// 16
    PayloadFetch,
    /// 18
    CandidateVerification,
    /// 20
    Install,
    /// 7
    Validate,
    /// 8
    Load,
    /// 9
    Invoke,
}

impl SequenceKind {
    /// The spec's name of the sequence.
    pub fn name(self) -> &'static str {
        match self {
            SequenceKind::Shared => "shared-sequence",
            SequenceKind::DependencyResolution => "dependency-resolution",
            SequenceKind::PayloadFetch => "payload-fetch",
            SequenceKind::CandidateVerification => "candidate-verification",
            SequenceKind::Install => "install",
            SequenceKind::Validate => "validate",
            SequenceKind::Load => "load",
            SequenceKind::Invoke => "invoke",
        }
    }

    /// The manifest key of the sequence (4 for the shared sequence, its SUIT_Common key).
    pub fn key(self) -> i64 {
        match self {
            SequenceKind::Shared => 4,
            SequenceKind::DependencyResolution => 15,
            SequenceKind::PayloadFetch => 16,
            SequenceKind::CandidateVerification => 18,
            SequenceKind::Install => 20,
            SequenceKind::Validate => 7,
            SequenceKind::Load => 8,
            SequenceKind::Invoke => 9,
        }
    }
}

/// Outcome of one command on one component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It succeeded.
    Success,
    /// It failed (a condition that did not hold, or a directive that failed).
    Failure,
}

/// Where a manifest sits among dependencies: the component indices that lead to it
/// from the root (empty for the root). A SUIT_Record's manifest-id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ManifestPath {
    len: u8,
    indices: [u8; crate::MAX_DEPENDENCY_DEPTH],
}

impl ManifestPath {
    /// The root manifest.
    pub const ROOT: ManifestPath = ManifestPath {
        len: 0,
        indices: [0; crate::MAX_DEPENDENCY_DEPTH],
    };

    /// The indices from the root.
    pub fn indices(&self) -> &[u8] {
        self.indices.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// The path of the dependency at component `index` of this manifest; `None` past
    /// [`crate::MAX_DEPENDENCY_DEPTH`].
    #[cfg(feature = "trust-domains")]
    pub(crate) fn child(&self, index: u32) -> Option<ManifestPath> {
        let mut next = *self;
        *next.indices.get_mut(usize::from(self.len))? = u8::try_from(index).ok()?;
        next.len += 1;
        Some(next)
    }
}

/// One record: which command, where, on which component, with what result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// Which manifest: the root, or a dependency.
    pub manifest: ManifestPath,
    /// The sequence.
    pub sequence: SequenceKind,
    /// Byte offset of the command within its (innermost) sequence.
    pub offset: usize,
    /// Command code.
    pub command: i64,
    /// Component index.
    pub component: u32,
    /// Result.
    pub outcome: Outcome,
    /// Whether the policy asks for system information alongside.
    pub sysinfo: bool,
    /// What the command found or made, for the system information: the SHA-256 and
    /// length of the component's image as image-match / image-not-match measured it, or
    /// as write / fetch / copy wrote it. `None` for other commands.
    pub observed: Option<crate::pipeline::Written>,
}

/// Receives records. Called only when the command's reporting policy asks for one.
pub trait Reporter {
    /// One record.
    fn record(&mut self, record: &Record);
    /// The procedure stopped: `record` names the innermost command that failed (whatever
    /// its reporting policy), `error` why. Called once, before the error is returned;
    /// not called for failures outside any command (decode, authentication, rollback).
    fn failed(&mut self, record: &Record, error: &crate::Error) {
        let _ = (record, error);
    }
}

/// Discards every record.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoReport;

impl Reporter for NoReport {
    fn record(&mut self, _record: &Record) {}
}

/// Whether `policy` asks for a record of `outcome`, and with sysinfo.
pub(crate) fn wanted(policy: ReportingPolicy, outcome: Outcome) -> Option<bool> {
    match outcome {
        Outcome::Success if policy.record_on_success() || policy.sysinfo_on_success() => {
            Some(policy.sysinfo_on_success())
        }
        Outcome::Failure if policy.record_on_failure() || policy.sysinfo_on_failure() => {
            Some(policy.sysinfo_on_failure())
        }
        _ => None,
    }
}
