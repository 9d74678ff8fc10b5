//! Instruction-count harness for BENCHMARKS.md: runs example 3 (re-signed with two
//! 16-byte images) 2000 times in one of three modes, for `valgrind --tool=callgrind`:
//!
//! - `verify`: the COSE_Sign1 verification alone;
//! - `full`: `authenticate` + `update` (what a device does with the envelope);
//! - `update`: `update` alone on an already authenticated envelope.
//!
//! ```text
//! cargo build --profile bench -p suitcase-processor --example example3_loop
//! valgrind --tool=callgrind target/release/examples/example3_loop verify   # and full, update
//! ```
//!
//! Instruction counts are exact and repeatable, unlike wall time on a shared machine.

use std::hint::black_box;

use suitcase_cose::{Algorithm, CoseMessage, signing_key_from_pem, verifying_key_from_pem};
use suitcase_processor::Platform;
use suitcase_processor::authenticate;
use suitcase_processor::platform::{
    Fetch, FetchError, MemoryRollback, NoClock, NoDecryptionKeys, NoInvoke, StaticIdentity,
    StaticKeys, TrustAnchor,
};
use suitcase_processor::report::NoReport;
use suitcase_processor::storage::{MemoryComponent, MemoryStorage};
use suitcase_processor::suit::Envelope;
use suitcase_testkit::device::{SPEC_CLASS, SPEC_VENDOR};
use suitcase_testkit::resign::{Rewrite, Signer};
use suitcase_testkit::vectors::{self, PLACEHOLDER_0, PLACEHOLDER_1};

/// A transport over fixed slices, as a microcontroller would have it.
struct SliceFetch<'a> {
    served: [(&'static str, &'a [u8]); 2],
    current: &'a [u8],
}

impl Fetch for SliceFetch<'_> {
    fn open(&mut self, uri: &str, _args: Option<&[u8]>) -> Result<(), FetchError> {
        self.current = self
            .served
            .iter()
            .find(|(u, _)| *u == uri)
            .ok_or(FetchError::NotFound)?
            .1;
        Ok(())
    }
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, FetchError> {
        let n = self.current.len().min(buf.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = &self.current[n..];
        Ok(n)
    }
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "full".into());
    let (public, private) = vectors::spec_keys();
    let key = verifying_key_from_pem(&public).unwrap();
    let (a, b) = (vec![0xa5u8; 16], vec![0x5au8; 16]);
    let bytes = Rewrite {
        images: [
            (PLACEHOLDER_0.to_vec(), a.clone()),
            (PLACEHOLDER_1.to_vec(), b.clone()),
        ]
        .into_iter()
        .collect(),
        sequence_number: None,
        signers: vec![Signer::Sign(
            signing_key_from_pem(&private).unwrap(),
            Algorithm::Es256,
        )],
    }
    .apply(&vectors::spec_example(3))
    .unwrap();
    let env = Envelope::decode(&bytes).unwrap();
    let block = env.auth.blocks().next().unwrap();
    let anchors = [TrustAnchor {
        key: key.as_verifying_key(),
        kid: None,
    }];
    let keys = StaticKeys {
        anchors: &anchors,
        rules: &[],
    };
    let identity = StaticIdentity {
        vendor: SPEC_VENDOR,
        class: SPEC_CLASS,
        device: None,
        running_slot: 0,
    };
    let id = [0x81, 0x41, 0x00];
    let (mut s0, mut s1) = ([0u8; 64], [0u8; 64]);
    let authenticated = authenticate(&bytes, &keys).unwrap();
    for _ in 0..2000 {
        if mode == "verify" {
            let msg = CoseMessage::decode(black_box(block)).unwrap();
            key.as_verifying_key()
                .verify(&msg, black_box(env.auth.signed_payload))
                .unwrap();
            continue;
        }
        let mut comps = [
            MemoryComponent {
                id: &id,
                slot: Some(0),
                data: &mut s0,
                len: 0,
            },
            MemoryComponent {
                id: &id,
                slot: Some(1),
                data: &mut s1,
                len: 0,
            },
        ];
        let mut storage = MemoryStorage {
            components: &mut comps,
        };
        let mut fetch = SliceFetch {
            served: [
                ("http://example.com/file1.bin", &a),
                ("http://example.com/file2.bin", &b),
            ],
            current: &[],
        };
        let mut rollback = MemoryRollback(0);
        let mut platform = Platform {
            storage: &mut storage,
            fetch: &mut fetch,
            identity: &identity,
            rollback: &mut rollback,
            clock: &NoClock,
            invoker: &mut NoInvoke,
            reporter: &mut NoReport,
            decryption: &NoDecryptionKeys,
            policy: &mut suitcase_processor::platform::NoPolicy,
        };
        if mode == "update" {
            black_box(authenticated.update(&mut platform).unwrap());
        } else {
            let auth = authenticate(black_box(&bytes), &keys).unwrap();
            black_box(auth.update(&mut platform).unwrap());
        }
    }
}
