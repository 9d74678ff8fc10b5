//! The processor on arbitrary manifests that pass authentication: the input is the
//! manifest (the contents of envelope key 3); the harness wraps it in an envelope whose
//! digest and HMAC it computes, so every input reaches the manifest decoder and, when it
//! decodes, the abstract machine (update, then invoke) on an in-memory device, with
//! decryption keys so encrypted payloads are decrypted too, and dependency support (trust
//! domains: the same key signs dependencies; the input itself is served as a dependency,
//! so cycles and self-reference are reachable). Nothing may panic; a failed update must
//! leave the rollback counter where it was.

#![no_main]

use libfuzzer_sys::fuzz_target;
use suitcase_processor::authenticate;
use suitcase_processor::platform::{DomainKeys, Policy, TrustAnchor};
use suitcase_testkit::build::sign_raw_manifest;
use suitcase_testkit::device::MemDevice;
use suitcase_testkit::resign::Signer;

const KEY: [u8; 32] = [0x46; 32];

fuzz_target!(|data: &[u8]| {
    let env = sign_raw_manifest(data, &[Signer::Mac(KEY.to_vec())]);
    let anchors = [TrustAnchor { key: suitcase_cose::VerifyingKey::Hmac256(&KEY), kid: None }];
    let any = Policy { anchors: 1, rules: &[] };
    let keys = DomainKeys { anchors: &anchors, root: any, dependencies: Some(any), by_id: &[] };
    let Ok(a) = authenticate(&env, &keys) else { return };
    let mut dev = MemDevice::spec()
        .with_component(&[&[0]], None, 2048)
        .with_component(&[&[1]], None, 2048)
        .with_component(&[&[2]], None, 2048)
        .with_component(&[&[0]], Some(0), 2048)
        .with_component(&[&[0]], Some(1), 2048)
        .with_component(&[&[3]], None, 2048)
        .with_component(&[&[4]], None, 2048)
        .serve("http://example.com/self.suit", env.clone())
        .serve("http://example.com/file.bin", vec![0x11; 700])
        .serve("http://example.com/file1.bin", vec![0x22; 300])
        .serve("http://example.com/file2.bin", vec![0x33; 900])
        // Keys for encrypted payloads (the published KEK and an arbitrary P-256
        // scalar), so encryption-info parameters reach the decryptor.
        .with_kek(None, b"aaaaaaaaaaaaaaaa")
        .with_device_key(None, &[0x42; 32]);
    let before = dev.rollback.0;
    match dev.with_dependencies(&keys, |p| a.update(p)) {
        Ok(s) => assert_eq!(dev.rollback.0, s.sequence_number),
        Err(_) => assert_eq!(dev.rollback.0, before),
    }
    let _ = dev.with_dependencies(&keys, |p| a.invoke(p));
});
