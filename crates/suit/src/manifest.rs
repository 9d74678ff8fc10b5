//! SUIT_Manifest and SUIT_Common (`suit-codes.md` §2, §3).

use crate::MAX_COMPONENTS;
use crate::cbor::{KeySet, Reader, Result, Wrapped};
use crate::command::CommandSequence;
use crate::component::{ComponentId, Components};
use crate::digest::Digest;
use crate::error::{DecodeError, DecodeErrorKind as K, Element};

/// CBOR tag of a bare SUIT_Manifest.
pub const TAG_MANIFEST: u64 = 1070;

/// A severable manifest member: in the manifest, replaced by its digest, or absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Member<'a, T> {
    /// Not in the manifest at all.
    Absent,
    /// Held in the manifest itself.
    Present(T),
    /// Severed: the manifest holds only the digest of the envelope member
    /// (bstr header included).
    Severed(Digest<'a>),
}

/// The severable members, which can also stand in the envelope under the same key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SeverableKind {
    /// 14 (update management)
    Coswid,
    /// 15 (trust domains)
    DependencyResolution,
    /// 16
    PayloadFetch,
    /// 18 (trust domains)
    CandidateVerification,
    /// 20
    Install,
    /// 23
    Text,
}

impl SeverableKind {
    /// Every kind, in key order.
    pub const ALL: [SeverableKind; 6] = [
        SeverableKind::Coswid,
        SeverableKind::DependencyResolution,
        SeverableKind::PayloadFetch,
        SeverableKind::CandidateVerification,
        SeverableKind::Install,
        SeverableKind::Text,
    ];

    /// The key used in both the manifest and the envelope.
    pub fn key(self) -> i64 {
        match self {
            SeverableKind::Coswid => 14,
            SeverableKind::DependencyResolution => 15,
            SeverableKind::PayloadFetch => 16,
            SeverableKind::CandidateVerification => 18,
            SeverableKind::Install => 20,
            SeverableKind::Text => 23,
        }
    }

    pub(crate) fn from_key(key: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.key() == key)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// Whether the member is a command sequence (coswid and text are data).
    pub fn is_sequence(self) -> bool {
        !matches!(self, SeverableKind::Coswid | SeverableKind::Text)
    }
}

/// SUIT_Common.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Common<'a> {
    /// Key 1 (trust domains): the component indices that hold dependency manifests.
    pub dependencies: Option<Dependencies<'a>>,
    /// Key 2.
    pub components: Components<'a>,
    /// Key 4.
    pub shared_sequence: Option<CommandSequence<'a>>,
}

impl<'a> Common<'a> {
    fn read(w: Wrapped<'a>) -> Result<Self> {
        let mut r = w.reader();
        let n = r.map()?;
        let first = r.pos();
        let mut c = Common::default();
        let mut keys = KeySet::new();
        for _ in 0..n {
            let at = r.offset();
            let k = r.i64()?;
            keys.note(k, at);
            match k {
                1 => c.dependencies = Some(Dependencies::read(&mut r)?),
                2 => c.components = Components::read(&mut r)?,
                4 => c.shared_sequence = Some(CommandSequence::read_wrapped(&mut r, 0, true)?),
                k => return Err(DecodeError::new(K::UnknownCommonElement(k), at)),
            }
        }
        keys.check(&r, first, n, 0)?;
        r.finish()?;
        // A dependency index that also names a listed component would give one index two
        // identifiers (the component's and the dependency prefix): refused as ambiguous.
        if let Some(d) = c.dependencies
            && d.iter()
                .any(|dep| (dep.index as usize) < c.components.len())
        {
            return Err(DecodeError::new(K::InvalidValue, w.inner_base));
        }
        Ok(c)
    }
}

/// One entry of SUIT_Dependencies: the component index that holds a dependency manifest,
/// and its dependency-prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dependency<'a> {
    /// The component index (same index space as `common.components`).
    pub index: u32,
    /// Key 1: the dependency-prefix, which names the dependency's component.
    pub prefix: Option<ComponentId<'a>>,
}

/// SUIT_Dependencies (trust domains, common key 1): `{+ uint => {? 1: prefix}}`. Kept
/// encoded; validated once at decode, so iteration cannot fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Dependencies<'a> {
    raw: &'a [u8],
}

impl<'a> Dependencies<'a> {
    fn read(r: &mut Reader<'a>) -> Result<Self> {
        let start = r.pos();
        let k = r.map()?;
        if k == 0 {
            return r.err(K::InvalidValue);
        }
        let first_dep = r.pos();
        for _ in 0..k {
            // Indices share the components' table, so they obey its bound.
            let at = r.offset();
            if r.u32()? as usize >= MAX_COMPONENTS {
                return Err(DecodeError::new(K::TooManyComponents, at));
            }
            let m = r.map()?;
            let first_field = r.pos();
            for _ in 0..m {
                let fat = r.offset();
                if r.i64()? != 1 {
                    return Err(DecodeError::new(K::InvalidValue, fat));
                }
                ComponentId::read(r)?;
            }
            r.ensure_unique_keys(first_field, m, 2)?;
        }
        r.ensure_unique_keys(first_dep, k, 1)?;
        Ok(Dependencies {
            raw: r.since(start),
        })
    }

    /// The encoded map.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// The entries, in encoded order.
    pub fn iter(&self) -> impl Iterator<Item = Dependency<'a>> + use<'a> {
        let mut r = Reader::new(self.raw, 0);
        let n = if self.raw.is_empty() {
            0
        } else {
            r.map().unwrap_or(0)
        };
        (0..n).map_while(move |_| {
            let index = r.u32().ok()?;
            let fields = r.map().ok()?;
            let mut prefix = None;
            for _ in 0..fields {
                r.i64().ok()?;
                prefix = Some(ComponentId::read(&mut r).ok()?);
            }
            Some(Dependency { index, prefix })
        })
    }

    /// The entry for component index `index`, if it is a dependency.
    pub fn get(&self, index: u32) -> Option<Dependency<'a>> {
        self.iter().find(|d| d.index == index)
    }

    /// Whether component index `index` holds a dependency.
    pub fn contains(&self, index: u32) -> bool {
        self.get(index).is_some()
    }
}

/// A decoded SUIT_Manifest, borrowing from the envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Manifest<'a> {
    /// Key 2: the anti-rollback counter.
    pub sequence_number: u64,
    /// Key 3.
    pub common: Common<'a>,
    /// Key 4.
    pub reference_uri: Option<&'a str>,
    /// Key 5 (trust domains).
    pub component_id: Option<ComponentId<'a>>,
    /// Key 6 (update management): `bstr .cbor [+int]`, kept encoded.
    pub set_version: Option<&'a [u8]>,
    /// Key 7.
    pub validate: Option<CommandSequence<'a>>,
    /// Key 8.
    pub load: Option<CommandSequence<'a>>,
    /// Key 9.
    pub invoke: Option<CommandSequence<'a>>,
    /// Key 24 (trust domains).
    pub uninstall: Option<CommandSequence<'a>>,
    /// Severable members indexed by [`SeverableKind`]; sequences for the sequence kinds.
    severable: [Member<'a, Wrapped<'a>>; 6],
}

/// The empty manifest (sequence number 0, no components, no member): a value to decode
/// into with [`crate::Envelope::manifest_into`].
impl Default for Manifest<'_> {
    fn default() -> Self {
        Manifest {
            sequence_number: 0,
            common: Common::default(),
            reference_uri: None,
            component_id: None,
            set_version: None,
            validate: None,
            load: None,
            invoke: None,
            uninstall: None,
            severable: [Member::Absent; 6],
        }
    }
}

impl<'a> Manifest<'a> {
    /// Decodes the manifest held in the envelope's bstr `w` into `m` (in place: a
    /// manifest is a few hundred bytes, and each move out of a `Result` is a `memcpy` on
    /// a microcontroller). On an error `m` holds whatever was decoded so far.
    pub(crate) fn read_into(w: Wrapped<'a>, m: &mut Self) -> Result<()> {
        let mut r = w.reader();
        // The bare-manifest tag is allowed inside the bstr as well.
        if r.peek()? == minicbor::data::Type::Tag {
            let at = r.offset();
            let t = r.tag()?;
            if t != TAG_MANIFEST {
                return Err(DecodeError::new(K::UnexpectedTag(t), at));
            }
        }
        let map_at = r.offset();
        let n = r.map()?;
        let first = r.pos();
        let mut version = None;
        let mut seq = None;
        let mut common = None;
        *m = Manifest::default();
        let mut keys = KeySet::new();
        for _ in 0..n {
            let at = r.offset();
            let key = r.i64()?;
            keys.note(key, at);
            match key {
                1 => {
                    let vat = r.offset();
                    if r.u64()? != 1 {
                        return Err(DecodeError::new(K::UnsupportedManifestVersion, vat));
                    }
                    version = Some(());
                }
                2 => seq = Some(r.u64()?),
                3 => common = Some(Common::read(r.bytes_with_header()?)?),
                4 => m.reference_uri = Some(r.str()?),
                5 => m.component_id = Some(ComponentId::read(&mut r)?),
                6 => {
                    let w = r.bytes_with_header()?;
                    let mut inner = w.reader();
                    let k = inner.array()?;
                    if k == 0 {
                        return inner.err(K::InvalidValue);
                    }
                    for _ in 0..k {
                        inner.i64()?;
                    }
                    inner.finish()?;
                    m.set_version = Some(w.inner);
                }
                7 => m.validate = Some(CommandSequence::read_wrapped(&mut r, 0, false)?),
                8 => m.load = Some(CommandSequence::read_wrapped(&mut r, 0, false)?),
                9 => m.invoke = Some(CommandSequence::read_wrapped(&mut r, 0, false)?),
                24 => m.uninstall = Some(CommandSequence::read_wrapped(&mut r, 0, false)?),
                k => match SeverableKind::from_key(k) {
                    Some(kind) => {
                        let member = if r.peek()? == minicbor::data::Type::Array {
                            Member::Severed(Digest::read(&mut r, 1)?)
                        } else {
                            Member::Present(read_severable(&mut r, kind)?)
                        };
                        if let Some(slot) = m.severable.get_mut(kind.index()) {
                            *slot = member;
                        }
                    }
                    None => return Err(DecodeError::new(K::UnknownManifestElement(k), at)),
                },
            }
        }
        keys.check(&r, first, n, 0)?;
        r.finish()?;
        if version.is_none() {
            return Err(DecodeError::new(
                K::Missing(Element::ManifestVersion),
                map_at,
            ));
        }
        m.sequence_number = seq.ok_or(DecodeError::new(
            K::Missing(Element::SequenceNumber),
            map_at,
        ))?;
        m.common = common.ok_or(DecodeError::new(K::Missing(Element::Common), map_at))?;
        Ok(())
    }

    /// The size of the component index space: the listed components, extended to the
    /// highest dependency index (dependencies are components too, and their indices
    /// follow the list in every published example). At most [`MAX_COMPONENTS`].
    pub fn index_count(&self) -> usize {
        let deps = self
            .common
            .dependencies
            .iter()
            .flat_map(|d| d.iter())
            .map(|d| d.index as usize + 1)
            .max()
            .unwrap_or(0);
        self.common.components.len().max(deps)
    }

    /// The identifier of component index `index`: a listed component's identifier, or a
    /// dependency's prefix.
    pub fn component_id(&self, index: u32) -> Option<ComponentId<'a>> {
        match self.common.components.get(index as usize) {
            Some(id) => Some(id),
            None => self
                .common
                .dependencies
                .and_then(|d| d.get(index))
                .and_then(|d| d.prefix),
        }
    }

    /// The state of a severable member as the manifest records it.
    pub fn member(&self, kind: SeverableKind) -> Member<'a, Wrapped<'a>> {
        self.severable
            .get(kind.index())
            .copied()
            .unwrap_or(Member::Absent)
    }
}

/// Reads a severable member's bstr, validating its contents by kind.
pub(crate) fn read_severable<'a>(r: &mut Reader<'a>, kind: SeverableKind) -> Result<Wrapped<'a>> {
    let mut probe = r.clone();
    let w = probe.bytes_with_header()?;
    if kind.is_sequence() {
        CommandSequence::read_wrapped(r, 0, false)?;
    } else {
        // Text and CoSWID: well-formed, bounded CBOR; their inner schema is not acted on.
        let mut inner = w.reader();
        inner.skip(0)?;
        inner.finish()?;
        r.bytes_with_header()?;
    }
    Ok(w)
}
