//! SUIT_Parameters: the argument of override-parameters (20) and set-parameters (19).

use crate::cbor::{self, KeySet, Reader, Result, Trusted};
use crate::digest::Digest;
use crate::error::{DecodeError, DecodeErrorKind as K};

/// CBOR tag marking a vendor identifier given as a private enterprise number.
pub const TAG_PEN: u64 = 112;

/// A vendor identifier: a 16-byte UUID or a CBOR PEN (tag 112, relative OID bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VendorId<'a> {
    /// RFC 4122 UUID, 16 bytes.
    Uuid(&'a [u8]),
    /// Relative OID under 1.3.6.1.4.1, as encoded bytes.
    Pen(&'a [u8]),
}

/// The value of a custom (negative) parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CustomValue<'a> {
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A text string.
    Text(&'a str),
    /// A byte string.
    Bytes(&'a [u8]),
}

/// One parameter, borrowing from the manifest. Codes follow `suit-codes.md` §6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Parameter<'a> {
    /// 1
    VendorId(VendorId<'a>),
    /// 2: 16-byte UUID.
    ClassId(&'a [u8]),
    /// 3
    ImageDigest(Digest<'a>),
    /// 4 (update management): POSIX time after which the manifest must not be used.
    UseBefore(u64),
    /// 5
    ComponentSlot(u64),
    /// 12
    StrictOrder(bool),
    /// 13
    SoftFailure(bool),
    /// 14
    ImageSize(u64),
    /// 18: data for the write directive.
    Content(&'a [u8]),
    /// 19 (firmware encryption): `bstr .cbor COSE_Encrypt`, kept encoded.
    EncryptionInfo(&'a [u8]),
    /// 21
    Uri(&'a str),
    /// 22
    SourceComponent(u32),
    /// 23
    InvokeArgs(&'a [u8]),
    /// 24: 16-byte UUID.
    DeviceId(&'a [u8]),
    /// 25
    FetchArguments(&'a [u8]),
    /// 26 (update management)
    MinimumBattery(u64),
    /// 27 (update management)
    UpdatePriority(i64),
    /// 28 (update management): `bstr .cbor [cmp, [+int]]`, kept encoded.
    Version(&'a [u8]),
    /// 29 (update management): `bstr .cbor {+ event => value}`, kept encoded.
    WaitInfo(&'a [u8]),
    /// 30 (update management): kept encoded.
    ComponentMetadata(&'a [u8]),
    /// A negative (custom) code.
    Custom(i64, CustomValue<'a>),
}

impl Parameter<'_> {
    /// The parameter's code.
    pub fn code(&self) -> i64 {
        match self {
            Parameter::VendorId(_) => 1,
            Parameter::ClassId(_) => 2,
            Parameter::ImageDigest(_) => 3,
            Parameter::UseBefore(_) => 4,
            Parameter::ComponentSlot(_) => 5,
            Parameter::StrictOrder(_) => 12,
            Parameter::SoftFailure(_) => 13,
            Parameter::ImageSize(_) => 14,
            Parameter::Content(_) => 18,
            Parameter::EncryptionInfo(_) => 19,
            Parameter::Uri(_) => 21,
            Parameter::SourceComponent(_) => 22,
            Parameter::InvokeArgs(_) => 23,
            Parameter::DeviceId(_) => 24,
            Parameter::FetchArguments(_) => 25,
            Parameter::MinimumBattery(_) => 26,
            Parameter::UpdatePriority(_) => 27,
            Parameter::Version(_) => 28,
            Parameter::WaitInfo(_) => 29,
            Parameter::ComponentMetadata(_) => 30,
            Parameter::Custom(c, _) => *c,
        }
    }
}

fn uuid<'a>(r: &mut Reader<'a>) -> Result<&'a [u8]> {
    let at = r.offset();
    let b = r.bytes()?;
    if b.len() != 16 {
        return Err(DecodeError::new(K::InvalidValue, at));
    }
    Ok(b)
}

/// Reads one `code => value` pair.
pub(crate) fn read_parameter<'a>(r: &mut Reader<'a>, depth: usize) -> Result<Parameter<'a>> {
    let at = r.offset();
    let code = r.i64()?;
    Ok(match code {
        1 => {
            if r.peek()? == minicbor::data::Type::Tag {
                let tat = r.offset();
                let tag = r.tag()?;
                if tag != TAG_PEN {
                    return Err(DecodeError::new(K::UnexpectedTag(tag), tat));
                }
                Parameter::VendorId(VendorId::Pen(r.bytes()?))
            } else {
                Parameter::VendorId(VendorId::Uuid(uuid(r)?))
            }
        }
        2 => Parameter::ClassId(uuid(r)?),
        3 => {
            let w = r.bytes_with_header()?;
            let mut inner = w.reader();
            let d = Digest::read(&mut inner, depth + 1)?;
            inner.finish()?;
            Parameter::ImageDigest(d)
        }
        4 => Parameter::UseBefore(r.u64()?),
        5 => Parameter::ComponentSlot(r.u64()?),
        12 => Parameter::StrictOrder(r.bool()?),
        13 => Parameter::SoftFailure(r.bool()?),
        14 => Parameter::ImageSize(r.u64()?),
        18 => Parameter::Content(r.bytes()?),
        19 => Parameter::EncryptionInfo(wrapped_item(r, depth)?),
        21 => Parameter::Uri(r.str()?),
        22 => Parameter::SourceComponent(r.u32()?),
        23 => Parameter::InvokeArgs(r.bytes()?),
        24 => Parameter::DeviceId(uuid(r)?),
        25 => Parameter::FetchArguments(r.bytes()?),
        26 => Parameter::MinimumBattery(r.u64()?),
        27 => Parameter::UpdatePriority(r.i64()?),
        28 => Parameter::Version(wrapped_item(r, depth)?),
        29 => Parameter::WaitInfo(wrapped_item(r, depth)?),
        30 => Parameter::ComponentMetadata(wrapped_item(r, depth)?),
        c if c < 0 => {
            use minicbor::data::Type as T;
            let v = match r.peek()? {
                T::Bool => CustomValue::Bool(r.bool()?),
                T::String => CustomValue::Text(r.str()?),
                T::Bytes => CustomValue::Bytes(r.bytes()?),
                _ if r.is_int() => CustomValue::Int(r.i64()?),
                _ => return r.err(K::UnexpectedType),
            };
            Parameter::Custom(c, v)
        }
        c => return Err(DecodeError::new(K::UnknownParameter(c), at)),
    })
}

/// A `bstr .cbor any`: the bstr must hold exactly one well-formed, bounded item.
fn wrapped_item<'a>(r: &mut Reader<'a>, depth: usize) -> Result<&'a [u8]> {
    let w = r.bytes_with_header()?;
    let mut inner = w.reader();
    inner.skip(depth + 1)?;
    inner.finish()?;
    Ok(w.inner)
}

/// A parameter map, validated at decode time and iterated on demand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parameters<'a> {
    raw: &'a [u8],
    base: usize,
}

impl<'a> Parameters<'a> {
    /// Reads and validates a map; `shared` forbids custom parameters, which the spec
    /// keeps out of the shared sequence.
    pub(crate) fn read(r: &mut Reader<'a>, depth: usize, shared: bool) -> Result<Self> {
        let base = r.offset();
        let start = r.pos();
        let n = r.map()?;
        let first = r.pos();
        // Duplicate codes are found as the entries are read (a parameter's code is its
        // key): no second walk over the map.
        let mut keys = KeySet::new();
        for _ in 0..n {
            let key_at = r.offset();
            // Looked at in place: moving the parameter out of the `Result` is a `memcpy`
            // per entry on a Cortex-M4.
            let read = read_parameter(r, depth);
            let p = match &read {
                Ok(p) => p,
                Err(e) => return Err(*e),
            };
            if shared && matches!(p, Parameter::Custom(..)) {
                return Err(DecodeError::new(
                    K::CommandNotAllowedInSharedSequence(p.code()),
                    base,
                ));
            }
            keys.note(p.code(), key_at);
        }
        keys.check(r, first, n, depth)?;
        Ok(Parameters {
            raw: r.since(start),
            base,
        })
    }

    /// A map validated earlier, re-read from its bytes.
    pub(crate) fn trusted(raw: &'a [u8], base: usize) -> Self {
        Parameters { raw, base }
    }

    /// The encoded map.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// The parameters in encoded order.
    pub fn iter(&self) -> ParameterIter<'a> {
        let mut r = Trusted::new(self.raw, self.base);
        let left = r.map().unwrap_or(0);
        ParameterIter { r, left }
    }
}

/// Iterator over [`Parameters`]; the map was validated, so it yields every entry.
#[derive(Clone)]
pub struct ParameterIter<'a> {
    r: Trusted<'a>,
    left: usize,
}

impl<'a> Iterator for ParameterIter<'a> {
    type Item = Parameter<'a>;
    fn next(&mut self) -> Option<Parameter<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // The lean reader first (the map was validated); on anything it does not
        // expect, the strict reader from the same position, as before.
        let mut probe = self.r.clone();
        if let Some(p) = read_lean(&mut probe) {
            self.r = probe;
            return Some(p);
        }
        strict_fallback(&mut self.r)
    }
}

/// The strict read of one entry at `r`'s position, for [`ParameterIter`]: kept out of
/// line, as it is never taken on a validated map.
#[cold]
#[inline(never)]
fn strict_fallback<'a>(r: &mut Trusted<'a>) -> Option<Parameter<'a>> {
    let mut strict = r.strict();
    let p = read_parameter(&mut strict, 0).ok();
    r.sync(&strict);
    p
}

/// One `code => value` pair of a validated map, read with the lean reader. `None` for
/// anything unexpected (the caller then reads strictly).
fn read_lean<'a>(r: &mut Trusted<'a>) -> Option<Parameter<'a>> {
    let code = r.int()?;
    Some(match code {
        1 => {
            if r.peek()? >> 5 == cbor::MAJOR_TAG {
                if r.head()? != (cbor::MAJOR_TAG, TAG_PEN) {
                    return None;
                }
                Parameter::VendorId(VendorId::Pen(r.bytes()?))
            } else {
                Parameter::VendorId(VendorId::Uuid(uuid_lean(r)?))
            }
        }
        2 => Parameter::ClassId(uuid_lean(r)?),
        3 => {
            // `bstr .cbor [alg, bstr, *ext]`: only the algorithm and the value are used.
            let mut d = Trusted::new(r.bytes()?, 0);
            if d.array()? < 2 {
                return None;
            }
            let algorithm = crate::digest::DigestAlgorithm::from_cose(d.int()?)?;
            let bytes = d.bytes()?;
            if bytes.len() != algorithm.output_len() {
                return None;
            }
            Parameter::ImageDigest(Digest { algorithm, bytes })
        }
        4 => Parameter::UseBefore(r.uint()?),
        5 => Parameter::ComponentSlot(r.uint()?),
        12 => Parameter::StrictOrder(r.bool()?),
        13 => Parameter::SoftFailure(r.bool()?),
        14 => Parameter::ImageSize(r.uint()?),
        18 => Parameter::Content(r.bytes()?),
        19 => Parameter::EncryptionInfo(r.bytes()?),
        21 => Parameter::Uri(r.str()?),
        22 => Parameter::SourceComponent(r.u32()?),
        23 => Parameter::InvokeArgs(r.bytes()?),
        24 => Parameter::DeviceId(uuid_lean(r)?),
        25 => Parameter::FetchArguments(r.bytes()?),
        26 => Parameter::MinimumBattery(r.uint()?),
        27 => Parameter::UpdatePriority(r.int()?),
        28 => Parameter::Version(r.bytes()?),
        29 => Parameter::WaitInfo(r.bytes()?),
        30 => Parameter::ComponentMetadata(r.bytes()?),
        // Custom parameters: read strictly, as before.
        _ => return None,
    })
}

fn uuid_lean<'a>(r: &mut Trusted<'a>) -> Option<&'a [u8]> {
    r.bytes().filter(|b| b.len() == 16)
}
