//! Benchmarks recorded in BENCHMARKS.md. Run: `cargo bench -p suitcase-processor`.
//!
//! - `example3/*`: the cost of processing example 3 beyond its signature check:
//!   `verify` is the COSE_Sign1 verification alone; `authenticate` adds decoding, the
//!   manifest digest and the policy; `authenticate+update` runs the whole update
//!   (shared sequence with try-each, install with fetch into the inactive slot,
//!   image-match, validate) with 16-byte images, so hashing is negligible.
//! - `pipeline/*`: a 4 MiB payload through the install pipeline (source → SHA-256 +
//!   write into RAM storage) next to SHA-256 alone over the same bytes.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sha2::{Digest as _, Sha256};
use suitcase_cose::CoseMessage;
use suitcase_processor::authenticate;
use suitcase_processor::pipeline::{self, Source};
use suitcase_processor::platform::{StaticKeys, Target, TrustAnchor};
use suitcase_processor::storage::{MemoryComponent, MemoryStorage};
use suitcase_processor::suit::{ComponentId, Envelope};
use suitcase_testkit::lean::Example3;

fn example3(c: &mut Criterion) {
    let fx = Example3::new();
    let env = Envelope::decode(&fx.envelope).unwrap();
    let block = env.auth.blocks().next().unwrap();
    let payload = env.auth.signed_payload;
    let anchors = [TrustAnchor {
        key: fx.key.as_verifying_key(),
        kid: None,
    }];
    let keys = StaticKeys {
        anchors: &anchors,
        rules: &[],
    };

    let mut g = c.benchmark_group("example3");
    g.bench_function("verify", |bench| {
        bench.iter(|| {
            let msg = CoseMessage::decode(black_box(block)).unwrap();
            fx.key
                .as_verifying_key()
                .verify(&msg, black_box(payload))
                .unwrap()
        })
    });
    g.bench_function("authenticate", |bench| {
        bench.iter(|| authenticate(black_box(&fx.envelope), &keys).unwrap())
    });
    g.bench_function("authenticate+update", |bench| {
        bench.iter(|| fx.authenticate_and_update(&keys).unwrap())
    });
    g.finish();
}

fn pipeline_4mib(c: &mut Criterion) {
    const N: usize = 4 << 20;
    let payload: Vec<u8> = (0..N as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut buf = vec![0u8; N];
    let id = [0x81, 0x41, 0x00];
    let target = Target {
        index: 0,
        id: ComponentId::decode(&id).unwrap(),
        slot: None,
    };
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Bytes(N as u64));
    g.sample_size(30);
    g.bench_function("sha256-only", |bench| {
        bench.iter(|| Sha256::digest(black_box(&payload)))
    });
    g.bench_function("install-4MiB", |bench| {
        bench.iter(|| {
            let mut comps = [MemoryComponent {
                id: &id,
                slot: None,
                data: &mut buf,
                len: 0,
            }];
            let mut s = MemoryStorage {
                components: &mut comps,
            };
            pipeline::install(
                &mut s,
                &target,
                None,
                Source::Bytes(black_box(&payload)),
                None,
            )
            .unwrap()
        })
    });
    g.finish();
}

/// The same 4 MiB through the pipeline with decryption in the pass (AES-128-CTR and
/// AES-128-GCM, A128KW recipient): digest + decrypt + write, next to SHA-256 alone.
#[cfg(feature = "encryption")]
fn pipeline_decrypt_4mib(c: &mut Criterion) {
    use suitcase_cose::encryption::ContentAlgorithm;
    use suitcase_processor::decrypt::Decryptor;
    use suitcase_processor::pipeline::Transform;
    use suitcase_processor::platform::{NamedKey, StaticDecryptionKeys};
    use suitcase_testkit::encrypt::{Recipient, encrypt};

    const N: usize = 4 << 20;
    let payload: Vec<u8> = (0..N as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let kek = [0x61u8; 16];
    let cek = [0x42u8; 16];
    let named = [NamedKey {
        kid: None,
        key: &kek,
    }];
    let keys = StaticDecryptionKeys {
        keks: &named,
        ecdh: &[],
    };
    let recipients = [Recipient::Kw {
        kid: None,
        kek: &kek,
    }];
    let mut buf = vec![0u8; N + 16];
    let id = [0x81, 0x41, 0x00];
    let target = Target {
        index: 0,
        id: ComponentId::decode(&id).unwrap(),
        slot: None,
    };
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Bytes(N as u64));
    g.sample_size(20);
    // The keystream alone, for the bound: serial passes run at 1 / (1/SHA + 1/AES).
    g.bench_function("aes128ctr-only", |bench| {
        let (info, ciphertext) = encrypt(
            ContentAlgorithm::A128Ctr,
            &cek,
            &[7u8; 16],
            &recipients,
            &payload,
        );
        let mut data = ciphertext.clone();
        bench.iter(|| {
            let mut d = Decryptor::new(&info, &keys).unwrap();
            data.copy_from_slice(&ciphertext);
            let n = Transform::apply(&mut d, black_box(&mut data)).unwrap();
            assert_eq!(n, N);
        })
    });
    for (name, alg, iv) in [
        (
            "install-aes128ctr-4MiB",
            ContentAlgorithm::A128Ctr,
            &[7u8; 16][..],
        ),
        (
            "install-aes128gcm-4MiB",
            ContentAlgorithm::A128Gcm,
            &[7u8; 12][..],
        ),
    ] {
        let (info, ciphertext) = encrypt(alg, &cek, iv, &recipients, &payload);
        g.bench_function(name, |bench| {
            bench.iter(|| {
                let mut comps = [MemoryComponent {
                    id: &id,
                    slot: None,
                    data: &mut buf,
                    len: 0,
                }];
                let mut s = MemoryStorage {
                    components: &mut comps,
                };
                let mut d = Decryptor::new(&info, &keys).unwrap();
                let w = pipeline::install(
                    &mut s,
                    &target,
                    None,
                    Source::Bytes(black_box(&ciphertext)),
                    Some(&mut d),
                )
                .unwrap();
                assert_eq!(w.len, N as u64);
                w
            })
        });
    }
    g.finish();
}

#[cfg(not(feature = "encryption"))]
fn pipeline_decrypt_4mib(_c: &mut Criterion) {}

criterion_group!(benches, example3, pipeline_4mib, pipeline_decrypt_4mib);
criterion_main!(benches);
