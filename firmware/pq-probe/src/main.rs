//! ML-DSA-44 verification on the Cortex-M4 (QEMU mps2-an386): how many instructions and
//! how much stack RustCrypto's `ml-dsa` (no_std, no alloc) takes to verify one signature,
//! for BENCHMARKS.md §5. Not run by `cargo xtask firmware` (see that section for the
//! commands): the suitcase crates have no ML-DSA COSE algorithm yet, so this measures the
//! primitive alone.
//!
//! The key pair and the signature are made here, on the device, from a fixed seed (the
//! host side of the project has no ML-DSA dependency); only the verification is timed:
//! decode the 1312-byte public key and the 2420-byte signature, then verify.

#![no_std]
#![no_main]

use board::host::{Part, exit, line};
use board::power;
use cortex_m_rt::entry;
use ml_dsa::{EncodedSignature, EncodedVerifyingKey, ExpandedSigningKey, MlDsa44, Signature};
use ml_dsa::{Seed, VerifyingKey};

/// What is signed: the size of a SUIT auth digest (`[-16, bstr .size 32]`).
const MESSAGE: [u8; 36] = [0x5a; 36];

#[entry]
fn main() -> ! {
    let Some(mut cp) = cortex_m::Peripherals::take() else {
        exit(2)
    };
    power::arm(&mut cp.SYST, 0);
    let (key, sig) = material();
    let depth = board::stack::depth();
    let painted = board::stack::paint();
    let t0 = power::ticks();
    let ok = verify(&key, &sig);
    let t1 = power::ticks();
    let stack = board::stack::peak(painted).saturating_sub(depth);
    line(&[
        Part::S("pq-probe: ML-DSA-44 verify (decode key + signature, verify) "),
        Part::N(u64::from(t1 - t0) * u64::from(power::INSTRUCTIONS_PER_TICK)),
        Part::S(" instr, "),
        Part::N(stack as u64),
        Part::S(" B stack, "),
        Part::S(if ok { "valid" } else { "INVALID" }),
    ]);
    exit(if ok { 0 } else { 1 })
}

/// The encoded public key and signature, made from a fixed seed.
#[inline(never)]
fn material() -> (EncodedVerifyingKey<MlDsa44>, EncodedSignature<MlDsa44>) {
    let sk = ExpandedSigningKey::<MlDsa44>::from_seed(&Seed::from([7u8; 32]));
    let sig = match sk.sign_deterministic(&MESSAGE, &[]) {
        Ok(s) => s.encode(),
        Err(_) => exit(3),
    };
    (sk.verifying_key().encode(), sig)
}

/// What a bootloader would run: decode the stored key and the envelope's signature,
/// verify.
#[inline(never)]
fn verify(key: &EncodedVerifyingKey<MlDsa44>, sig: &EncodedSignature<MlDsa44>) -> bool {
    let vk = VerifyingKey::<MlDsa44>::decode(key);
    Signature::<MlDsa44>::decode(sig).is_some_and(|s| vk.verify_with_context(&MESSAGE, &[], &s))
}

board::handlers!();
