//! Strict decoding of a signed store (docs/trust-store.md): definite lengths, integer map
//! keys in ascending order, no unknown keys, no trailing bytes. Nothing here checks a
//! signature.

use minicbor::Decoder;
use minicbor::data::Type;

use crate::{Clause, Family, MAX_CLAUSES, MAX_KEYS, TrustError, role};

pub(crate) struct RawKey<'b> {
    pub family: Family,
    pub roles: u32,
    pub public: &'b [u8],
    pub kid: Option<&'b [u8]>,
}

#[derive(Clone, Copy)]
pub(crate) struct Clauses {
    items: [Clause; MAX_CLAUSES],
    len: usize,
}

impl Clauses {
    const EMPTY: Clauses = Clauses {
        items: [Clause {
            role: 0,
            k: 0,
            family: None,
        }; MAX_CLAUSES],
        len: 0,
    };

    pub fn iter(&self) -> impl Iterator<Item = &Clause> {
        self.items.iter().take(self.len)
    }
}

pub(crate) struct Raw<'b> {
    pub body: &'b [u8],
    pub signatures: &'b [u8],
    pub version: u64,
    pub keys: [Option<RawKey<'b>>; MAX_KEYS],
    pub root_threshold: u8,
    pub manifest: Clauses,
    pub dependency: Option<Clauses>,
}

fn err(d: &Decoder<'_>) -> TrustError {
    TrustError::Decode(d.position())
}

/// A definite-length array or map header.
fn len(d: &mut Decoder<'_>, map: bool) -> Result<u64, TrustError> {
    let n = if map { d.map() } else { d.array() };
    n.map_err(|_| err(d))?.ok_or(err(d))
}

fn uint(d: &mut Decoder<'_>) -> Result<u64, TrustError> {
    match d.datatype().map_err(|_| err(d))? {
        Type::U8 | Type::U16 | Type::U32 | Type::U64 => d.u64().map_err(|_| err(d)),
        _ => Err(err(d)),
    }
}

fn int(d: &mut Decoder<'_>) -> Result<i64, TrustError> {
    d.i64().map_err(|_| err(d))
}

fn small(d: &mut Decoder<'_>) -> Result<u8, TrustError> {
    u8::try_from(uint(d)?).map_err(|_| err(d))
}

fn bytes<'b>(d: &mut Decoder<'b>) -> Result<&'b [u8], TrustError> {
    if d.datatype().map_err(|_| err(d))? != Type::Bytes {
        return Err(err(d));
    }
    d.bytes().map_err(|_| err(d))
}

/// `[body: bstr .cbor Store, signatures: [+ bstr]]`.
pub(crate) fn signed_store(bytes_in: &[u8]) -> Result<Raw<'_>, TrustError> {
    let mut d = Decoder::new(bytes_in);
    if len(&mut d, false)? != 2 {
        return Err(err(&d));
    }
    let body_at = d.position();
    let body = bytes(&mut d)?;
    let sig_start = d.position();
    // An unsigned store ([body, []]) decodes; it just verifies as nothing.
    let n = len(&mut d, false)?;
    if n > 16 {
        return Err(TrustError::TooLarge);
    }
    for _ in 0..n {
        bytes(&mut d)?;
    }
    let signatures = bytes_in.get(sig_start..d.position()).ok_or(err(&d))?;
    if d.position() != bytes_in.len() {
        return Err(err(&d));
    }
    store(body, body_at, signatures)
}

fn store<'b>(body: &'b [u8], base: usize, signatures: &'b [u8]) -> Result<Raw<'b>, TrustError> {
    let at = |d: &Decoder<'_>| TrustError::Decode(base + d.position());
    let mut d = Decoder::new(body);
    let n = len(&mut d, true).map_err(|_| at(&d))?;
    let mut raw = Raw {
        body,
        signatures,
        version: 0,
        keys: [const { None }; MAX_KEYS],
        root_threshold: 0,
        manifest: Clauses::EMPTY,
        dependency: None,
    };
    let mut last = 0u64;
    let mut seen = 0u8;
    for _ in 0..n {
        let key = uint(&mut d).map_err(|_| at(&d))?;
        if key <= last {
            return Err(at(&d));
        }
        last = key;
        match key {
            1 => raw.version = uint(&mut d).map_err(|_| at(&d))?,
            2 => {
                let k = len(&mut d, false).map_err(|_| at(&d))?;
                if k == 0 || k > MAX_KEYS as u64 {
                    return Err(TrustError::TooLarge);
                }
                for slot in raw.keys.iter_mut().take(k as usize) {
                    *slot = Some(key_entry(&mut d).map_err(|_| at(&d))?);
                }
            }
            3 => raw.root_threshold = small(&mut d).map_err(|_| at(&d))?,
            4 => raw.manifest = clauses(&mut d).map_err(|e| relocate(e, base))?,
            5 => raw.dependency = Some(clauses(&mut d).map_err(|e| relocate(e, base))?),
            _ => return Err(at(&d)),
        }
        seen |= 1 << key;
    }
    // 1 to 4 are required.
    if seen & 0b1_1110 != 0b1_1110 || d.position() != body.len() {
        return Err(at(&d));
    }
    Ok(raw)
}

fn relocate(e: TrustError, base: usize) -> TrustError {
    match e {
        TrustError::Decode(p) => TrustError::Decode(base + p),
        other => other,
    }
}

/// `[alg int, roles uint, public bstr, ? kid bstr]`.
fn key_entry<'b>(d: &mut Decoder<'b>) -> Result<RawKey<'b>, TrustError> {
    let n = len(d, false)?;
    if !(3..=4).contains(&n) {
        return Err(err(d));
    }
    let family = Family::of(int(d)?).ok_or(err(d))?;
    let roles = u32::try_from(uint(d)?).map_err(|_| err(d))?;
    if roles == 0 || roles & !role::ALL != 0 {
        return Err(err(d));
    }
    let public = bytes(d)?;
    let kid = if n == 4 { Some(bytes(d)?) } else { None };
    Ok(RawKey {
        family,
        roles,
        public,
        kid,
    })
}

/// `[+ [role uint, k uint, ? alg int]]`.
fn clauses(d: &mut Decoder<'_>) -> Result<Clauses, TrustError> {
    let n = len(d, false)?;
    if n == 0 {
        return Err(err(d));
    }
    if n > MAX_CLAUSES as u64 {
        return Err(TrustError::TooLarge);
    }
    let mut out = Clauses::EMPTY;
    for slot in out.items.iter_mut().take(n as usize) {
        let m = len(d, false)?;
        if !(2..=3).contains(&m) {
            return Err(err(d));
        }
        let role = u32::try_from(uint(d)?).map_err(|_| err(d))?;
        if role.count_ones() != 1 || role & !role::ALL != 0 {
            return Err(err(d));
        }
        let k = small(d)?;
        let family = if m == 3 {
            Some(Family::of(int(d)?).ok_or(err(d))?)
        } else {
            None
        };
        *slot = Clause { role, k, family };
        out.len += 1;
    }
    Ok(out)
}

/// The signature blocks of a validated `signatures` array.
pub(crate) fn blocks(signatures: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut d = Decoder::new(signatures);
    let n = d.array().ok().flatten().unwrap_or(0);
    (0..n).map_while(move |_| d.bytes().ok())
}
