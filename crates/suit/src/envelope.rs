//! SUIT_Envelope (tag 107) and the authentication wrapper (`suit-codes.md` §0, §1).

use crate::cbor::{KeySet, Reader, Result, Wrapped};
use crate::digest::Digest;
use crate::error::{DecodeError, DecodeErrorKind as K, Element};
use crate::manifest::{Manifest, Member, SeverableKind};
use crate::{MAX_AUTH_BLOCKS, command::CommandSequence};

/// CBOR tag of SUIT_Envelope.
pub const TAG_ENVELOPE: u64 = 107;

/// The authentication wrapper: `[bstr .cbor SUIT_Digest, * bstr .cbor COSE]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthWrapper<'a> {
    /// The manifest digest.
    pub digest: Digest<'a>,
    /// The bytes inside the digest's bstr: the detached payload every COSE block signs.
    pub signed_payload: &'a [u8],
    blocks: &'a [u8],
    block_count: usize,
}

impl<'a> AuthWrapper<'a> {
    fn read(w: Wrapped<'a>) -> Result<Self> {
        let mut r = w.reader();
        let at = r.offset();
        let n = r.array()?;
        if n == 0 {
            return Err(DecodeError::new(K::Missing(Element::AuthDigest), at));
        }
        if n - 1 > MAX_AUTH_BLOCKS {
            return Err(DecodeError::new(K::TooManyEntries, at));
        }
        let dw = r.bytes_with_header()?;
        let mut dr = dw.reader();
        let digest = Digest::read(&mut dr, 1)?;
        dr.finish()?;
        let start = r.pos();
        for _ in 1..n {
            // COSE structures are parsed (strictly) by the COSE layer; here each must be
            // one bounded CBOR item inside its bstr.
            let b = r.bytes_with_header()?;
            let mut br = b.reader();
            br.skip(0)?;
            br.finish()?;
        }
        r.finish()?;
        Ok(AuthWrapper {
            digest,
            signed_payload: dw.inner,
            blocks: r.since(start),
            block_count: n - 1,
        })
    }

    /// Number of COSE blocks (0 for an unsigned envelope).
    pub fn block_count(&self) -> usize {
        self.block_count
    }

    /// The COSE blocks (each the contents of its bstr: a tagged COSE_Sign1/Mac0/...).
    pub fn blocks(&self) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        let mut r = Reader::new(self.blocks, 0);
        (0..self.block_count).map_while(move |_| r.bytes().ok())
    }
}

/// A shallowly decoded envelope: the map, the authentication wrapper and the location of
/// every member. The manifest itself is decoded only on request ([`Envelope::manifest`]),
/// which the processor does after authentication: the spec asks that nothing beyond
/// what authentication needs is parsed before the signature is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// The authentication wrapper.
    pub auth: AuthWrapper<'a>,
    /// The manifest as encoded in the envelope (bstr header included: the signed digest
    /// covers exactly these bytes).
    pub manifest_bytes: &'a [u8],
    manifest: Wrapped<'a>,
    severed: [Option<Wrapped<'a>>; 6],
    map: &'a [u8],
    map_base: usize,
}

/// Where a command sequence comes from, for [`Envelope::sequence`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SequenceSource<'a> {
    /// The manifest has no such sequence.
    Absent,
    /// The sequence, inline or carried in the envelope.
    Available(CommandSequence<'a>),
    /// Severed, and the envelope does not carry it: the "severed" state.
    Severed,
}

/// A severable member resolved against the envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolved<'a> {
    /// Neither in the manifest nor severed.
    Absent,
    /// In the manifest (authenticated with it).
    Inline(Wrapped<'a>),
    /// Severed; `value` is the envelope member if the envelope still carries it. Its
    /// digest must be checked against `digest` before use.
    Severed {
        /// The digest the manifest records.
        digest: Digest<'a>,
        /// The envelope member, if present.
        value: Option<Wrapped<'a>>,
    },
}

impl<'a> Envelope<'a> {
    /// Decodes an envelope that fills `bytes` exactly.
    pub fn decode(bytes: &'a [u8]) -> core::result::Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, 0);
        if r.peek()? == minicbor::data::Type::Tag {
            let at = r.offset();
            let t = r.tag()?;
            if t != TAG_ENVELOPE {
                return Err(DecodeError::new(K::UnexpectedTag(t), at));
            }
        }
        let map_base = r.offset();
        let map_start = r.pos();
        let n = r.map()?;
        let first = r.pos();
        let mut auth = None;
        let mut manifest: Option<Wrapped<'a>> = None;
        let mut severed = [None; 6];
        let mut keys = KeySet::new();
        for _ in 0..n {
            let at = r.offset();
            if r.peek()? == minicbor::data::Type::String {
                // Integrated payload or dependency: any text key.
                keys.note_other();
                r.str()?;
                r.bytes()?;
                continue;
            }
            let k = r.i64()?;
            keys.note(k, at);
            match k {
                2 => {
                    let w = r.bytes_with_header()?;
                    auth = Some(AuthWrapper::read(w)?);
                }
                3 => {
                    if auth.is_none() {
                        return Err(DecodeError::new(K::AuthAfterManifest, at));
                    }
                    manifest = Some(r.bytes_with_header()?);
                }
                k => match SeverableKind::from_key(k) {
                    Some(kind) => {
                        // Kept raw: its contents are parsed only after its digest is checked.
                        let w = r.bytes_with_header()?;
                        if let Some(slot) = severed.get_mut(kind.index()) {
                            *slot = Some(w);
                        }
                    }
                    None => return Err(DecodeError::new(K::UnknownEnvelopeElement(k), at)),
                },
            }
        }
        keys.check(&r, first, n, 0)?;
        r.finish()?;
        let auth = auth.ok_or(DecodeError::new(
            K::Missing(Element::AuthenticationWrapper),
            map_base,
        ))?;
        let manifest = manifest.ok_or(DecodeError::new(K::Missing(Element::Manifest), map_base))?;
        Ok(Envelope {
            auth,
            manifest_bytes: manifest.whole,
            manifest,
            severed,
            map: r.since(map_start),
            map_base,
        })
    }

    /// Decodes the manifest (call after authentication). Also refuses envelope members
    /// that the manifest does not record as severed: no signature covers them.
    pub fn manifest(&self) -> core::result::Result<Manifest<'a>, DecodeError> {
        let mut m = Manifest::default();
        self.manifest_into(&mut m)?;
        Ok(m)
    }

    /// [`Envelope::manifest`], decoded into `m` in place (no move of the decoded
    /// manifest, a few hundred bytes). On an error `m` is reset to the empty manifest, so
    /// no partial or refused decode can be used by mistake.
    pub fn manifest_into(&self, m: &mut Manifest<'a>) -> core::result::Result<(), DecodeError> {
        let r = self.manifest_into_unchecked(m);
        if r.is_err() {
            *m = Manifest::default();
        }
        r
    }

    fn manifest_into_unchecked(
        &self,
        m: &mut Manifest<'a>,
    ) -> core::result::Result<(), DecodeError> {
        Manifest::read_into(self.manifest, m)?;
        for kind in SeverableKind::ALL {
            let carried = self.severed.get(kind.index()).copied().flatten();
            if let Some(w) = carried
                && !matches!(m.member(kind), Member::Severed(_))
            {
                return Err(DecodeError::new(
                    K::UnauthenticatedMember(kind.key()),
                    w.inner_base,
                ));
            }
        }
        Ok(())
    }

    /// Where a severable member's bytes are, if anywhere.
    pub fn resolve(&self, manifest: &Manifest<'a>, kind: SeverableKind) -> Resolved<'a> {
        match manifest.member(kind) {
            Member::Absent => Resolved::Absent,
            Member::Present(w) => Resolved::Inline(w),
            Member::Severed(digest) => Resolved::Severed {
                digest,
                value: self.severed.get(kind.index()).copied().flatten(),
            },
        }
    }

    /// The command sequence of a severable kind, validated. A severed member's digest is
    /// not checked here: the processor checks every carried member while authenticating,
    /// before it calls this.
    pub fn sequence(
        &self,
        manifest: &Manifest<'a>,
        kind: SeverableKind,
    ) -> core::result::Result<SequenceSource<'a>, DecodeError> {
        if !kind.is_sequence() {
            return Ok(SequenceSource::Absent);
        }
        Ok(match self.resolve(manifest, kind) {
            Resolved::Absent => SequenceSource::Absent,
            // Validated with the manifest.
            Resolved::Inline(w) => SequenceSource::Available(CommandSequence::from_validated(w)),
            Resolved::Severed { value: Some(w), .. } => {
                let mut r = Reader::new(w.whole, w.inner_base - (w.whole.len() - w.inner.len()));
                SequenceSource::Available(CommandSequence::read_wrapped(&mut r, 0, false)?)
            }
            Resolved::Severed { value: None, .. } => SequenceSource::Severed,
        })
    }

    /// The text member (inline or carried severed), validated as bounded CBOR.
    pub fn text(&self, manifest: &Manifest<'a>) -> Option<&'a [u8]> {
        match self.resolve(manifest, SeverableKind::Text) {
            Resolved::Inline(w) | Resolved::Severed { value: Some(w), .. } => {
                let mut r = w.reader();
                (r.skip(0).is_ok() && r.finish().is_ok()).then_some(w.inner)
            }
            _ => None,
        }
    }

    /// The integrated payload or dependency stored under text key `name` (for example
    /// `"#firmware"`, as a `#` URI names it).
    pub fn integrated(&self, name: &str) -> Option<&'a [u8]> {
        let mut r = Reader::new(self.map, self.map_base);
        let n = r.map().ok()?;
        for _ in 0..n {
            if r.peek().ok()? == minicbor::data::Type::String {
                let k = r.str().ok()?;
                let v = r.bytes().ok()?;
                if k == name {
                    return Some(v);
                }
            } else {
                r.skip(0).ok()?;
                r.skip(0).ok()?;
            }
        }
        None
    }

    /// Names of all integrated payloads and dependencies, in encoded order.
    pub fn integrated_names(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + use<'a> {
        let mut r = Reader::new(self.map, self.map_base);
        let n = r.map().unwrap_or(0);
        (0..n).filter_map(move |_| {
            if r.peek().ok()? == minicbor::data::Type::String {
                Some((r.str().ok()?, r.bytes().ok()?))
            } else {
                r.skip(0).ok()?;
                r.skip(0).ok()?;
                None
            }
        })
    }
}
