//! Command sequences: a flat array of `code, argument` pairs (`suit-codes.md` §4).
//!
//! A sequence is validated completely when the manifest is decoded (nested try-each
//! branches and run-sequence bodies included, up to [`MAX_SEQUENCE_DEPTH`]); the
//! processor then walks it with [`CommandSequence::iter`] without keeping any copy.

use crate::cbor::{self, Reader, Result, Trusted};
use crate::error::{DecodeError, DecodeErrorKind as K};
use crate::parameter::Parameters;

/// How many sequences may nest (a try-each branch or run-sequence body inside another).
/// The processor recurses once per level, so this bounds its stack.
pub const MAX_SEQUENCE_DEPTH: usize = 6;

/// Conditions: commands that test and never change state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Condition {
    /// 1
    VendorIdentifier,
    /// 2
    ClassIdentifier,
    /// 3
    ImageMatch,
    /// 4 (update management)
    UseBefore,
    /// 5
    ComponentSlot,
    /// 6
    CheckContent,
    /// 7 (trust domains)
    DependencyIntegrity,
    /// 8 (trust domains)
    IsDependency,
    /// 14: always fails.
    Abort,
    /// 24
    DeviceIdentifier,
    /// 25 (update management)
    ImageNotMatch,
    /// 26 (update management)
    MinimumBattery,
    /// 27 (update management)
    UpdateAuthorized,
    /// 28 (update management)
    Version,
}

/// Directives that take a reporting policy as argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Directive {
    /// 11 (trust domains)
    ProcessDependency,
    /// 18: write the `content` parameter into the component.
    Write,
    /// 21
    Fetch,
    /// 22
    Copy,
    /// 23
    Invoke,
    /// 29 (update management)
    Wait,
    /// 31
    Swap,
    /// 33 (trust domains)
    Unlink,
}

/// A reporting policy: bit 0 record on success, 1 record on failure, 2 sysinfo on
/// success, 3 sysinfo on failure (`suit-codes.md` §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ReportingPolicy(pub u32);

impl ReportingPolicy {
    /// Send a record when the command succeeds.
    pub fn record_on_success(self) -> bool {
        self.0 & 1 != 0
    }
    /// Send a record when the command fails.
    pub fn record_on_failure(self) -> bool {
        self.0 & 2 != 0
    }
    /// Send system information when the command succeeds.
    pub fn sysinfo_on_success(self) -> bool {
        self.0 & 4 != 0
    }
    /// Send system information when the command fails.
    pub fn sysinfo_on_failure(self) -> bool {
        self.0 & 8 != 0
    }
}

/// Argument of set-component-index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexArg<'a> {
    /// `true`: every component.
    All,
    /// One index.
    One(u32),
    /// A list of indices.
    List(IndexList<'a>),
}

/// A validated `[+ uint]` of component indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexList<'a> {
    raw: &'a [u8],
}

impl<'a> IndexList<'a> {
    /// The indices in order.
    pub fn iter(&self) -> IndexIter<'a> {
        let mut r = Trusted::new(self.raw, 0);
        let left = r.array().unwrap_or(0);
        IndexIter { r, left }
    }
}

/// Iterator over an [`IndexList`].
#[derive(Clone)]
pub struct IndexIter<'a> {
    // Validated when the command was decoded: the lean reader suffices.
    r: Trusted<'a>,
    left: usize,
}

impl Iterator for IndexIter<'_> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        self.r.u32()
    }
}

/// Argument of try-each: two or more sequences, optionally followed by `nil`
/// ("if every branch fails, carry on").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TryEach<'a> {
    raw: &'a [u8],
    base: usize,
    /// Whether the list ends with `nil`.
    pub has_empty_fallback: bool,
}

impl<'a> TryEach<'a> {
    /// The branches in order.
    pub fn branches(&self) -> impl Iterator<Item = Result<CommandSequence<'a>>> + use<'a> {
        // Validated when the command was decoded: the lean reader, with the strict one
        // only to report what it cannot read.
        let mut r = Trusted::new(self.raw, self.base);
        let n = r.array().unwrap_or(0);
        let count = if self.has_empty_fallback {
            n.saturating_sub(1)
        } else {
            n
        };
        (0..count).map(move |_| {
            // A failed lean read may have moved its cursor: try on a copy, and on failure
            // read strictly from the position before it, moving on past what it read.
            let mut lean = r.clone();
            let w = match lean.wrapped() {
                Some(w) => {
                    r = lean;
                    w
                }
                None => {
                    let mut s = r.strict();
                    let w = s.bytes_with_header()?;
                    r.sync(&s);
                    w
                }
            };
            Ok(CommandSequence {
                raw: w.inner,
                base: w.inner_base,
            })
        })
    }
}

/// Argument of a custom (negative) command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CustomArg<'a> {
    /// bstr
    Bytes(&'a [u8]),
    /// tstr
    Text(&'a str),
    /// int
    Int(i64),
    /// nil
    Nil,
}

/// A map keyed by component index (override-multiple, copy-params), kept encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexedMap<'a> {
    raw: &'a [u8],
    base: usize,
}

impl<'a> IndexedMap<'a> {
    /// For override-multiple: `(component index, parameters)` pairs.
    pub fn parameters(&self) -> impl Iterator<Item = Result<(u32, Parameters<'a>)>> + use<'a> {
        let mut r = Reader::new(self.raw, self.base);
        let n = r.map().unwrap_or(0);
        (0..n).map(move |_| Ok((r.u32()?, Parameters::read(&mut r, 0, false)?)))
    }

    /// For copy-params: `(source index, parameter codes)` pairs, codes as an iterator.
    pub fn code_lists(&self) -> impl Iterator<Item = Result<(u32, CodeList<'a>)>> + use<'a> {
        let mut r = Reader::new(self.raw, self.base);
        let n = r.map().unwrap_or(0);
        (0..n).map(move |_| {
            let idx = r.u32()?;
            let start = r.pos();
            let k = r.array()?;
            for _ in 0..k {
                r.i64()?;
            }
            Ok((
                idx,
                CodeList {
                    raw: r.since(start),
                },
            ))
        })
    }
}

/// A validated `[+ int]` of parameter codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeList<'a> {
    raw: &'a [u8],
}

impl CodeList<'_> {
    /// The codes.
    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        let mut r = Reader::new(self.raw, 0);
        let n = r.array().unwrap_or(0);
        (0..n).map_while(move |_| r.i64().ok())
    }
}

/// One command with its argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command<'a> {
    /// A condition and its reporting policy.
    Condition(Condition, ReportingPolicy),
    /// A directive that takes a reporting policy.
    Directive(Directive, ReportingPolicy),
    /// 12
    SetComponentIndex(IndexArg<'a>),
    /// 15
    TryEach(TryEach<'a>),
    /// 19 (trust domains): set only parameters that are still unset.
    SetParameters(Parameters<'a>),
    /// 20: always replace.
    OverrideParameters(Parameters<'a>),
    /// 32
    RunSequence(CommandSequence<'a>),
    /// 34 (update management)
    OverrideMultiple(IndexedMap<'a>),
    /// 35 (update management)
    CopyParams(IndexedMap<'a>),
    /// A negative code with its argument.
    Custom(i64, CustomArg<'a>),
}

impl Command<'_> {
    /// The command's code on the wire.
    pub fn code(&self) -> i64 {
        match self {
            Command::Condition(c, _) => condition_code(*c),
            Command::Directive(d, _) => directive_code(*d),
            Command::SetComponentIndex(_) => 12,
            Command::TryEach(_) => 15,
            Command::SetParameters(_) => 19,
            Command::OverrideParameters(_) => 20,
            Command::RunSequence(_) => 32,
            Command::OverrideMultiple(_) => 34,
            Command::CopyParams(_) => 35,
            Command::Custom(c, _) => *c,
        }
    }
}

impl Condition {
    /// The spec's name, without the `condition-` prefix.
    pub fn name(self) -> &'static str {
        match self {
            Condition::VendorIdentifier => "vendor-identifier",
            Condition::ClassIdentifier => "class-identifier",
            Condition::ImageMatch => "image-match",
            Condition::UseBefore => "use-before",
            Condition::ComponentSlot => "component-slot",
            Condition::CheckContent => "check-content",
            Condition::DependencyIntegrity => "dependency-integrity",
            Condition::IsDependency => "is-dependency",
            Condition::Abort => "abort",
            Condition::DeviceIdentifier => "device-identifier",
            Condition::ImageNotMatch => "image-not-match",
            Condition::MinimumBattery => "minimum-battery",
            Condition::UpdateAuthorized => "update-authorized",
            Condition::Version => "version",
        }
    }
}

/// The code of a condition.
pub fn condition_code(c: Condition) -> i64 {
    match c {
        Condition::VendorIdentifier => 1,
        Condition::ClassIdentifier => 2,
        Condition::ImageMatch => 3,
        Condition::UseBefore => 4,
        Condition::ComponentSlot => 5,
        Condition::CheckContent => 6,
        Condition::DependencyIntegrity => 7,
        Condition::IsDependency => 8,
        Condition::Abort => 14,
        Condition::DeviceIdentifier => 24,
        Condition::ImageNotMatch => 25,
        Condition::MinimumBattery => 26,
        Condition::UpdateAuthorized => 27,
        Condition::Version => 28,
    }
}

/// The code of a directive.
pub fn directive_code(d: Directive) -> i64 {
    match d {
        Directive::ProcessDependency => 11,
        Directive::Write => 18,
        Directive::Fetch => 21,
        Directive::Copy => 22,
        Directive::Invoke => 23,
        Directive::Wait => 29,
        Directive::Swap => 31,
        Directive::Unlink => 33,
    }
}

fn condition_of(code: i64) -> Option<Condition> {
    Some(match code {
        1 => Condition::VendorIdentifier,
        2 => Condition::ClassIdentifier,
        3 => Condition::ImageMatch,
        4 => Condition::UseBefore,
        5 => Condition::ComponentSlot,
        6 => Condition::CheckContent,
        7 => Condition::DependencyIntegrity,
        8 => Condition::IsDependency,
        14 => Condition::Abort,
        24 => Condition::DeviceIdentifier,
        25 => Condition::ImageNotMatch,
        26 => Condition::MinimumBattery,
        27 => Condition::UpdateAuthorized,
        28 => Condition::Version,
        _ => return None,
    })
}

fn directive_of(code: i64) -> Option<Directive> {
    Some(match code {
        11 => Directive::ProcessDependency,
        18 => Directive::Write,
        21 => Directive::Fetch,
        22 => Directive::Copy,
        23 => Directive::Invoke,
        29 => Directive::Wait,
        31 => Directive::Swap,
        33 => Directive::Unlink,
        _ => return None,
    })
}

/// A command sequence (`bstr .cbor SUIT_Command_Sequence`), validated, kept encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandSequence<'a> {
    raw: &'a [u8],
    base: usize,
}

impl<'a> CommandSequence<'a> {
    /// Reads a bstr-wrapped sequence and validates all of it. `depth` is the nesting
    /// level (0 for a manifest member), `shared` restricts it to the commands the spec
    /// allows in the shared sequence.
    pub(crate) fn read_wrapped(r: &mut Reader<'a>, depth: usize, shared: bool) -> Result<Self> {
        let w = r.bytes_with_header()?;
        let mut inner = w.reader();
        Self::validate(&mut inner, depth, shared)?;
        inner.finish()?;
        Ok(CommandSequence {
            raw: w.inner,
            base: w.inner_base,
        })
    }

    /// A sequence already validated by `read_wrapped` (or `read_severable`).
    pub(crate) fn from_validated(w: crate::cbor::Wrapped<'a>) -> Self {
        CommandSequence {
            raw: w.inner,
            base: w.inner_base,
        }
    }

    /// Decodes and validates a sequence filling `bytes` (the contents of the bstr).
    pub fn decode(bytes: &'a [u8]) -> core::result::Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, 0);
        Self::validate(&mut r, 0, false)?;
        r.finish()?;
        Ok(CommandSequence {
            raw: bytes,
            base: 0,
        })
    }

    fn validate(r: &mut Reader<'a>, depth: usize, shared: bool) -> Result<()> {
        if depth >= MAX_SEQUENCE_DEPTH {
            return r.err(K::TooDeep);
        }
        let n = r.array()?;
        if n == 0 || n % 2 != 0 {
            return r.err(K::InvalidValue);
        }
        for _ in 0..n / 2 {
            read_command(r, depth, shared)?;
        }
        Ok(())
    }

    /// The encoded array (without the bstr header).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// Absolute offset of this sequence in the buffer it was decoded from.
    pub fn offset(&self) -> usize {
        self.base
    }

    /// The commands in order, each with its offset relative to [`CommandSequence::offset`].
    pub fn iter(&self) -> CommandIter<'a> {
        let mut r = Trusted::new(self.raw, self.base);
        let left = r.array().map(|n| n / 2).unwrap_or(0);
        CommandIter { r, left }
    }
}

/// Iterator over a [`CommandSequence`]: `(offset within the sequence, command)`.
#[derive(Clone)]
pub struct CommandIter<'a> {
    r: Trusted<'a>,
    left: usize,
}

impl<'a> Iterator for CommandIter<'a> {
    type Item = Result<(usize, Command<'a>)>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let at = self.r.pos();
        // Already validated when the manifest was decoded: the lean reader first; on
        // anything it does not expect, the strict reader from the same position (its
        // result, error included, is what this iterator always returned).
        let mut probe = self.r.clone();
        if let Some(c) = read_lean(&mut probe) {
            self.r = probe;
            return Some(Ok((at, c)));
        }
        Some(strict_fallback(&mut self.r).map(|c| (at, c)))
    }
}

/// The strict read of one command at `r`'s position, for [`CommandIter`]: kept out of
/// line, as only the rare commands the lean reader leaves to it take it
/// (override-multiple, copy-params, custom commands). On a validated sequence it reads
/// what the validation read, so it yields the same command.
#[inline(never)]
fn strict_fallback<'a>(r: &mut Trusted<'a>) -> Result<Command<'a>> {
    let mut strict = r.strict();
    let c = read_command(&mut strict, 0, false);
    r.sync(&strict);
    c
}

/// Reads one command of a validated sequence with the lean reader: the code, then its
/// argument, nested sequences and parameter maps kept encoded (they were validated with
/// the manifest). `None` for anything unexpected: the caller then reads strictly.
fn read_lean<'a>(r: &mut Trusted<'a>) -> Option<Command<'a>> {
    let code = r.int()?;
    if let Some(c) = condition_of(code) {
        return Some(Command::Condition(c, ReportingPolicy(r.u32()?)));
    }
    if let Some(d) = directive_of(code) {
        return Some(Command::Directive(d, ReportingPolicy(r.u32()?)));
    }
    Some(match code {
        12 => match r.peek()? {
            cbor::TRUE => {
                r.bool()?;
                Command::SetComponentIndex(IndexArg::All)
            }
            b if b >> 5 == cbor::MAJOR_ARRAY => {
                let start = r.pos();
                let n = r.array()?;
                if n == 0 {
                    return None;
                }
                for _ in 0..n {
                    r.u32()?;
                }
                Command::SetComponentIndex(IndexArg::List(IndexList {
                    raw: r.since(start)?,
                }))
            }
            _ => Command::SetComponentIndex(IndexArg::One(r.u32()?)),
        },
        15 => {
            let base = r.offset();
            let start = r.pos();
            let n = r.array()?;
            let mut has_nil = false;
            for i in 0..n {
                if i + 1 == n && r.peek()? == cbor::NULL {
                    r.head()?;
                    has_nil = true;
                } else {
                    r.bytes()?;
                }
            }
            Command::TryEach(TryEach {
                raw: r.since(start)?,
                base,
                has_empty_fallback: has_nil,
            })
        }
        19 | 20 => {
            let base = r.offset();
            let start = r.pos();
            r.skip()?;
            let p = Parameters::trusted(r.since(start)?, base);
            if code == 19 {
                Command::SetParameters(p)
            } else {
                Command::OverrideParameters(p)
            }
        }
        32 => Command::RunSequence(CommandSequence::from_validated(r.wrapped()?)),
        // The rest (override-multiple, copy-params, custom commands) is rare: read
        // strictly, as before.
        _ => return None,
    })
}

fn read_command<'a>(r: &mut Reader<'a>, depth: usize, shared: bool) -> Result<Command<'a>> {
    let at = r.offset();
    let code = r.i64()?;
    if shared && !(condition_of(code).is_some() || matches!(code, 12 | 15 | 20 | 32)) {
        return Err(DecodeError::new(
            K::CommandNotAllowedInSharedSequence(code),
            at,
        ));
    }
    if let Some(c) = condition_of(code) {
        return Ok(Command::Condition(c, ReportingPolicy(r.u32()?)));
    }
    if let Some(d) = directive_of(code) {
        return Ok(Command::Directive(d, ReportingPolicy(r.u32()?)));
    }
    Ok(match code {
        12 => {
            use minicbor::data::Type as T;
            match r.peek()? {
                T::Bool => {
                    if !r.bool()? {
                        return Err(DecodeError::new(K::InvalidValue, at));
                    }
                    Command::SetComponentIndex(IndexArg::All)
                }
                T::Array => {
                    let start = r.pos();
                    let n = r.array()?;
                    if n == 0 {
                        return r.err(K::InvalidValue);
                    }
                    for _ in 0..n {
                        r.u32()?;
                    }
                    Command::SetComponentIndex(IndexArg::List(IndexList {
                        raw: r.since(start),
                    }))
                }
                _ => Command::SetComponentIndex(IndexArg::One(r.u32()?)),
            }
        }
        15 => {
            let base = r.offset();
            let start = r.pos();
            let n = r.array()?;
            let mut has_nil = false;
            for i in 0..n {
                if i + 1 == n && r.peek()? == minicbor::data::Type::Null {
                    r.null()?;
                    has_nil = true;
                } else {
                    CommandSequence::read_wrapped(r, depth + 1, shared)?;
                }
            }
            // `[2* bstr, ?nil]`: at least two branches.
            if n - usize::from(has_nil) < 2 {
                return Err(DecodeError::new(K::InvalidValue, base));
            }
            Command::TryEach(TryEach {
                raw: r.since(start),
                base,
                has_empty_fallback: has_nil,
            })
        }
        19 => Command::SetParameters(Parameters::read(r, depth, shared)?),
        20 => Command::OverrideParameters(Parameters::read(r, depth, shared)?),
        32 => Command::RunSequence(CommandSequence::read_wrapped(r, depth + 1, shared)?),
        34 | 35 => {
            let base = r.offset();
            let start = r.pos();
            let n = r.map()?;
            let first = r.pos();
            if n == 0 {
                return Err(DecodeError::new(K::InvalidValue, base));
            }
            for _ in 0..n {
                r.u32()?;
                if code == 34 {
                    Parameters::read(r, depth, false)?;
                } else {
                    let k = r.array()?;
                    if k == 0 {
                        return r.err(K::InvalidValue);
                    }
                    for _ in 0..k {
                        r.i64()?;
                    }
                }
            }
            r.ensure_unique_keys(first, n, depth)?;
            let m = IndexedMap {
                raw: r.since(start),
                base,
            };
            if code == 34 {
                Command::OverrideMultiple(m)
            } else {
                Command::CopyParams(m)
            }
        }
        c if c < 0 => {
            use minicbor::data::Type as T;
            let arg = match r.peek()? {
                T::Bytes => CustomArg::Bytes(r.bytes()?),
                T::String => CustomArg::Text(r.str()?),
                T::Null => {
                    r.null()?;
                    CustomArg::Nil
                }
                _ if r.is_int() => CustomArg::Int(r.i64()?),
                _ => return r.err(K::UnexpectedType),
            };
            Command::Custom(c, arg)
        }
        c => return Err(DecodeError::new(K::UnknownCommand(c), at)),
    })
}
