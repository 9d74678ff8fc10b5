//! A small deterministic CBOR encoder for authoring (RFC 8949 §4.2.1, core deterministic
//! encoding): shortest integer and length heads, definite lengths only, map entries
//! sorted by the bytewise order of their encoded keys, duplicate keys refused.
//!
//! The manifest is hashed and signed as encoded, and the spec's examples are compared
//! byte for byte, so the encoding must be a function of the model alone: this is why the
//! authoring side builds [`Item`] trees and never hands a `HashMap` to a serializer.

/// One CBOR data item, as the authoring side builds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// An integer (major type 0 or 1).
    Int(i128),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A text string.
    Text(String),
    /// An array.
    Array(Vec<Item>),
    /// A map; entries are sorted when encoded.
    Map(Vec<(Item, Item)>),
    /// A tagged item.
    Tag(u64, Box<Item>),
    /// `null` (e.g. the trailing empty branch of try-each).
    Null,
    /// `bstr .cbor item`: a byte string holding the encoding of the inner item.
    Wrapped(Box<Item>),
    /// Bytes that already are one encoded item, copied verbatim (a COSE block).
    Raw(Vec<u8>),
}

/// A map had the same key twice: not deterministic, and refused by the device decoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey(pub Vec<u8>);

impl std::fmt::Display for DuplicateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "duplicate CBOR map key h'{}'", hex::encode(&self.0))
    }
}

impl std::error::Error for DuplicateKey {}

impl Item {
    /// An unsigned or negative integer.
    pub fn int(v: impl Into<i128>) -> Item {
        Item::Int(v.into())
    }

    /// `bstr .cbor item`.
    pub fn wrap(item: Item) -> Item {
        Item::Wrapped(Box::new(item))
    }

    /// A map from `(key, value)` pairs with integer keys.
    pub fn int_map(entries: impl IntoIterator<Item = (i64, Item)>) -> Item {
        Item::Map(
            entries
                .into_iter()
                .map(|(k, v)| (Item::int(k), v))
                .collect(),
        )
    }

    /// The deterministic encoding.
    ///
    /// # Errors
    /// [`DuplicateKey`] if any map (at any depth) repeats a key.
    pub fn encode(&self) -> Result<Vec<u8>, DuplicateKey> {
        let mut out = Vec::new();
        self.encode_into(&mut out)?;
        Ok(out)
    }

    fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), DuplicateKey> {
        match self {
            Item::Int(v) => {
                if *v >= 0 {
                    head(out, 0, u64::try_from(*v).unwrap_or(u64::MAX));
                } else {
                    head(out, 1, u64::try_from(-1 - *v).unwrap_or(u64::MAX));
                }
            }
            Item::Bytes(b) => {
                head(out, 2, b.len() as u64);
                out.extend_from_slice(b);
            }
            Item::Text(t) => {
                head(out, 3, t.len() as u64);
                out.extend_from_slice(t.as_bytes());
            }
            Item::Array(items) => {
                head(out, 4, items.len() as u64);
                for i in items {
                    i.encode_into(out)?;
                }
            }
            Item::Map(entries) => {
                let mut encoded = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    encoded.push((k.encode()?, v.encode()?));
                }
                encoded.sort_by(|a, b| a.0.cmp(&b.0));
                if let Some(w) = encoded.windows(2).find(|w| w[0].0 == w[1].0) {
                    return Err(DuplicateKey(w[0].0.clone()));
                }
                head(out, 5, encoded.len() as u64);
                for (k, v) in encoded {
                    out.extend_from_slice(&k);
                    out.extend_from_slice(&v);
                }
            }
            Item::Tag(t, inner) => {
                head(out, 6, *t);
                inner.encode_into(out)?;
            }
            Item::Null => out.push(0xf6),
            Item::Wrapped(inner) => {
                let bytes = inner.encode()?;
                head(out, 2, bytes.len() as u64);
                out.extend_from_slice(&bytes);
            }
            Item::Raw(bytes) => out.extend_from_slice(bytes),
        }
        Ok(())
    }
}

/// The shortest head for `major` and argument `v`.
pub fn head(out: &mut Vec<u8>, major: u8, v: u64) {
    let m = major << 5;
    if v < 24 {
        out.push(m | v as u8);
    } else if let Ok(b) = u8::try_from(v) {
        out.extend_from_slice(&[m | 24, b]);
    } else if let Ok(s) = u16::try_from(v) {
        out.push(m | 25);
        out.extend_from_slice(&s.to_be_bytes());
    } else if let Ok(w) = u32::try_from(v) {
        out.push(m | 26);
        out.extend_from_slice(&w.to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// `bytes` as a CBOR byte string (head + content).
pub fn bstr(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 9);
    head(&mut out, 2, bytes.len() as u64);
    out.extend_from_slice(bytes);
    out
}

/// Where one encoded item ends, starting at `at`; `None` if `bytes` is not well-formed
/// there (truncated, reserved additional info, indefinite length, too deep).
pub fn item_end(bytes: &[u8], at: usize) -> Option<usize> {
    item_end_depth(bytes, at, 0)
}

fn item_end_depth(bytes: &[u8], at: usize, depth: usize) -> Option<usize> {
    if depth > 64 {
        return None;
    }
    let (major, arg, mut pos) = read_head(bytes, at)?;
    match major {
        0 | 1 | 7 => Some(pos),
        2 | 3 => {
            let end = pos.checked_add(usize::try_from(arg).ok()?)?;
            (end <= bytes.len()).then_some(end)
        }
        4 | 5 => {
            let n = if major == 5 { arg.checked_mul(2)? } else { arg };
            for _ in 0..n {
                pos = item_end_depth(bytes, pos, depth + 1)?;
            }
            Some(pos)
        }
        6 => item_end_depth(bytes, pos, depth + 1),
        _ => None,
    }
}

/// `(major, argument, position after the head)`; `None` for indefinite lengths or
/// truncation. For major 7 the argument is the simple value or the float's bits.
pub fn read_head(bytes: &[u8], at: usize) -> Option<(u8, u64, usize)> {
    let first = *bytes.get(at)?;
    let major = first >> 5;
    let info = first & 0x1f;
    let width = match info {
        0..=23 => return Some((major, u64::from(info), at + 1)),
        24 => 1,
        25 => 2,
        26 => 4,
        27 => 8,
        _ => return None,
    };
    let raw = bytes.get(at + 1..at + 1 + width)?;
    let v = raw.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    Some((major, v, at + 1 + width))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(i: &Item) -> String {
        hex::encode(i.encode().unwrap())
    }

    #[test]
    fn integers_are_shortest() {
        for (v, want) in [
            (0i128, "00"),
            (23, "17"),
            (24, "1818"),
            (255, "18ff"),
            (256, "190100"),
            (34768, "1987d0"),
            (65536, "1a00010000"),
            (1 << 32, "1b0000000100000000"),
            (-1, "20"),
            (-16, "2f"),
            (-46, "382d"),
            (-257, "390100"),
        ] {
            assert_eq!(enc(&Item::Int(v)), want, "{v}");
        }
    }

    #[test]
    fn maps_sort_bytewise_and_refuse_duplicates() {
        // 24 (0x1818) sorts after 23 (0x17) and before -1 (0x20); a text key after all.
        let m = Item::Map(vec![
            (Item::Text("a".into()), Item::Null),
            (Item::int(-1), Item::Null),
            (Item::int(24), Item::Null),
            (Item::int(23), Item::Null),
            (Item::Array(vec![Item::Bytes(vec![0])]), Item::Null),
        ]);
        assert_eq!(enc(&m), "a517f61818f620f66161f6814100f6");
        let dup = Item::int_map([(1, Item::Null), (1, Item::int(2))]);
        assert_eq!(dup.encode(), Err(DuplicateKey(vec![1])));
    }

    #[test]
    fn wrapped_and_raw() {
        let w = Item::wrap(Item::Array(vec![Item::int(3), Item::int(15)]));
        assert_eq!(enc(&w), "4382030f");
        assert_eq!(enc(&Item::Raw(vec![0xf6])), "f6");
        assert_eq!(bstr(&[1, 2]), [0x42, 1, 2]);
    }

    #[test]
    fn item_end_walks_one_item() {
        let bytes = Item::Array(vec![
            Item::Tag(18, Box::new(Item::Map(vec![]))),
            Item::Text("xy".into()),
            Item::Bytes(vec![0; 30]),
        ])
        .encode()
        .unwrap();
        assert_eq!(item_end(&bytes, 0), Some(bytes.len()));
        assert_eq!(item_end(&bytes[..bytes.len() - 1], 0), None);
        assert_eq!(item_end(&[0x9f], 0), None, "indefinite length");
    }
}
