//! `suitcase sign --key KEY.pem IN.suit -o OUT.suit`: add a COSE_Sign1 to an existing
//! envelope — the operator co-signing the author's envelope (RFC 9019 §3: several
//! parties may have to approve an update).
//!
//! Only the authentication wrapper is re-encoded: the new block is appended to its array
//! and every other byte of the envelope (the manifest, severed members, integrated
//! payloads) is copied as it was, so the signatures already there stay valid. The
//! signature's payload is the wrapper's own SUIT_Digest bytes, after checking that they
//! match the manifest.
//!
//! An HSS-LMS key is stateful: the key file is rewritten (atomically, mode 0600) with its
//! advanced leaf counter *before* the signed envelope is written, so a crash can waste a
//! leaf but never reuse one.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context as _, anyhow, bail};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use suitcase_cose::CoseMessage;
use suitcase_suit::{DigestAlgorithm, Envelope};

use crate::cbor::{self, head, item_end, read_head};
use crate::keys::{self, PrivateKey, PublicKey};
use crate::output::{self, Mode};
use crate::pkcs11::{Pkcs11Args, Token};

/// The most COSE blocks a device accepts (`suitcase_suit` `MAX_AUTH_BLOCKS`).
const MAX_AUTH_BLOCKS: usize = 8;

/// Arguments of `sign`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A PKCS#8 private key (P-256, Ed25519 or HSS-LMS); repeatable, signs in order.
    #[arg(
        long = "key",
        value_name = "KEY.pem",
        required_unless_present = "pkcs11_module"
    )]
    pub keys: Vec<PathBuf>,
    /// A P-256 key in a PKCS#11 token (signs after the `--key` files).
    #[command(flatten)]
    pub pkcs11: Pkcs11Args,
    /// Where the signed envelope goes (may be IN itself).
    #[arg(long, short = 'o', value_name = "OUT.suit")]
    pub out: PathBuf,
    /// Print one JSON object of type "sign".
    #[arg(long)]
    pub json: bool,
    /// The envelope to sign.
    pub file: PathBuf,
}

/// Where the authentication wrapper's value sits in the envelope, and its items.
struct AuthLocation {
    /// Byte range of the wrapper's bstr (head included) in the envelope.
    value: std::ops::Range<usize>,
    /// The encoded items of the wrapper array, each verbatim.
    items: Vec<Vec<u8>>,
}

/// Finds envelope key 2 by walking the top-level map; every offset is checked.
fn locate_auth(env: &[u8]) -> anyhow::Result<AuthLocation> {
    let bad = || anyhow!("not a SUIT envelope (no authentication wrapper)");
    let mut pos = 0;
    let (major, tag, after) = read_head(env, pos).ok_or_else(bad)?;
    if major == 6 {
        if tag != 107 {
            bail!("not a SUIT envelope (tag {tag})");
        }
        pos = after;
    }
    let (major, entries, mut pos) = read_head(env, pos).ok_or_else(bad)?;
    if major != 5 {
        return Err(bad());
    }
    for _ in 0..entries {
        let key_end = item_end(env, pos).ok_or_else(bad)?;
        let value_end = item_end(env, key_end).ok_or_else(bad)?;
        if env.get(pos..key_end) == Some(&[0x02][..]) {
            let (major, len, content) = read_head(env, key_end).ok_or_else(bad)?;
            if major != 2 || content + len as usize != value_end {
                return Err(bad());
            }
            let (major, n, mut at) = read_head(env, content).ok_or_else(bad)?;
            if major != 4 {
                return Err(bad());
            }
            let mut items = Vec::new();
            for _ in 0..n {
                let end = item_end(env, at).ok_or_else(bad)?;
                items.push(env.get(at..end).ok_or_else(bad)?.to_vec());
                at = end;
            }
            if at != value_end {
                return Err(bad());
            }
            return Ok(AuthLocation {
                value: key_end..value_end,
                items,
            });
        }
        pos = value_end;
    }
    Err(bad())
}

/// The content of a CBOR bstr item.
fn bstr_content(item: &[u8]) -> Option<&[u8]> {
    let (major, len, at) = read_head(item, 0)?;
    (major == 2 && at + len as usize == item.len()).then(|| &item[at..])
}

/// Appends a signature by `key` to `env`; returns the new envelope and the key id.
///
/// # Errors
/// `env` is not a SUIT envelope, its digest does not match its manifest, it already
/// holds the most blocks a device accepts or a signature by this key, or signing fails.
pub fn add_signature(env: &[u8], key: &mut PrivateKey) -> anyhow::Result<(Vec<u8>, [u8; 32])> {
    // (Deriving an HSS-LMS public key rebuilds its tree: do it once.)
    let public = key.public();
    add_signature_by(env, &public, |kid, payload| key.sign1(kid, payload))
}

/// Appends a COSE_Sign1 made by `sign(kid, payload)` for the key `public`; see
/// [`add_signature`].
pub fn add_signature_by(
    env: &[u8],
    public: &PublicKey,
    sign: impl FnOnce(&[u8], &[u8]) -> anyhow::Result<Vec<u8>>,
) -> anyhow::Result<(Vec<u8>, [u8; 32])> {
    let decoded = Envelope::decode(env).map_err(|e| anyhow!("not a SUIT envelope: {e}"))?;
    let d = &decoded.auth.digest;
    if d.algorithm != DigestAlgorithm::Sha256 {
        bail!("the envelope's digest is not SHA-256; this tool signs SHA-256 digests only");
    }
    if Sha256::digest(decoded.manifest_bytes).as_slice() != d.bytes {
        bail!("the envelope's digest does not match its manifest: refusing to sign");
    }
    let loc = locate_auth(env)?;
    let (digest_item, blocks) = loc
        .items
        .split_first()
        .ok_or_else(|| anyhow!("the authentication wrapper is empty"))?;
    let payload = bstr_content(digest_item)
        .ok_or_else(|| anyhow!("the authentication wrapper's digest is not a bstr"))?;
    if blocks.len() >= MAX_AUTH_BLOCKS {
        bail!(
            "the envelope already holds {} signatures, the most a device accepts",
            blocks.len()
        );
    }
    let kid = public.key_id();
    let vk = public.as_verifying_key();
    for b in blocks {
        let signed_by_this_key = bstr_content(b)
            .and_then(|c| CoseMessage::decode(c).ok())
            .is_some_and(|m| vk.verify(&m, payload).is_ok());
        if signed_by_this_key {
            bail!("already signed by this key (key id {})", hex::encode(kid));
        }
    }
    let cose = sign(&kid, payload)?;

    let mut array = Vec::new();
    head(&mut array, 4, loc.items.len() as u64 + 1);
    for item in &loc.items {
        array.extend_from_slice(item);
    }
    array.extend_from_slice(&cbor::bstr(&cose));
    let mut out = Vec::with_capacity(env.len() + cose.len() + 8);
    out.extend_from_slice(&env[..loc.value.start]);
    out.extend_from_slice(&cbor::bstr(&array));
    out.extend_from_slice(&env[loc.value.end..]);
    Ok((out, kid))
}

/// Signs `env` with each key in turn, saving stateful keys as they advance, then with the
/// PKCS#11 token key if one is given; returns the signed envelope and the key ids.
pub fn sign_all(
    mut env: Vec<u8>,
    key_files: &[PathBuf],
    pkcs11: &Pkcs11Args,
) -> anyhow::Result<(Vec<u8>, Vec<String>)> {
    let mut kids = Vec::new();
    for path in key_files {
        let ctx = || path.display().to_string();
        let mut key = keys::load_private(path)?;
        let (signed, kid) = add_signature(&env, &mut key).with_context(ctx)?;
        if key.is_stateful() {
            output::write_atomic(path, key.to_pem()?.as_bytes(), Mode::Secret)
                .context("saving the HSS-LMS key state")?;
        }
        env = signed;
        kids.push(hex::encode(kid));
    }
    if pkcs11.given() {
        let token = Token::open(pkcs11, false)?;
        let public = token.public()?;
        let (signed, kid) =
            add_signature_by(&env, &public, |kid, payload| token.sign1(kid, payload))?;
        env = signed;
        kids.push(hex::encode(kid));
    }
    Ok((env, kids))
}

/// Runs `sign`.
pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let file = args.file.display().to_string();
    let env = std::fs::read(&args.file).with_context(|| file.clone())?;
    // Before anything is signed: an HSS-LMS signature spends a one-time leaf.
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        bail!(
            "{}: {}: no such directory",
            args.out.display(),
            dir.display()
        );
    }
    let (signed, kids) = sign_all(env, &args.keys, &args.pkcs11).with_context(|| file.clone())?;
    output::write_atomic(&args.out, &signed, Mode::Public)?;
    let blocks = Envelope::decode(&signed)
        .map(|e| e.auth.block_count())
        .unwrap_or_default();
    if args.json {
        let line = json!({
            "type": "sign",
            "file": file,
            "out": args.out.display().to_string(),
            "size": signed.len(),
            "signatures": blocks,
            "added": kids,
        });
        writeln!(out, "{line}")?;
    } else {
        writeln!(
            out,
            "signed: {} ({} bytes, {blocks} signature{}; added key id {})",
            args.out.display(),
            signed.len(),
            if blocks == 1 { "" } else { "s" },
            kids.join(", ")
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyAlg;

    fn spec(name: &str) -> Vec<u8> {
        let dir = suitcase_testkit::vectors::dir().join(suitcase_testkit::vectors::SPEC);
        std::fs::read(dir.join(name)).unwrap()
    }

    #[test]
    fn adds_a_block_and_keeps_every_other_byte() {
        let env = spec("example2.suit");
        let mut key = keys::generate(KeyAlg::Ed25519, 10).unwrap();
        let (signed, _) = add_signature(&env, &mut key).unwrap();
        let before = Envelope::decode(&env).unwrap();
        let after = Envelope::decode(&signed).unwrap();
        assert_eq!(after.auth.block_count(), 2);
        assert_eq!(after.manifest_bytes, before.manifest_bytes);
        // Everything after the wrapper is the same bytes.
        let tail = &env[locate_auth(&env).unwrap().value.end..];
        assert!(signed.ends_with(tail));
        // The same key again is refused.
        let e = add_signature(&signed, &mut key).unwrap_err();
        assert!(e.to_string().contains("already signed"), "{e}");
    }

    #[test]
    fn refuses_a_tampered_digest() {
        let mut env = spec("example0-unsigned.suit");
        let at = env
            .windows(4)
            .position(|w| w == [0x82, 0x2f, 0x58, 0x20])
            .unwrap();
        env[at + 4] ^= 1;
        let mut key = keys::generate(KeyAlg::Es256, 10).unwrap();
        let e = add_signature(&env, &mut key).unwrap_err();
        assert!(e.to_string().contains("does not match"), "{e}");
        let e = add_signature(b"\xa0", &mut key).unwrap_err();
        assert!(e.to_string().contains("not a SUIT envelope"), "{e}");
    }
}
