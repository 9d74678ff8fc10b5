//! Rewrites an envelope: image digests and sizes, sequence number, signers. Every digest
//! that depends on a change (severed members, the manifest digest) is recomputed, and the
//! result is signed afresh.
//!
//! The spec examples carry placeholder digests; replacing them with the digests of real
//! images keeps every command of the example and lets its flow run to completion.

use std::collections::HashMap;

use ciborium::Value;
use sha2::{Digest as _, Sha256};
use suitcase_cose::{Algorithm, SigningKey, mac0_detached, sign1_detached};

/// Who signs the rewritten envelope. (Host-side test helper: its size does not matter.)
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Signer {
    /// COSE_Sign1 with this key and algorithm.
    Sign(SigningKey, Algorithm),
    /// COSE_Mac0 (HMAC-256) with this secret.
    Mac(Vec<u8>),
}

/// What to change.
#[derive(Clone, Debug, Default)]
pub struct Rewrite {
    /// Old digest bytes → the image that replaces it (its SHA-256 and length go into the
    /// parameters wherever the old digest stood, with the image-size next to it).
    pub images: HashMap<Vec<u8>, Vec<u8>>,
    /// New sequence number.
    pub sequence_number: Option<u64>,
    /// Signers, in order; empty = unsigned.
    pub signers: Vec<Signer>,
}

fn err(what: &str) -> String {
    format!("resign: {what}")
}

fn decode(bytes: &[u8]) -> Result<Value, String> {
    ciborium::from_reader(bytes).map_err(|e| err(&e.to_string()))
}

fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).expect("writing to a Vec cannot fail");
    out
}

/// The encoded bstr (header included) that wraps `inner`: what SUIT digests cover.
pub fn bstr_encoding(inner: &[u8]) -> Vec<u8> {
    encode(&Value::Bytes(inner.to_vec()))
}

fn suit_digest(of: &[u8]) -> Value {
    Value::Array(vec![
        Value::Integer((-16).into()),
        Value::Bytes(Sha256::digest(of).to_vec()),
    ])
}

fn int_key(v: &Value) -> Option<i128> {
    match v {
        Value::Integer(i) => Some(i128::from(*i)),
        _ => None,
    }
}

fn map_get_mut(m: &mut [(Value, Value)], key: i128) -> Option<&mut Value> {
    m.iter_mut()
        .find(|(k, _)| int_key(k) == Some(key))
        .map(|(_, v)| v)
}

impl Rewrite {
    /// Applies the rewrite to `envelope` and returns the new envelope bytes.
    pub fn apply(&self, envelope: &[u8]) -> Result<Vec<u8>, String> {
        let (tag, mut entries) = match decode(envelope)? {
            Value::Tag(107, inner) => match *inner {
                Value::Map(m) => (true, m),
                _ => return Err(err("envelope is not a map")),
            },
            Value::Map(m) => (false, m),
            _ => return Err(err("not an envelope")),
        };
        // Severed members first: their digests go into the manifest.
        let mut severed_digests: HashMap<i128, Value> = HashMap::new();
        for (k, v) in entries.iter_mut() {
            if let (Some(key @ (15 | 16 | 18 | 20)), Value::Bytes(b)) = (int_key(k), &mut *v) {
                let patched = self.patch_sequence(b)?;
                let whole = bstr_encoding(&patched);
                severed_digests.insert(key, suit_digest(&whole));
                *b = patched;
            } else if let (Some(key @ (14 | 23)), Value::Bytes(b)) = (int_key(k), &*v) {
                severed_digests.insert(key, suit_digest(&bstr_encoding(b)));
            }
        }
        let manifest_bytes = match map_get_mut(&mut entries, 3) {
            Some(Value::Bytes(b)) => b.clone(),
            _ => return Err(err("no manifest")),
        };
        let manifest = self.patch_manifest(&manifest_bytes, &severed_digests)?;
        let manifest_whole = bstr_encoding(&manifest);
        let digest = encode(&suit_digest(&manifest_whole));
        let mut auth = vec![Value::Bytes(digest.clone())];
        for s in &self.signers {
            let cose = match s {
                Signer::Sign(key, alg) => sign1_detached(key, *alg, None, &digest),
                Signer::Mac(key) => mac0_detached(key, None, &digest),
            }
            .map_err(|e| err(&format!("{e:?}")))?;
            auth.push(Value::Bytes(cose));
        }
        let mut out: Vec<(Value, Value)> = vec![
            (
                Value::Integer(2.into()),
                Value::Bytes(encode(&Value::Array(auth))),
            ),
            (Value::Integer(3.into()), Value::Bytes(manifest)),
        ];
        out.extend(
            entries
                .into_iter()
                .filter(|(k, _)| !matches!(int_key(k), Some(2 | 3))),
        );
        let map = Value::Map(out);
        Ok(encode(&if tag {
            Value::Tag(107, Box::new(map))
        } else {
            map
        }))
    }

    fn patch_manifest(
        &self,
        bytes: &[u8],
        severed: &HashMap<i128, Value>,
    ) -> Result<Vec<u8>, String> {
        let (tagged, mut m) = match decode(bytes)? {
            Value::Tag(1070, inner) => match *inner {
                Value::Map(m) => (true, m),
                _ => return Err(err("manifest is not a map")),
            },
            Value::Map(m) => (false, m),
            _ => return Err(err("manifest is not a map")),
        };
        for (k, v) in m.iter_mut() {
            let Some(key) = int_key(k) else { continue };
            match (key, &mut *v) {
                (2, v) => {
                    if let Some(n) = self.sequence_number {
                        *v = Value::Integer(n.into());
                    }
                }
                (3, Value::Bytes(b)) => *b = self.patch_common(b)?,
                (7 | 8 | 9 | 15 | 16 | 18 | 20 | 24, Value::Bytes(b)) => {
                    *b = self.patch_sequence(b)?
                }
                (14 | 15 | 16 | 18 | 20 | 23, v @ Value::Array(_)) => {
                    if let Some(d) = severed.get(&key) {
                        *v = d.clone();
                    }
                }
                _ => {}
            }
        }
        let map = Value::Map(m);
        Ok(encode(&if tagged {
            Value::Tag(1070, Box::new(map))
        } else {
            map
        }))
    }

    fn patch_common(&self, bytes: &[u8]) -> Result<Vec<u8>, String> {
        let Value::Map(mut m) = decode(bytes)? else {
            return Err(err("common is not a map"));
        };
        if let Some(Value::Bytes(b)) = map_get_mut(&mut m, 4) {
            *b = self.patch_sequence(b)?;
        }
        Ok(encode(&Value::Map(m)))
    }

    /// Rewrites digests (and the image-size beside them) in every parameter map of a
    /// sequence, descending into try-each branches and run-sequence bodies.
    pub fn patch_sequence(&self, bytes: &[u8]) -> Result<Vec<u8>, String> {
        let Value::Array(mut items) = decode(bytes)? else {
            return Err(err("sequence is not an array"));
        };
        for pair in items.chunks_mut(2) {
            let [code, arg] = pair else {
                return Err(err("odd sequence"));
            };
            match (int_key(code), arg) {
                (Some(19 | 20), Value::Map(params)) => self.patch_params(params)?,
                (Some(15), Value::Array(branches)) => {
                    for b in branches.iter_mut() {
                        if let Value::Bytes(seq) = b {
                            *seq = self.patch_sequence(seq)?;
                        }
                    }
                }
                (Some(32), Value::Bytes(seq)) => *seq = self.patch_sequence(seq)?,
                _ => {}
            }
        }
        Ok(encode(&Value::Array(items)))
    }

    fn patch_params(&self, params: &mut [(Value, Value)]) -> Result<(), String> {
        let mut new_size = None;
        if let Some(Value::Bytes(d)) = map_get_mut(params, 3) {
            let Value::Array(parts) = decode(d)? else {
                return Err(err("digest is not an array"));
            };
            if let Some(Value::Bytes(old)) = parts.get(1)
                && let Some(image) = self.images.get(old)
            {
                *d = encode(&suit_digest(image));
                new_size = Some(image.len() as u64);
            }
        }
        // The image-size beside the digest follows it; where the example sets none, none
        // is added (the flow stays the example's own).
        if let (Some(size), Some(v)) = (new_size, map_get_mut(params, 14)) {
            *v = Value::Integer(size.into());
        }
        Ok(())
    }
}
