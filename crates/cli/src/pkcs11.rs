//! Signing with a P-256 key kept in a PKCS#11 token (an HSM, or SoftHSM2 in tests): the
//! private key never leaves the token and is never written anywhere by this tool.
//!
//! `sign` and `build` take `--pkcs11-module PATH --pkcs11-token LABEL --pkcs11-key LABEL`
//! (the PIN from the environment variable `--pkcs11-pin-env`, default
//! `SUITCASE_PKCS11_PIN`); `keygen --alg es256` with the same flags generates the key pair
//! inside the token (`CKA_SENSITIVE`, not `CKA_EXTRACTABLE`) and writes only the public
//! key.
//!
//! The COSE_Sign1 is ESP256 (-9) like a file key's: the Sig_structure is built with
//! `suitcase_cose::write_to_be_signed`, hashed with SHA-256 here, and the token signs the
//! prehash with `CKM_ECDSA`, returning the raw 64-byte `r ‖ s`. The signature is checked
//! against the token's public key before it is used.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use sha2::{Digest as _, Sha256};
use suitcase_cose::{CoseKind, OwnedVerifyingKey, write_to_be_signed};

use crate::cbor::Item;
use crate::keys::PublicKey;

/// DER of the P-256 curve OID (1.2.840.10045.3.1.7), the `CKA_EC_PARAMS` of a P-256 key.
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// `{1: -9}`: ESP256.
const PROTECTED_ESP256: [u8; 3] = [0xa1, 0x01, 0x28];

/// The PKCS#11 flags shared by `sign`, `build` and `keygen`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct Pkcs11Args {
    /// Sign with a key in a PKCS#11 token: the module (shared library) to load.
    #[arg(
        long,
        value_name = "PATH",
        requires_all = ["pkcs11_token", "pkcs11_key"]
    )]
    pub pkcs11_module: Option<PathBuf>,
    /// The token's label.
    #[arg(long, value_name = "LABEL", requires = "pkcs11_module")]
    pub pkcs11_token: Option<String>,
    /// The key pair's label (CKA_LABEL) in the token.
    #[arg(long, value_name = "LABEL", requires = "pkcs11_module")]
    pub pkcs11_key: Option<String>,
    /// The environment variable holding the user PIN.
    #[arg(long, value_name = "VAR", default_value = "SUITCASE_PKCS11_PIN")]
    pub pkcs11_pin_env: String,
}

impl Pkcs11Args {
    /// Whether a token key was asked for.
    pub fn given(&self) -> bool {
        self.pkcs11_module.is_some()
    }
}

/// One-line text for a cryptoki error (its own Display is a paragraph).
fn hsm(e: cryptoki::error::Error) -> anyhow::Error {
    match e {
        cryptoki::error::Error::Pkcs11(rv, f) => anyhow!("PKCS#11 {f}: {rv:?}"),
        other => anyhow!("PKCS#11: {other}"),
    }
}

/// A logged-in session on the token, and the key's label.
pub struct Token {
    // Declared before `_ctx`: the session closes before the library is finalized.
    session: Session,
    _ctx: Pkcs11,
    key_label: String,
    what: String,
}

impl Token {
    /// Loads the module, finds the token by label and logs in with the PIN from the
    /// environment. `rw` for key generation.
    pub fn open(args: &Pkcs11Args, rw: bool) -> anyhow::Result<Token> {
        let (Some(module), Some(token), Some(key)) =
            (&args.pkcs11_module, &args.pkcs11_token, &args.pkcs11_key)
        else {
            bail!("--pkcs11-module, --pkcs11-token and --pkcs11-key go together");
        };
        let what = format!("PKCS#11 token {token:?} key {key:?}");
        let pin = std::env::var(&args.pkcs11_pin_env).map_err(|_| {
            anyhow!(
                "{what}: the PIN is read from ${}, which is not set",
                args.pkcs11_pin_env
            )
        })?;
        let ctx = load(module)?;
        let mut slot = None;
        for s in ctx.get_slots_with_token().map_err(hsm)? {
            let info = ctx.get_token_info(s).map_err(hsm)?;
            if info.label().trim_end() == token {
                slot = Some(s);
                break;
            }
        }
        let slot =
            slot.ok_or_else(|| anyhow!("{}: no token labelled {token:?}", module.display()))?;
        let session = if rw {
            ctx.open_rw_session(slot)
        } else {
            ctx.open_ro_session(slot)
        }
        .map_err(hsm)
        .with_context(|| what.clone())?;
        session
            .login(UserType::User, Some(&AuthPin::new(pin.into())))
            .map_err(hsm)
            .with_context(|| format!("{what}: login"))?;
        Ok(Token {
            session,
            _ctx: ctx,
            key_label: key.clone(),
            what,
        })
    }

    fn find(&self, class: ObjectClass) -> anyhow::Result<Option<ObjectHandle>> {
        let found = self
            .session
            .find_objects(&[
                Attribute::Class(class),
                Attribute::KeyType(KeyType::EC),
                Attribute::Label(self.key_label.as_bytes().to_vec()),
            ])
            .map_err(hsm)?;
        match found.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            _ => bail!("{}: more than one key with this label", self.what),
        }
    }

    /// The key pair's public key (from the token's public key object).
    pub fn public_key(&self) -> anyhow::Result<p256::ecdsa::VerifyingKey> {
        let object = self
            .find(ObjectClass::PUBLIC_KEY)?
            .ok_or_else(|| anyhow!("{}: no EC public key with this label", self.what))?;
        let attrs = self
            .session
            .get_attributes(object, &[AttributeType::EcParams, AttributeType::EcPoint])
            .map_err(hsm)?;
        let mut point = None;
        for a in attrs {
            match a {
                Attribute::EcParams(p) if p != P256_PARAMS => {
                    bail!(
                        "{}: not a P-256 key (ES256 is the only PKCS#11 algorithm)",
                        self.what
                    )
                }
                Attribute::EcPoint(p) => point = Some(p),
                _ => {}
            }
        }
        let point = point.ok_or_else(|| anyhow!("{}: the token gives no EC point", self.what))?;
        // CKA_EC_POINT is a DER OCTET STRING around the SEC1 point (some tokens give it bare).
        let sec1 = match point.as_slice() {
            [0x04, 0x41, rest @ ..] if rest.len() == 0x41 => rest,
            bare => bare,
        };
        p256::ecdsa::VerifyingKey::from_sec1_bytes(sec1)
            .map_err(|_| anyhow!("{}: the token's EC point is not on P-256", self.what))
    }

    /// The public key in the form the rest of the tool uses.
    pub fn public(&self) -> anyhow::Result<PublicKey> {
        Ok(PublicKey::Classic(OwnedVerifyingKey::P256(
            self.public_key()?,
        )))
    }

    /// A tagged COSE_Sign1 (ESP256, detached payload) over `payload`, naming `kid`.
    pub fn sign1(&self, kid: &[u8], payload: &[u8]) -> anyhow::Result<Vec<u8>> {
        let private = self
            .find(ObjectClass::PRIVATE_KEY)?
            .ok_or_else(|| anyhow!("{}: no EC private key with this label", self.what))?;
        let mut hasher = Sha256::new();
        write_to_be_signed(CoseKind::Sign1, &PROTECTED_ESP256, payload, &mut |c| {
            hasher.update(c)
        });
        let prehash = hasher.finalize();
        let sig = self
            .session
            .sign(&Mechanism::Ecdsa, private, &prehash)
            .map_err(hsm)
            .with_context(|| format!("{}: signing", self.what))?;
        let parsed = p256::ecdsa::Signature::from_slice(&sig).map_err(|_| {
            anyhow!(
                "{}: the token returned {} bytes, not a raw P-256 r||s",
                self.what,
                sig.len()
            )
        })?;
        self.public_key()?
            .verify_prehash(&prehash, &parsed)
            .map_err(|_| anyhow!("{}: the token's signature does not verify", self.what))?;
        Ok(Item::Tag(
            18,
            Box::new(Item::Array(vec![
                Item::Bytes(PROTECTED_ESP256.to_vec()),
                Item::int_map([(4, Item::Bytes(kid.to_vec()))]),
                Item::Null,
                Item::Bytes(sig),
            ])),
        )
        .encode()?)
    }

    /// Generates a P-256 key pair inside the token under the label; refuses if one exists.
    pub fn generate(&self) -> anyhow::Result<p256::ecdsa::VerifyingKey> {
        if self.find(ObjectClass::PRIVATE_KEY)?.is_some()
            || self.find(ObjectClass::PUBLIC_KEY)?.is_some()
        {
            bail!("{}: a key with this label already exists", self.what);
        }
        let label = Attribute::Label(self.key_label.as_bytes().to_vec());
        let id = Attribute::Id(self.key_label.as_bytes().to_vec());
        self.session
            .generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[
                    Attribute::Token(true),
                    Attribute::Private(false),
                    Attribute::Verify(true),
                    Attribute::EcParams(P256_PARAMS.to_vec()),
                    label.clone(),
                    id.clone(),
                ],
                &[
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Sign(true),
                    label,
                    id,
                ],
            )
            .map_err(hsm)
            .with_context(|| format!("{}: key generation", self.what))?;
        self.public_key()
    }
}

fn load(module: &Path) -> anyhow::Result<Pkcs11> {
    if !module.is_file() {
        bail!("{}: no such PKCS#11 module", module.display());
    }
    let ctx = Pkcs11::new(module)
        .map_err(hsm)
        .with_context(|| module.display().to_string())?;
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(hsm)
        .with_context(|| module.display().to_string())?;
    Ok(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cli, Command};
    use clap::Parser;

    #[test]
    fn flags_go_together() {
        let ok = Cli::try_parse_from([
            "suitcase",
            "sign",
            "--pkcs11-module",
            "m.so",
            "--pkcs11-token",
            "T",
            "--pkcs11-key",
            "k",
            "in.suit",
            "-o",
            "out.suit",
        ])
        .unwrap();
        let Command::Sign(a) = ok.command else {
            panic!("not sign")
        };
        assert!(a.pkcs11.given());
        assert_eq!(a.pkcs11.pkcs11_pin_env, "SUITCASE_PKCS11_PIN");
        assert!(
            Cli::try_parse_from([
                "suitcase",
                "sign",
                "--pkcs11-module",
                "m.so",
                "in.suit",
                "-o",
                "o"
            ])
            .is_err()
        );
        assert!(Cli::try_parse_from(["suitcase", "sign", "in.suit", "-o", "o"]).is_err());
    }

    #[test]
    fn a_missing_module_is_one_line() {
        let e = load(Path::new("/nonexistent/libpkcs11.so")).err().unwrap();
        assert_eq!(
            format!("{e:#}"),
            "/nonexistent/libpkcs11.so: no such PKCS#11 module"
        );
    }
}
