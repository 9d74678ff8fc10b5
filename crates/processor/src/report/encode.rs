//! The SUIT report (draft-ietf-suit-report), encoded on the device into a caller's
//! buffer and signed (COSE_Sign1, ES256) or MACed (COSE_Mac0, HMAC-SHA-256) with a device
//! key, so the server can trust what the device says it did. No allocation: records are
//! kept in a fixed [`ReportLog`], the report is written with minicbor into a slice.
//!
//! ```text
//! SUIT_Report = {                       map, keys in ascending order
//!   ? 2: nonce bstr                      the server's challenge, when given
//!     3: [* SUIT_Record]                 what the reporting policies asked for, in order
//!     4: true                            every sequence succeeded
//!      / {5: code int,                   the failing command's code (0: no command)
//!         6: SUIT_Record,                where it failed
//!         7: reason uint}                suit-codes.md §10
//!   ? 99: [uri tstr, SUIT_Digest]        the manifest's reference URI ("" if none) and digest
//! }
//! SUIT_Record = [manifest-id [* uint],  the dependency indices from the root ([] = the root)
//!                section int, offset uint, component uint,
//!                properties {? 3: bstr .cbor SUIT_Digest, ? 14: size}]
//!   properties: system information, only when the command's reporting policy asks for it
//!   (bits 2/3) and the command measured or wrote the image (image-match,
//!   image-not-match, write, fetch, copy): the SHA-256 and length found / written.
//! ```

use minicbor::Encoder;
use minicbor::encode::write::{Cursor, EndOfSlice};
use suitcase_suit::Digest;

use super::{Outcome, Record, Reporter};
use crate::auth::Authenticated;
use crate::error::{AuthError, DependencyError, Error};

/// SUIT report reason codes (suit-codes.md §10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
#[non_exhaustive]
pub enum Reason {
    /// 0
    Ok = 0,
    /// 1: the envelope or manifest is not well-formed.
    CborParse = 1,
    /// 2: a COSE structure this build cannot process.
    CoseUnsupported = 2,
    /// 3: a digest or signature algorithm this build lacks.
    AlgUnsupported = 3,
    /// 4: authentication failed, or the manifest is not newer (rollback).
    Unauthorised = 4,
    /// 5: a command this build or platform cannot carry out (also "cannot answer").
    CommandUnsupported = 5,
    /// 6: a component index the manifest does not list.
    ComponentUnsupported = 6,
    /// 8: a parameter this build cannot act on.
    ParameterUnsupported = 8,
    /// 9: a severed member the envelope does not carry.
    SeveringUnsupported = 9,
    /// 10: a condition failed (try-each exhausted included).
    ConditionFailed = 10,
    /// 11: a directive or the platform failed.
    OperationFailed = 11,
}

/// The reason code for `e`.
pub fn reason(e: &Error) -> Reason {
    match e {
        Error::Decode(_) => Reason::CborParse,
        Error::Auth(AuthError::Cose(_)) => Reason::CoseUnsupported,
        Error::Auth(AuthError::UnsupportedDigest) | Error::UnsupportedDigest => {
            Reason::AlgUnsupported
        }
        Error::Auth(_) | Error::Rollback { .. } => Reason::Unauthorised,
        Error::UnsupportedCommand(_) | Error::CannotAnswer { .. } => Reason::CommandUnsupported,
        Error::ComponentIndexOutOfRange(_) | Error::NoComponentSelected => {
            Reason::ComponentUnsupported
        }
        Error::UnsupportedParameter(_) | Error::MissingParameter { .. } => {
            Reason::ParameterUnsupported
        }
        Error::Severed(_) => Reason::SeveringUnsupported,
        Error::Dependency { kind, .. } => match kind {
            DependencyError::Decode(_) => Reason::CborParse,
            DependencyError::Auth(AuthError::Cose(_)) => Reason::CoseUnsupported,
            DependencyError::Auth(_) | DependencyError::DigestMismatch => Reason::Unauthorised,
            DependencyError::TooLarge
            | DependencyError::TooDeep
            | DependencyError::TooManyComponents => Reason::OperationFailed,
            _ => Reason::CommandUnsupported,
        },
        Error::ConditionFailed { .. } | Error::TryEachExhausted { .. } => Reason::ConditionFailed,
        _ => Reason::OperationFailed,
    }
}

/// Fills the unused part of a [`ReportLog`] (never read: `len` bounds every access).
const UNUSED: Record = Record {
    manifest: super::ManifestPath::ROOT,
    sequence: super::SequenceKind::Shared,
    offset: 0,
    command: 0,
    component: 0,
    outcome: Outcome::Success,
    sysinfo: false,
    observed: None,
};

/// Records kept for one report: up to `N` policy records (later ones are counted in
/// [`ReportLog::dropped`], never written past the array) and the failing command.
#[derive(Clone, Debug)]
pub struct ReportLog<const N: usize> {
    records: [Record; N],
    len: usize,
    /// Records that did not fit.
    pub dropped: u32,
    failure: Option<(Record, Error)>,
}

impl<const N: usize> Default for ReportLog<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> ReportLog<N> {
    /// An empty log.
    pub const fn new() -> Self {
        ReportLog {
            records: [UNUSED; N],
            len: 0,
            dropped: 0,
            failure: None,
        }
    }
    /// The records, in order.
    pub fn records(&self) -> &[Record] {
        self.records.get(..self.len).unwrap_or(&[])
    }
    /// The failing command and why, if the procedure stopped in one.
    pub fn failure(&self) -> Option<&(Record, Error)> {
        self.failure.as_ref()
    }
}

impl<const N: usize> Reporter for ReportLog<N> {
    fn record(&mut self, record: &Record) {
        match self.records.get_mut(self.len) {
            Some(slot) => {
                *slot = *record;
                self.len += 1;
            }
            None => self.dropped = self.dropped.saturating_add(1),
        }
    }
    fn failed(&mut self, record: &Record, error: &Error) {
        self.failure = Some((*record, *error));
    }
}

/// suit-reference: which manifest the report is about.
#[derive(Clone, Copy, Debug)]
pub struct Reference<'a> {
    /// The manifest's reference URI (manifest key 4), if it has one.
    pub uri: Option<&'a str>,
    /// The manifest digest from the authentication wrapper.
    pub digest: Digest<'a>,
}

impl<'a> Reference<'a> {
    /// The reference of an authenticated manifest.
    pub fn of(auth: &Authenticated<'a>) -> Self {
        Reference {
            uri: auth.manifest().reference_uri,
            digest: auth.envelope().auth.digest,
        }
    }
}

/// Why a report could not be produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReportError {
    /// The output buffer is too small.
    BufferTooSmall,
    /// Signing failed (an invalid key, or the COSE message does not fit).
    Sign(suitcase_cose::CoseError),
}

impl From<minicbor::encode::Error<EndOfSlice>> for ReportError {
    fn from(_: minicbor::encode::Error<EndOfSlice>) -> Self {
        ReportError::BufferTooSmall
    }
}

type Enc<'b> = Encoder<Cursor<&'b mut [u8]>>;

fn record(e: &mut Enc<'_>, r: &Record) -> Result<(), ReportError> {
    e.array(5)?;
    manifest_id(e, r)?;
    e.i64(r.sequence.key())?
        .u64(r.offset as u64)?
        .u32(r.component)?;
    // System information, when the policy asks for it and the command measured the
    // image: its digest (parameter 3, `bstr .cbor SUIT_Digest`) and size (parameter 14).
    match (r.sysinfo, r.observed) {
        (true, Some(w)) => {
            let mut digest = [0u8; 40];
            let n = {
                let mut d = Encoder::new(Cursor::new(&mut digest[..]));
                d.array(2)?.i64(-16)?.bytes(&w.digest)?;
                d.writer().position()
            };
            e.map(2)?
                .u8(3)?
                .bytes(digest.get(..n).unwrap_or(&[]))?
                .u8(14)?
                .u64(w.len)?;
        }
        _ => {
            e.map(0)?;
        }
    }
    Ok(())
}

/// SUIT_Record's manifest-id: the dependency indices from the root (`[]` for the root).
fn manifest_id(e: &mut Enc<'_>, r: &Record) -> Result<(), ReportError> {
    let path = r.manifest.indices();
    e.array(path.len() as u64)?;
    for &i in path {
        e.u8(i)?;
    }
    Ok(())
}

/// Encodes the SUIT_Report for `result` into `out` and returns its length.
///
/// `failure` is the failing command ([`ReportLog::failure`]); when the procedure failed
/// outside any command, the result record points at manifest section 2 (the sequence
/// number) for a rollback, the severed member's key for a missing severed member, and 0
/// otherwise, with offset 0.
///
/// # Errors
/// [`ReportError::BufferTooSmall`] when `out` cannot hold the report.
pub fn encode_report(
    reference: Option<&Reference<'_>>,
    nonce: Option<&[u8]>,
    records: &[Record],
    result: Result<(), (&Error, Option<&Record>)>,
    out: &mut [u8],
) -> Result<usize, ReportError> {
    let mut e = Encoder::new(Cursor::new(out));
    let n = 2 + u64::from(nonce.is_some()) + u64::from(reference.is_some());
    e.map(n)?;
    if let Some(nonce) = nonce {
        e.u8(2)?.bytes(nonce)?;
    }
    e.u8(3)?.array(records.len() as u64)?;
    for r in records {
        record(&mut e, r)?;
    }
    e.u8(4)?;
    match result {
        Ok(()) => {
            e.bool(true)?;
        }
        Err((error, at)) => {
            let fallback = Record {
                manifest: super::ManifestPath::ROOT,
                sequence: super::SequenceKind::Shared,
                offset: 0,
                command: 0,
                component: 0,
                outcome: Outcome::Failure,
                sysinfo: false,
                observed: None,
            };
            let (code, section) = match (at, error) {
                (Some(r), _) => (r.command, r.sequence.key()),
                (None, Error::Rollback { .. }) => (0, 2),
                (None, Error::Severed(k)) => (0, k.key()),
                (None, _) => (0, 0),
            };
            let r = at.copied().unwrap_or(fallback);
            e.map(3)?.u8(5)?.i64(code)?.u8(6)?;
            e.array(5)?;
            manifest_id(&mut e, &r)?;
            e.i64(section)?
                .u64(r.offset as u64)?
                .u32(r.component)?
                .map(0)?;
            e.u8(7)?.u8(reason(error) as u8)?;
        }
    }
    if let Some(r) = reference {
        e.u8(99)?.array(2)?.str(r.uri.unwrap_or(""))?;
        e.array(2)?
            .i64(r.digest.algorithm.cose_id())?
            .bytes(r.digest.bytes)?;
    }
    Ok(e.writer().position())
}

/// A device key for reports (with `p256` or `hmac`).
#[cfg(any(feature = "p256", feature = "hmac"))]
#[derive(Clone, Copy)]
#[non_exhaustive]
pub enum DeviceKey<'k> {
    /// ES256 (COSE_Sign1) with a P-256 key; deterministic RFC 6979 nonces.
    #[cfg(feature = "p256")]
    Es256(&'k suitcase_cose::p256::ecdsa::SigningKey),
    /// HMAC 256/256 (COSE_Mac0) with a shared key.
    #[cfg(feature = "hmac")]
    Hmac256(&'k [u8]),
}

/// Never prints key material.
#[cfg(any(feature = "p256", feature = "hmac"))]
impl core::fmt::Debug for DeviceKey<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("DeviceKey(<secret>)")
    }
}

#[cfg(any(feature = "p256", feature = "hmac"))]
/// Wraps an encoded report in COSE_Sign1 / COSE_Mac0 (payload attached) under `key`,
/// naming `kid` in the unprotected header; returns the length written to `out`.
///
/// # Errors
/// [`ReportError::Sign`] with `CoseError::BufferTooSmall` when `out` is too small,
/// `InvalidKey` for an empty HMAC key.
pub fn sign_report(
    key: DeviceKey<'_>,
    kid: Option<&[u8]>,
    report: &[u8],
    out: &mut [u8],
) -> Result<usize, ReportError> {
    let r = match key {
        #[cfg(feature = "p256")]
        DeviceKey::Es256(k) => suitcase_cose::sign::sign1_es256(k, kid, report, out),
        #[cfg(feature = "hmac")]
        DeviceKey::Hmac256(k) => suitcase_cose::sign::mac0_hmac256(k, kid, report, out),
    };
    r.map_err(ReportError::Sign)
}

impl<const N: usize> ReportLog<N> {
    /// Encodes this log's report for `result` (see [`encode_report`]).
    ///
    /// # Errors
    /// As [`encode_report`].
    pub fn encode(
        &self,
        reference: Option<&Reference<'_>>,
        nonce: Option<&[u8]>,
        result: Result<(), &Error>,
        out: &mut [u8],
    ) -> Result<usize, ReportError> {
        let result = result.map_err(|e| {
            // The failing command only when it is this error's (an error after the
            // machine, such as the rollback store, has none).
            let at = self
                .failure
                .as_ref()
                .filter(|(_, fe)| fe == e)
                .map(|(r, _)| r);
            (e, at)
        });
        encode_report(reference, nonce, self.records(), result, out)
    }
}
