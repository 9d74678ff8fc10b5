//! Streaming content decryption: AES-GCM built from `ctr` + `ghash` (the `aes-gcm`
//! crate only decrypts a whole buffer), and AES-CTR.
//!
//! GCM (NIST SP 800-38D) with a 96-bit IV: `H = E(K, 0¹²⁸)`, `J0 = IV ‖ 0³¹ ‖ 1`; the
//! keystream starts at `inc32(J0)`; the tag is
//! `GHASH_H(AAD ‖ pad ‖ C ‖ pad ‖ [len(AAD)]₆₄ ‖ [len(C)]₆₄) ⊕ E(K, J0)`. The stream does
//! not say where the ciphertext ends, so the decryptor always holds back the last 16
//! bytes it has seen: at [`ContentDecryptor::finish`] they are the tag.

use aes::cipher::{
    BlockCipherEncrypt, BlockSizeUser, InnerIvInit, KeyInit, KeyIvInit, StreamCipher, consts::U16,
};
use aes::{Aes128, Aes256};
use ghash::GHash;
use ghash::universal_hash::UniversalHash;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use super::{Cek, ContentAlgorithm, EncryptionInfo, GCM_TAG_LEN};
use crate::CoseError;
use crate::tbs::write_head;

/// AES block size.
const BLOCK: usize = 16;
/// CBOR major type 2 (byte string).
const MAJOR_BYTES: u8 = 2;

/// Decrypts a SUIT payload chunk by chunk, in place, for any chunking.
///
/// Feed every ciphertext byte once, in order, through [`update`](Self::update); then
/// call [`finish`](Self::finish). For GCM a success of `finish` is the only evidence
/// that the plaintext already released is authentic; callers must treat it as
/// untrusted until then (SUIT goes further: nothing is trusted before the manifest's
/// image digest matches).
pub struct ContentDecryptor {
    mode: Mode,
    finished: bool,
}

enum Mode {
    Gcm128(Gcm<Aes128>),
    Gcm256(Gcm<Aes256>),
    Ctr128(ctr::Ctr128BE<Aes128>),
    Ctr256(ctr::Ctr128BE<Aes256>),
}

impl core::fmt::Debug for ContentDecryptor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let alg = match self.mode {
            Mode::Gcm128(_) => ContentAlgorithm::A128Gcm,
            Mode::Gcm256(_) => ContentAlgorithm::A256Gcm,
            Mode::Ctr128(_) => ContentAlgorithm::A128Ctr,
            Mode::Ctr256(_) => ContentAlgorithm::A256Ctr,
        };
        f.debug_struct("ContentDecryptor")
            .field("alg", &alg)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl ContentDecryptor {
    /// A decryptor for the content described by `info`, with the content key `cek`
    /// (from [`Recipient::unwrap_aes_kw`](super::Recipient::unwrap_aes_kw) or
    /// [`Recipient::unwrap_ecdh_es`](super::Recipient::unwrap_ecdh_es)).
    ///
    /// # Errors
    /// [`CoseError::InvalidKey`] when the key length does not fit the algorithm;
    /// [`CoseError::InvalidHeader`] for an IV of the wrong length (not possible for an
    /// `info` from [`EncryptionInfo::decode`]).
    pub fn new(info: &EncryptionInfo<'_>, cek: &Cek) -> Result<Self, CoseError> {
        let key = cek.as_bytes();
        if key.len() != info.alg.key_len() {
            return Err(CoseError::InvalidKey);
        }
        let mode = match info.alg {
            ContentAlgorithm::A128Gcm => Mode::Gcm128(Gcm::new(key, info.iv, info.protected)?),
            ContentAlgorithm::A256Gcm => Mode::Gcm256(Gcm::new(key, info.iv, info.protected)?),
            ContentAlgorithm::A128Ctr => Mode::Ctr128(ctr_mode(key, info.iv)?),
            ContentAlgorithm::A256Ctr => Mode::Ctr256(ctr_mode(key, info.iv)?),
        };
        Ok(ContentDecryptor {
            mode,
            finished: false,
        })
    }

    /// Decrypts `chunk`, the next ciphertext bytes, in place and returns how many leading
    /// bytes of it are now plaintext. CTR returns `chunk.len()`; GCM returns 16 fewer
    /// bytes than it has seen so far (the possible tag stays inside the decryptor), so
    /// it can return less than `chunk.len()`, and 0 for the first 16 bytes.
    ///
    /// # Errors
    /// [`CoseError::DecryptionFailed`] after [`finish`](Self::finish) or past the mode's
    /// keystream limit (2³² blocks for GCM).
    pub fn update(&mut self, chunk: &mut [u8]) -> Result<usize, CoseError> {
        if self.finished {
            return Err(CoseError::DecryptionFailed);
        }
        match &mut self.mode {
            Mode::Gcm128(g) => g.update(chunk),
            Mode::Gcm256(g) => g.update(chunk),
            Mode::Ctr128(c) => keystream(c, chunk).map(|()| chunk.len()),
            Mode::Ctr256(c) => keystream(c, chunk).map(|()| chunk.len()),
        }
    }

    /// Ends the stream. For GCM it checks the held-back tag in constant time.
    ///
    /// # Errors
    /// [`CoseError::DecryptionFailed`] for a wrong tag, a ciphertext shorter than the
    /// tag, or a second call.
    pub fn finish(&mut self) -> Result<(), CoseError> {
        if core::mem::replace(&mut self.finished, true) {
            return Err(CoseError::DecryptionFailed);
        }
        match &mut self.mode {
            Mode::Gcm128(g) => g.finish(),
            Mode::Gcm256(g) => g.finish(),
            Mode::Ctr128(_) | Mode::Ctr256(_) => Ok(()),
        }
    }
}

fn keystream(c: &mut impl StreamCipher, data: &mut [u8]) -> Result<(), CoseError> {
    c.try_apply_keystream(data)
        .map_err(|_| CoseError::DecryptionFailed)
}

/// AES-CTR with the whole 16-byte IV as the initial counter block, incremented as one
/// 128-bit big-endian integer (RFC 9459 §4; what OpenSSL's CTR does).
fn ctr_mode<C>(key: &[u8], iv: &[u8]) -> Result<ctr::Ctr128BE<C>, CoseError>
where
    C: BlockCipherEncrypt + BlockSizeUser<BlockSize = U16> + KeyInit,
{
    ctr::Ctr128BE::<C>::new_from_slices(key, iv).map_err(|_| CoseError::InvalidKey)
}

/// GHASH over a byte stream: buffers a partial block between calls.
struct GhashStream {
    ghash: GHash,
    buf: [u8; BLOCK],
    len: usize,
}

impl GhashStream {
    fn update(&mut self, mut data: &[u8]) {
        if self.len > 0 {
            let take = (BLOCK - self.len).min(data.len());
            let (head, tail) = data.split_at(take);
            if let Some(dst) = self.buf.get_mut(self.len..self.len + take) {
                dst.copy_from_slice(head);
            }
            self.len += take;
            data = tail;
            if self.len < BLOCK {
                return;
            }
            self.ghash.update_padded(&self.buf);
            self.len = 0;
        }
        let whole = data.len() / BLOCK * BLOCK;
        let (body, rest) = data.split_at(whole);
        // A whole number of blocks: "padded" adds nothing.
        self.ghash.update_padded(body);
        if let Some(dst) = self.buf.get_mut(..rest.len()) {
            dst.copy_from_slice(rest);
        }
        self.len = rest.len();
    }

    /// Zero-pads and absorbs a partial block (the end of the AAD or the ciphertext).
    fn pad(&mut self) {
        if let Some(part) = self.buf.get(..self.len) {
            self.ghash.update_padded(part);
        }
        self.len = 0;
    }
}

/// Streaming AES-GCM decryption with a 96-bit IV and a 128-bit tag.
struct Gcm<C: BlockCipherEncrypt + BlockSizeUser<BlockSize = U16>> {
    ctr: ctr::Ctr32BE<C>,
    mac: GhashStream,
    /// `E(K, J0)`, which masks the tag.
    mask: [u8; BLOCK],
    /// The last bytes seen, not yet released: the tag if the stream ends here.
    held: [u8; GCM_TAG_LEN],
    held_len: usize,
    aad_len: u64,
    ct_len: u64,
}

impl<C> Gcm<C>
where
    C: BlockCipherEncrypt + BlockSizeUser<BlockSize = U16> + KeyInit,
{
    fn new(key: &[u8], iv: &[u8], protected: &[u8]) -> Result<Self, CoseError> {
        let cipher = C::new_from_slice(key).map_err(|_| CoseError::InvalidKey)?;
        let mut h = ghash::Key::default();
        cipher.encrypt_block(&mut h);
        let ghash = GHash::new(&h);
        h.zeroize();

        let mut j0 = ghash::Block::default();
        j0.get_mut(..iv.len())
            .filter(|_| iv.len() == 12)
            .ok_or(CoseError::InvalidHeader { offset: 0 })?
            .copy_from_slice(iv);
        if let Some(last) = j0.last_mut() {
            *last = 1;
        }
        let mut ctr = ctr::Ctr32BE::<C>::from_core(ctr::CtrCore::inner_iv_init(cipher, &j0));
        // The first keystream block, E(K, J0), masks the tag; the content starts at
        // inc32(J0).
        let mut mask = [0u8; BLOCK];
        keystream(&mut ctr, &mut mask)?;

        let mut g = Gcm {
            ctr,
            mac: GhashStream {
                ghash,
                buf: [0; BLOCK],
                len: 0,
            },
            mask,
            held: [0; GCM_TAG_LEN],
            held_len: 0,
            aad_len: 0,
            ct_len: 0,
        };
        // AAD = Enc_structure ["Encrypt", protected, h''] (RFC 9052 §5.3), streamed so
        // a protected header of any size needs no buffer.
        let mut aad = |piece: &[u8]| {
            g.mac.update(piece);
            g.aad_len = g.aad_len.wrapping_add(piece.len() as u64);
        };
        aad(&[0x83, 0x67]);
        aad(b"Encrypt");
        write_head(MAJOR_BYTES, protected.len() as u64, &mut aad);
        aad(protected);
        aad(&[0x40]);
        g.mac.pad();
        Ok(g)
    }

    fn update(&mut self, chunk: &mut [u8]) -> Result<usize, CoseError> {
        let n = chunk.len();
        let held = self.held_len;
        let total = held.saturating_add(n);
        // Release everything but the last 16 bytes of (held ‖ chunk), at the front of
        // `chunk`; out ≤ n because held ≤ 16.
        let out = total.saturating_sub(GCM_TAG_LEN);
        let fail = CoseError::DecryptionFailed;
        if out == 0 {
            self.held
                .get_mut(held..total)
                .ok_or(fail)?
                .copy_from_slice(chunk);
            self.held_len = total;
            return Ok(0);
        }
        let mut next = [0u8; GCM_TAG_LEN];
        if out >= held {
            // The new tail lies wholly in `chunk`; shift the rest right by `held` and
            // put the old tail in front.
            let from = out - held;
            next.copy_from_slice(chunk.get(from..).ok_or(fail)?);
            chunk.copy_within(..from, held);
            chunk
                .get_mut(..held)
                .ok_or(fail)?
                .copy_from_slice(self.held.get(..held).ok_or(fail)?);
        } else {
            // A short chunk: part of the old tail is released, the rest plus the whole
            // chunk is the new tail.
            let keep = held - out;
            next.get_mut(..keep)
                .ok_or(fail)?
                .copy_from_slice(self.held.get(out..held).ok_or(fail)?);
            next.get_mut(keep..).ok_or(fail)?.copy_from_slice(chunk);
            chunk
                .get_mut(..out)
                .ok_or(fail)?
                .copy_from_slice(self.held.get(..out).ok_or(fail)?);
        }
        self.held = next;
        self.held_len = GCM_TAG_LEN;
        let released = chunk.get_mut(..out).ok_or(fail)?;
        self.mac.update(released);
        self.ct_len = self.ct_len.wrapping_add(out as u64);
        keystream(&mut self.ctr, released)?;
        Ok(out)
    }

    fn finish(&mut self) -> Result<(), CoseError> {
        if self.held_len != GCM_TAG_LEN {
            return Err(CoseError::DecryptionFailed);
        }
        self.mac.pad();
        let mut lengths = [0u8; BLOCK];
        let (a, c) = lengths.split_at_mut(8);
        a.copy_from_slice(&self.aad_len.wrapping_mul(8).to_be_bytes());
        c.copy_from_slice(&self.ct_len.wrapping_mul(8).to_be_bytes());
        self.mac.ghash.update_padded(&lengths);
        let mut tag = self.mac.ghash.clone().finalize();
        for (t, m) in tag.iter_mut().zip(self.mask.iter()) {
            *t ^= *m;
        }
        let ok: bool = tag.as_slice().ct_eq(&self.held).into();
        tag.zeroize();
        if ok {
            Ok(())
        } else {
            Err(CoseError::DecryptionFailed)
        }
    }
}

impl<C: BlockCipherEncrypt + BlockSizeUser<BlockSize = U16>> Drop for Gcm<C> {
    fn drop(&mut self) {
        self.mask.zeroize();
    }
}
