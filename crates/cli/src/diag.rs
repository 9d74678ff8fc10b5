//! CBOR diagnostic notation (RFC 8949 §8) for the parts of a manifest that have no
//! SUIT-specific rendering: the text map, bstr-wrapped parameter values, COSE headers.
//!
//! The text map uses arrays (component identifiers) as map keys, which is why this goes
//! through `ciborium::Value` and not a struct: any well-formed item renders.

use ciborium::Value;

/// Lines longer than this are broken at container boundaries by [`pretty`].
const WIDTH: usize = 96;

/// Decodes exactly one CBOR item filling `bytes`; `None` if it is not one.
pub fn decode(bytes: &[u8]) -> Option<Value> {
    let mut cursor = std::io::Cursor::new(bytes);
    let v: Value = ciborium::from_reader(&mut cursor).ok()?;
    (usize::try_from(cursor.position()).ok()? == bytes.len()).then_some(v)
}

/// Diagnostic notation of the item in `bytes`, or `h'…'` if it is not one CBOR item.
pub fn of_bytes(bytes: &[u8]) -> String {
    decode(bytes).map_or_else(|| format!("h'{}'", hex::encode(bytes)), |v| one_line(&v))
}

/// `<<item>>`: the notation for a bstr that wraps an encoded item.
pub fn embedded(bytes: &[u8]) -> String {
    match decode(bytes) {
        Some(v) => format!("<<{}>>", one_line(&v)),
        None => format!("h'{}'", hex::encode(bytes)),
    }
}

/// Marks a byte string that [`expand`] decoded: rendered `<<item>>`. The number is one
/// no real tag uses in SUIT (2^64 - 1 is reserved as invalid by RFC 8949 §9.2).
const EMBEDDED: u64 = u64::MAX;

/// `v` with every byte string that holds exactly one encoded array, map or tagged item
/// replaced by that item, recursively, so SUIT's `bstr .cbor` layers render as
/// `<<…>>`. Other byte strings (digests, signatures, images) stay `h'…'`; a random
/// string that happens to be one well-formed container is shown decoded too, which is
/// why this is only for reading.
pub fn expand(v: Value) -> Value {
    match v {
        Value::Bytes(b) => match decode(&b) {
            Some(inner @ (Value::Array(_) | Value::Map(_) | Value::Tag(..))) => {
                Value::Tag(EMBEDDED, Box::new(expand(inner)))
            }
            _ => Value::Bytes(b),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(expand).collect()),
        Value::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (expand(k), expand(v)))
                .collect(),
        ),
        Value::Tag(t, inner) => Value::Tag(t, Box::new(expand(*inner))),
        other => other,
    }
}

/// The whole item on one line.
pub fn one_line(v: &Value) -> String {
    let mut s = String::new();
    write(v, &mut s);
    s
}

fn write(v: &Value, s: &mut String) {
    match v {
        Value::Integer(i) => s.push_str(&i128::from(*i).to_string()),
        Value::Bytes(b) => {
            s.push_str("h'");
            s.push_str(&hex::encode(b));
            s.push('\'');
        }
        Value::Text(t) => s.push_str(&text(t)),
        Value::Float(f) => s.push_str(&float(*f)),
        Value::Bool(b) => s.push_str(if *b { "true" } else { "false" }),
        Value::Null => s.push_str("null"),
        Value::Tag(EMBEDDED, inner) => {
            s.push_str("<<");
            write(inner, s);
            s.push_str(">>");
        }
        Value::Tag(t, inner) => {
            s.push_str(&t.to_string());
            s.push('(');
            write(inner, s);
            s.push(')');
        }
        Value::Array(items) => {
            s.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                write(item, s);
            }
            s.push(']');
        }
        Value::Map(entries) => {
            s.push('{');
            for (i, (k, val)) in entries.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                write(k, s);
                s.push_str(": ");
                write(val, s);
            }
            s.push('}');
        }
        // ciborium's Value is non-exhaustive.
        _ => s.push_str("undefined"),
    }
}

/// A text string: diagnostic notation escapes like JSON.
fn text(t: &str) -> String {
    serde_json::to_string(t).unwrap_or_else(|_| format!("{t:?}"))
}

fn float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        // `{:?}` keeps the decimal point on integral values (1.0), as notation requires.
        format!("{f:?}")
    }
}

/// The item as indented lines: one line when it fits in [`WIDTH`], else one entry per
/// line, recursively.
pub fn pretty(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    pretty_into(v, 0, "", "", &mut out);
    out
}

fn pretty_into(v: &Value, depth: usize, prefix: &str, suffix: &str, out: &mut Vec<String>) {
    let pad = "  ".repeat(depth);
    let flat = format!("{pad}{prefix}{}{suffix}", one_line(v));
    if flat.chars().count() <= WIDTH {
        out.push(flat);
        return;
    }
    match v {
        Value::Array(items) => {
            out.push(format!("{pad}{prefix}["));
            for (i, item) in items.iter().enumerate() {
                let comma = if i + 1 < items.len() { "," } else { "" };
                pretty_into(item, depth + 1, "", comma, out);
            }
            out.push(format!("{pad}]{suffix}"));
        }
        Value::Map(entries) => {
            out.push(format!("{pad}{prefix}{{"));
            for (i, (k, val)) in entries.iter().enumerate() {
                let comma = if i + 1 < entries.len() { "," } else { "" };
                pretty_into(val, depth + 1, &format!("{}: ", one_line(k)), comma, out);
            }
            out.push(format!("{pad}}}{suffix}"));
        }
        Value::Tag(EMBEDDED, inner) => {
            pretty_into(
                inner,
                depth,
                &format!("{prefix}<<"),
                &format!(">>{suffix}"),
                out,
            );
        }
        Value::Tag(t, inner) => {
            pretty_into(
                inner,
                depth,
                &format!("{prefix}{t}("),
                &format!("){suffix}"),
                out,
            );
        }
        _ => out.push(flat),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_and_containers() {
        let v = Value::Map(vec![
            (Value::Integer(1.into()), Value::Text("a\"b".into())),
            (
                Value::Array(vec![Value::Bytes(vec![0])]),
                Value::Array(vec![
                    Value::Integer((-7).into()),
                    Value::Bool(true),
                    Value::Null,
                    Value::Float(1.5),
                ]),
            ),
            (
                Value::Integer(2.into()),
                Value::Tag(107, Box::new(Value::Map(vec![]))),
            ),
        ]);
        let mut bytes = Vec::new();
        ciborium::into_writer(&v, &mut bytes).unwrap();
        assert_eq!(
            of_bytes(&bytes),
            r#"{1: "a\"b", [h'00']: [-7, true, null, 1.5], 2: 107({})}"#
        );
        assert_eq!(embedded(&[0x82, 0x01, 0x02]), "<<[1, 2]>>");
    }

    #[test]
    fn expand_shows_wrapped_items() {
        // {2: h'<<[1, h'01']>>', 3: h'0102'}
        let bytes = [0xa2, 0x02, 0x43, 0x82, 0x01, 0x01, 0x03, 0x42, 0x01, 0x02];
        let v = expand(decode(&bytes).unwrap());
        assert_eq!(one_line(&v), "{2: <<[1, 1]>>, 3: h'0102'}");
        assert_eq!(pretty(&v), ["{2: <<[1, 1]>>, 3: h'0102'}"]);
    }

    #[test]
    fn not_one_item_is_hex() {
        assert_eq!(of_bytes(&[0x01, 0x02]), "h'0102'");
        assert_eq!(of_bytes(&[0x82, 0x01]), "h'8201'");
        assert!(decode(&[]).is_none());
    }

    #[test]
    fn long_items_break_per_entry() {
        let long = Value::Text("x".repeat(60));
        let v = Value::Map(vec![
            (Value::Integer(1.into()), long.clone()),
            (
                Value::Integer(2.into()),
                Value::Array(vec![long.clone(), long]),
            ),
        ]);
        let lines = pretty(&v);
        assert_eq!(lines.first().map(String::as_str), Some("{"));
        assert_eq!(lines.last().map(String::as_str), Some("}"));
        assert!(lines.iter().any(|l| l.starts_with("  2: [")), "{lines:#?}");
        assert!(lines.iter().all(|l| l.len() <= WIDTH), "{lines:#?}");
    }
}
