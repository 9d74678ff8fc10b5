//! A strict reader over minicbor: definite lengths only, bounded nesting, typed errors,
//! absolute byte offsets.
//!
//! minicbor is deliberately permissive; SUIT is not. Every place where the spec narrows
//! CBOR (no indefinite lengths, one item per bstr, no duplicate keys) is enforced here so
//! the model types above never see such input.

use minicbor::Decoder;
use minicbor::data::Type;

use crate::MAX_DEPTH;
use crate::error::{DecodeError, DecodeErrorKind as K};

/// A cursor over one CBOR buffer, reporting offsets relative to the outermost buffer.
#[derive(Clone)]
pub(crate) struct Reader<'a> {
    d: Decoder<'a>,
    base: usize,
}

/// A map or array key, compared by value for integers and by encoding otherwise.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyRepr<'a> {
    Int(i128),
    Raw(&'a [u8]),
}

pub(crate) type Result<T> = core::result::Result<T, DecodeError>;

impl<'a> Reader<'a> {
    /// A reader over `bytes`, which start at absolute offset `base`.
    pub(crate) fn new(bytes: &'a [u8], base: usize) -> Self {
        Reader {
            d: Decoder::new(bytes),
            base,
        }
    }

    /// Absolute offset of the next byte.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.d.position()
    }

    pub(crate) fn err<T>(&self, kind: K) -> Result<T> {
        Err(DecodeError::new(kind, self.offset()))
    }

    fn remaining(&self) -> usize {
        self.d.input().len().saturating_sub(self.d.position())
    }

    /// Fails unless the buffer has been consumed exactly.
    pub(crate) fn finish(&self) -> Result<()> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            self.err(K::TrailingBytes)
        }
    }

    /// The CBOR type of the next item, with end-of-input, reserved bytes and
    /// indefinite lengths as errors. Classified from the initial byte alone (minicbor's
    /// `datatype` decodes whole integers to size them, which the interpreter's hot path
    /// does not need): integers report as `U64` / `I64`, floats and simple values as
    /// `Simple`.
    pub(crate) fn peek(&self) -> Result<Type> {
        let Some(&b) = self.d.input().get(self.d.position()) else {
            return self.err(K::Malformed);
        };
        let info = b & 0x1f;
        if (28..=30).contains(&info) {
            return self.err(K::Malformed);
        }
        let t = match (b >> 5, info) {
            (0, _) => Type::U64,
            (1, _) => Type::I64,
            (2..=5, 31) => return self.err(K::IndefiniteLength),
            (2, _) => Type::Bytes,
            (3, _) => Type::String,
            (4, _) => Type::Array,
            (5, _) => Type::Map,
            (6, _) => Type::Tag,
            (_, 20 | 21) => Type::Bool,
            (_, 22) => Type::Null,
            (_, 23) => Type::Undefined,
            (_, 31) => return self.err(K::Malformed),
            _ => Type::Simple,
        };
        Ok(t)
    }

    fn lift<T>(&self, at: usize, r: core::result::Result<T, minicbor::decode::Error>) -> Result<T> {
        r.map_err(|e| {
            let kind = if e.is_end_of_input() {
                K::Malformed
            } else if e.is_type_mismatch() {
                K::UnexpectedType
            } else {
                K::IntegerOverflow
            };
            DecodeError::new(kind, at)
        })
    }

    /// A definite array header; the count is checked against the bytes left, so a
    /// forged length cannot make a loop run long.
    pub(crate) fn array(&mut self) -> Result<usize> {
        let at = self.offset();
        // A definite head of this major type is what `peek` would classify as Array.
        if let Some((n, h)) = self.fast_head(4) {
            self.advance(h);
            return self.check_count(Some(n), 1, at);
        }
        if self.peek()? != Type::Array {
            return self.err(K::UnexpectedType);
        }
        let n = self.d.array();
        let n = self.lift(at, n)?;
        self.check_count(n, 1, at)
    }

    /// A definite map header; see [`Reader::array`].
    pub(crate) fn map(&mut self) -> Result<usize> {
        let at = self.offset();
        // A definite head of this major type is what `peek` would classify as Map.
        if let Some((n, h)) = self.fast_head(5) {
            self.advance(h);
            return self.check_count(Some(n), 2, at);
        }
        if self.peek()? != Type::Map {
            return self.err(K::UnexpectedType);
        }
        let n = self.d.map();
        let n = self.lift(at, n)?;
        self.check_count(n, 2, at)
    }

    fn check_count(&self, n: Option<u64>, per_item: usize, at: usize) -> Result<usize> {
        let n = n.ok_or(DecodeError::new(K::IndefiniteLength, at))?;
        let n = usize::try_from(n).map_err(|_| DecodeError::new(K::Malformed, at))?;
        if n.saturating_mul(per_item) > self.remaining() {
            return Err(DecodeError::new(K::Malformed, at));
        }
        Ok(n)
    }

    /// Maps a minicbor failure at `at` to our error kinds, looking at the item itself
    /// (only on the error path, so the success path pays for one decode, not two).
    fn fail(&self, at: usize, e: &minicbor::decode::Error) -> DecodeError {
        let mut probe = self.d.clone();
        probe.set_position(at - self.base);
        let kind = match probe.datatype() {
            Ok(Type::BytesIndef | Type::StringIndef | Type::ArrayIndef | Type::MapIndef) => {
                K::IndefiniteLength
            }
            Ok(Type::Unknown(_) | Type::Break) | Err(_) => K::Malformed,
            Ok(_) if e.is_end_of_input() => K::Malformed,
            Ok(_) if e.is_type_mismatch() => K::UnexpectedType,
            Ok(_) => K::IntegerOverflow,
        };
        DecodeError::new(kind, at)
    }

    /// The argument and header length of the next item when it has major type `major`
    /// and a definite argument that the input holds; `None` for anything else.
    ///
    /// The strict methods below take this fast path for the well-formed case and leave
    /// everything else to minicbor, so what they accept and every error they report
    /// (kind and offset) are minicbor's, exactly as before; only the common case no
    /// longer goes through minicbor's generic decoding.
    #[inline]
    fn fast_head(&self, major: u8) -> Option<(u64, usize)> {
        let input = self.d.input();
        let pos = self.d.position();
        let ib = *input.get(pos)?;
        if ib >> 5 != major {
            return None;
        }
        // Arguments up to two bytes: what SUIT's codes, counts, lengths and most values
        // take. Longer ones are rare and left to minicbor (a smaller fast path).
        match ib & 0x1f {
            info @ 0..=23 => Some((u64::from(info), 1)),
            24 => Some((u64::from(*input.get(pos + 1)?), 2)),
            25 => {
                let b = input.get(pos + 1..pos + 3)?;
                Some((b.iter().fold(0u64, |v, &x| (v << 8) | u64::from(x)), 3))
            }
            _ => None,
        }
    }

    /// Moves `n` bytes on (a header the fast path read).
    fn advance(&mut self, n: usize) {
        self.d.set_position(self.d.position() + n);
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        if let Some((v, n)) = self.fast_head(0) {
            self.advance(n);
            return Ok(v);
        }
        let at = self.offset();
        self.d.u64().map_err(|e| self.fail(at, &e))
    }

    /// An unsigned integer that must fit in `u32`.
    pub(crate) fn u32(&mut self) -> Result<u32> {
        let at = self.offset();
        let v = self.u64()?;
        u32::try_from(v).map_err(|_| DecodeError::new(K::IntegerOverflow, at))
    }

    /// Any CBOR integer that fits in `i64` (keys, algorithm ids, command codes).
    pub(crate) fn i64(&mut self) -> Result<i64> {
        if let Some((v, n)) = self.fast_head(0)
            && let Ok(v) = i64::try_from(v)
        {
            self.advance(n);
            return Ok(v);
        }
        if let Some((v, n)) = self.fast_head(1)
            && let Ok(v) = i64::try_from(v)
        {
            self.advance(n);
            return Ok(-1 - v);
        }
        let at = self.offset();
        self.d.i64().map_err(|e| self.fail(at, &e))
    }

    pub(crate) fn is_int(&self) -> bool {
        matches!(self.peek(), Ok(Type::U64 | Type::I64))
    }

    pub(crate) fn bool(&mut self) -> Result<bool> {
        let at = self.offset();
        self.d.bool().map_err(|e| self.fail(at, &e))
    }

    pub(crate) fn null(&mut self) -> Result<()> {
        let at = self.offset();
        self.d.null().map_err(|e| self.fail(at, &e))
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8]> {
        if let Some((len, n)) = self.fast_head(2) {
            let start = self.d.position() + n;
            let input = self.d.input();
            if let Some(b) = usize::try_from(len)
                .ok()
                .and_then(|len| start.checked_add(len))
                .and_then(|end| input.get(start..end))
            {
                self.d.set_position(start + b.len());
                return Ok(b);
            }
        }
        let at = self.offset();
        self.d.bytes().map_err(|e| self.fail(at, &e))
    }

    /// A bstr, returned with its CBOR header (`whole`) and without (`inner`), plus the
    /// absolute offset of `inner`. SUIT digests cover `whole`.
    pub(crate) fn bytes_with_header(&mut self) -> Result<Wrapped<'a>> {
        let start = self.d.position();
        let inner = self.bytes()?;
        let end = self.d.position();
        let whole = self
            .d
            .input()
            .get(start..end)
            .ok_or(DecodeError::new(K::Malformed, self.base + start))?;
        let inner_base = self.base + end - inner.len();
        Ok(Wrapped {
            whole,
            inner,
            inner_base,
        })
    }

    pub(crate) fn str(&mut self) -> Result<&'a str> {
        let at = self.offset();
        self.d.str().map_err(|e| self.fail(at, &e))
    }

    pub(crate) fn tag(&mut self) -> Result<u64> {
        let at = self.offset();
        self.d
            .tag()
            .map(|t| t.as_u64())
            .map_err(|e| self.fail(at, &e))
    }

    /// Skips one item of any type, refusing indefinite lengths and nesting deeper than
    /// `MAX_DEPTH - depth` (an explicit bound instead of minicbor's own skip, whose limits
    /// differ with and without `alloc`).
    pub(crate) fn skip(&mut self, depth: usize) -> Result<()> {
        if depth >= MAX_DEPTH {
            return self.err(K::TooDeep);
        }
        match self.peek()? {
            Type::Array => {
                let n = self.array()?;
                for _ in 0..n {
                    self.skip(depth + 1)?;
                }
                Ok(())
            }
            Type::Map => {
                let n = self.map()?;
                for _ in 0..n {
                    self.skip(depth + 1)?;
                    self.skip(depth + 1)?;
                }
                Ok(())
            }
            Type::Tag => {
                self.tag()?;
                self.skip(depth + 1)
            }
            _ => {
                let at = self.offset();
                let v = self.d.skip();
                self.lift(at, v)
            }
        }
    }

    /// The raw encoding of the next item, which was validated before (so minicbor's own
    /// skip, without our per-item checks, is safe and several times faster).
    pub(crate) fn raw_trusted(&mut self) -> Result<&'a [u8]> {
        let start = self.d.position();
        let at = self.offset();
        self.d.skip().map_err(|e| self.fail(at, &e))?;
        Ok(self.since(start))
    }

    /// The raw encoding of the next item, consumed.
    pub(crate) fn raw_item(&mut self, depth: usize) -> Result<&'a [u8]> {
        let start = self.d.position();
        self.skip(depth)?;
        let end = self.d.position();
        self.d
            .input()
            .get(start..end)
            .ok_or(DecodeError::new(K::Malformed, self.base + start))
    }

    /// Bytes from `start` (a position in this buffer) to the current position.
    pub(crate) fn since(&self, start: usize) -> &'a [u8] {
        self.d
            .input()
            .get(start..self.d.position())
            .unwrap_or_default()
    }

    /// Relative position, to pair with [`Reader::since`].
    pub(crate) fn pos(&self) -> usize {
        self.d.position()
    }

    /// Checks that the `n` key/value pairs of the map whose first key starts at relative
    /// position `first` have distinct keys. Quadratic but allocation-free; maps in SUIT
    /// are small and their length was already bounded by the input size. Call it after
    /// the map's entries were read (validated): it re-walks them with minicbor's skip.
    pub(crate) fn ensure_unique_keys(&self, first: usize, n: usize, depth: usize) -> Result<()> {
        // Fast path: SUIT maps are keyed by small integers; a 128-bit set covers -64..64.
        let mut fast = Reader {
            d: Decoder::new(self.d.input()),
            base: self.base,
        };
        fast.d.set_position(first);
        let mut seen: u128 = 0;
        let mut all_small = true;
        for _ in 0..n {
            let key_at = fast.offset();
            match fast.key_repr(depth)? {
                KeyRepr::Int(k) if (-64..64).contains(&k) => {
                    let bit = 1u128 << ((k + 64) as u32);
                    if seen & bit != 0 {
                        return Err(DecodeError::new(K::DuplicateKey, key_at));
                    }
                    seen |= bit;
                }
                _ => {
                    all_small = false;
                    break;
                }
            }
            fast.raw_trusted()?;
        }
        if all_small {
            return Ok(());
        }
        let mut outer = Reader {
            d: Decoder::new(self.d.input()),
            base: self.base,
        };
        outer.d.set_position(first);
        for i in 0..n {
            let key_at = outer.offset();
            let key = outer.key_repr(depth)?;
            outer.raw_trusted()?;
            let mut inner = Reader {
                d: Decoder::new(self.d.input()),
                base: self.base,
            };
            inner.d.set_position(first);
            for _ in 0..i {
                if inner.key_repr(depth)? == key {
                    return Err(DecodeError::new(K::DuplicateKey, key_at));
                }
                inner.raw_trusted()?;
            }
        }
        Ok(())
    }

    fn key_repr(&mut self, depth: usize) -> Result<KeyRepr<'a>> {
        if self.is_int() {
            let at = self.offset();
            let v = self.d.int();
            let v = self.lift(at, v)?;
            Ok(KeyRepr::Int(i128::from(v)))
        } else {
            self.raw_item(depth).map(KeyRepr::Raw)
        }
    }
}

/// Duplicate keys of a map found while its entries are read, for maps keyed by
/// integers the reader decodes anyway (parameters, the manifest, SUIT_Common, the
/// envelope): what [`Reader::ensure_unique_keys`] finds by walking the map again.
///
/// Keys in 0..64 are noted in a bit set, and the first repeated one is reported once
/// the whole map validated, at the offset of the repeated key, exactly as
/// `ensure_unique_keys` reports it; a map with any other key (a larger integer, a text
/// key, a negative one) is left to `ensure_unique_keys`.
pub(crate) struct KeySet {
    seen: u64,
    duplicate: Option<usize>,
    all_small: bool,
}

impl KeySet {
    pub(crate) fn new() -> Self {
        KeySet {
            seen: 0,
            duplicate: None,
            all_small: true,
        }
    }

    /// Notes integer key `k`, which started at absolute offset `at`.
    pub(crate) fn note(&mut self, k: i64, at: usize) {
        if self.all_small && (0..64).contains(&k) {
            let bit = 1u64 << k;
            if self.seen & bit != 0 && self.duplicate.is_none() {
                self.duplicate = Some(at);
            }
            self.seen |= bit;
        } else {
            self.all_small = false;
        }
    }

    /// Notes a key that is not an integer.
    pub(crate) fn note_other(&mut self) {
        self.all_small = false;
    }

    /// After the `n` entries from relative position `first` were read: the duplicate
    /// key error, if any.
    pub(crate) fn check(&self, r: &Reader<'_>, first: usize, n: usize, depth: usize) -> Result<()> {
        if !self.all_small {
            return r.ensure_unique_keys(first, n, depth);
        }
        match self.duplicate {
            Some(at) => Err(DecodeError::new(K::DuplicateKey, at)),
            None => Ok(()),
        }
    }
}

/// A bstr-wrapped item: see [`Reader::bytes_with_header`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wrapped<'a> {
    /// The bstr with its CBOR header: what SUIT digests cover.
    pub whole: &'a [u8],
    /// The bstr contents: the wrapped CBOR item.
    pub inner: &'a [u8],
    pub(crate) inner_base: usize,
}

impl<'a> Wrapped<'a> {
    /// A reader over the wrapped item.
    pub(crate) fn reader(&self) -> Reader<'a> {
        Reader::new(self.inner, self.inner_base)
    }
}

/// A lean cursor over CBOR that a [`Reader`] has already validated (the interpreter's
/// second pass over an authenticated, strictly decoded manifest).
///
/// It reads item heads directly, with none of the strict checks: the strict pass made
/// them once. It stays safe on any input: every access is bounds-checked and every
/// method returns `None` on anything it does not expect, and the callers then fall back
/// to the strict [`Reader`] at the same position. On validated input the results are the
/// strict reader's; on input that was not validated they are bounded and panic-free but
/// may be more permissive (a lean read that succeeds does not re-check what the strict
/// pass checks: branch counts, nested parameter maps, depth), which is why only the
/// interpreter's second pass, over bytes the strict pass accepted, uses it.
#[derive(Clone)]
pub(crate) struct Trusted<'a> {
    b: &'a [u8],
    pos: usize,
    base: usize,
}

/// CBOR major types, as the trusted reader reports them.
pub(crate) const MAJOR_UINT: u8 = 0;
pub(crate) const MAJOR_NINT: u8 = 1;
pub(crate) const MAJOR_BYTES: u8 = 2;
pub(crate) const MAJOR_TEXT: u8 = 3;
pub(crate) const MAJOR_ARRAY: u8 = 4;
pub(crate) const MAJOR_MAP: u8 = 5;
pub(crate) const MAJOR_TAG: u8 = 6;
/// `false`, `true` and `null` as initial bytes.
pub(crate) const FALSE: u8 = 0xf4;
pub(crate) const TRUE: u8 = 0xf5;
pub(crate) const NULL: u8 = 0xf6;

impl<'a> Trusted<'a> {
    /// A cursor over `bytes`, which start at absolute offset `base`.
    pub(crate) fn new(bytes: &'a [u8], base: usize) -> Self {
        Trusted {
            b: bytes,
            pos: 0,
            base,
        }
    }

    /// Relative position of the next byte.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Absolute offset of the next byte.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// A strict reader at this cursor's position (the fallback on anything unexpected).
    pub(crate) fn strict(&self) -> Reader<'a> {
        let mut r = Reader::new(self.b, self.base);
        r.d.set_position(self.pos);
        r
    }

    /// Moves to where the strict reader `r` (over the same bytes) stands.
    pub(crate) fn sync(&mut self, r: &Reader<'a>) {
        self.pos = r.pos();
    }

    /// The next initial byte, not consumed.
    pub(crate) fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn take(&mut self, n: u64) -> Option<&'a [u8]> {
        let n = usize::try_from(n).ok()?;
        let end = self.pos.checked_add(n)?;
        let s = self.b.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn be<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N as u64)?.try_into().ok()
    }

    /// One item head: major type and argument (length, count, value or tag).
    /// Indefinite lengths and reserved values are `None`.
    #[inline]
    pub(crate) fn head(&mut self) -> Option<(u8, u64)> {
        let ib = self.peek()?;
        self.pos += 1;
        let arg = match ib & 0x1f {
            info @ 0..=23 => u64::from(info),
            24 => u64::from(self.be::<1>()?[0]),
            25 => u64::from(u16::from_be_bytes(self.be()?)),
            26 => u64::from(u32::from_be_bytes(self.be()?)),
            27 => u64::from_be_bytes(self.be()?),
            _ => return None,
        };
        Some((ib >> 5, arg))
    }

    /// An unsigned integer.
    pub(crate) fn uint(&mut self) -> Option<u64> {
        match self.head()? {
            (MAJOR_UINT, v) => Some(v),
            _ => None,
        }
    }

    /// An unsigned integer that fits in `u32`.
    pub(crate) fn u32(&mut self) -> Option<u32> {
        u32::try_from(self.uint()?).ok()
    }

    /// Any integer that fits in `i64`.
    pub(crate) fn int(&mut self) -> Option<i64> {
        match self.head()? {
            (MAJOR_UINT, v) => i64::try_from(v).ok(),
            (MAJOR_NINT, v) => i64::try_from(v).ok().map(|v| -1 - v),
            _ => None,
        }
    }

    /// `true` or `false`.
    pub(crate) fn bool(&mut self) -> Option<bool> {
        let v = match self.peek()? {
            FALSE => false,
            TRUE => true,
            _ => return None,
        };
        self.pos += 1;
        Some(v)
    }

    /// A byte string's contents.
    pub(crate) fn bytes(&mut self) -> Option<&'a [u8]> {
        match self.head()? {
            (MAJOR_BYTES, n) => self.take(n),
            _ => None,
        }
    }

    /// A byte string with and without its header (see [`Reader::bytes_with_header`]).
    pub(crate) fn wrapped(&mut self) -> Option<Wrapped<'a>> {
        let start = self.pos;
        let inner = self.bytes()?;
        let whole = self.b.get(start..self.pos)?;
        Some(Wrapped {
            whole,
            inner,
            inner_base: self.base + self.pos - inner.len(),
        })
    }

    /// A text string (UTF-8 checked again: it costs little and needs no `unsafe`).
    pub(crate) fn str(&mut self) -> Option<&'a str> {
        match self.head()? {
            (MAJOR_TEXT, n) => core::str::from_utf8(self.take(n)?).ok(),
            _ => None,
        }
    }

    /// An array header's count.
    pub(crate) fn array(&mut self) -> Option<usize> {
        match self.head()? {
            (MAJOR_ARRAY, n) => usize::try_from(n).ok(),
            _ => None,
        }
    }

    /// A map header's count of pairs.
    pub(crate) fn map(&mut self) -> Option<usize> {
        match self.head()? {
            (MAJOR_MAP, n) => usize::try_from(n).ok(),
            _ => None,
        }
    }

    /// Skips one whole item, without recursion: a count of items still to skip. Each
    /// step consumes at least one byte, so a forged count ends at the end of the input.
    pub(crate) fn skip(&mut self) -> Option<()> {
        let mut pending: u64 = 1;
        while pending > 0 {
            pending -= 1;
            let (major, arg) = self.head()?;
            match major {
                MAJOR_BYTES | MAJOR_TEXT => {
                    self.take(arg)?;
                }
                MAJOR_ARRAY => pending = pending.checked_add(arg)?,
                MAJOR_MAP => pending = pending.checked_add(arg.checked_mul(2)?)?,
                MAJOR_TAG => pending = pending.checked_add(1)?,
                _ => {}
            }
        }
        Some(())
    }

    /// Bytes from relative position `start` to the current position.
    pub(crate) fn since(&self, start: usize) -> Option<&'a [u8]> {
        self.b.get(start..self.pos)
    }
}
