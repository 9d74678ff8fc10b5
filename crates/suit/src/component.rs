//! Component identifiers (`[* bstr]`) and the component list of SUIT_Common.

use crate::MAX_COMPONENTS;
use crate::cbor::{Reader, Result};
use crate::error::DecodeErrorKind as K;

/// A SUIT_Component_Identifier: an array of byte strings, kept encoded.
///
/// Kept as the raw array so that comparing two identifiers is a byte comparison and
/// iterating needs no storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ComponentId<'a> {
    raw: &'a [u8],
}

impl<'a> ComponentId<'a> {
    pub(crate) fn read(r: &mut Reader<'a>) -> Result<Self> {
        let start = r.pos();
        let n = r.array()?;
        for _ in 0..n {
            r.bytes()?;
        }
        Ok(ComponentId {
            raw: r.since(start),
        })
    }

    /// Decodes an identifier that fills `raw` exactly.
    pub fn decode(raw: &'a [u8]) -> core::result::Result<Self, crate::DecodeError> {
        let mut r = Reader::new(raw, 0);
        let id = Self::read(&mut r)?;
        r.finish()?;
        Ok(id)
    }

    /// The encoded array.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// The byte-string segments, in order.
    pub fn segments(&self) -> Segments<'a> {
        let mut r = Reader::new(self.raw, 0);
        let left = r.array().unwrap_or(0);
        Segments { r, left }
    }
}

/// Iterator over the segments of a [`ComponentId`].
#[derive(Clone)]
pub struct Segments<'a> {
    r: Reader<'a>,
    left: usize,
}

impl<'a> Iterator for Segments<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        self.r.bytes().ok()
    }
}

/// The `suit-components` list: between 1 and [`MAX_COMPONENTS`] identifiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Components<'a> {
    raw: &'a [u8],
    len: usize,
}

impl<'a> Components<'a> {
    pub(crate) fn read(r: &mut Reader<'a>) -> Result<Self> {
        let start = r.pos();
        let len = r.array()?;
        if len == 0 {
            return r.err(K::InvalidValue);
        }
        if len > MAX_COMPONENTS {
            return r.err(K::TooManyComponents);
        }
        for _ in 0..len {
            ComponentId::read(r)?;
        }
        Ok(Components {
            raw: r.since(start),
            len,
        })
    }

    /// Number of components (0 when the manifest declares none).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no component is declared.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The identifier at `index`.
    pub fn get(&self, index: usize) -> Option<ComponentId<'a>> {
        self.iter().nth(index)
    }

    /// The identifiers, in index order.
    pub fn iter(&self) -> impl Iterator<Item = ComponentId<'a>> + use<'a> {
        let mut r = Reader::new(self.raw, 0);
        let n = if self.raw.is_empty() {
            0
        } else {
            r.array().unwrap_or(0)
        };
        (0..n).map_while(move |_| ComponentId::read(&mut r).ok())
    }
}
