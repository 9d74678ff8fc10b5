//! The benchmark fixture shared by `benches/processor.rs` and the callgrind harness
//! `examples/example3_loop.rs`: example 3 re-signed for two 16-byte images, and a lean
//! device as a microcontroller would have it (fixed buffers, a transport over slices,
//! no reports), so the figures measure the processor rather than the test harness.

use suitcase_cose::{Algorithm, OwnedVerifyingKey, signing_key_from_pem, verifying_key_from_pem};
use suitcase_processor::platform::{
    Fetch, FetchError, KeyStore, MemoryRollback, NoClock, NoDecryptionKeys, NoInvoke, NoPolicy,
    StaticIdentity,
};
use suitcase_processor::report::NoReport;
use suitcase_processor::storage::{MemoryComponent, MemoryStorage};
use suitcase_processor::{Error, Platform, UpdateSummary, authenticate};

use crate::device::{SPEC_CLASS, SPEC_VENDOR};
use crate::resign::{Rewrite, Signer};
use crate::vectors::{self, PLACEHOLDER_0, PLACEHOLDER_1};

/// Example 3's URIs: slot 0 fetches the first, slot 1 the second.
pub const EXAMPLE3_URIS: [&str; 2] = [
    "http://example.com/file1.bin",
    "http://example.com/file2.bin",
];

/// Example 3, re-signed with the published key (ES256) for two 16-byte images.
pub struct Example3 {
    /// The envelope.
    pub envelope: Vec<u8>,
    /// The images for slot 0 and slot 1.
    pub images: [Vec<u8>; 2],
    /// The published verification key.
    pub key: OwnedVerifyingKey,
}

impl Example3 {
    /// Builds the fixture (panics if the vectors are missing: benchmark setup).
    pub fn new() -> Self {
        let (public, private) = vectors::spec_keys();
        let images = [vec![0xa5u8; 16], vec![0x5au8; 16]];
        let envelope = Rewrite {
            images: [
                (PLACEHOLDER_0.to_vec(), images[0].clone()),
                (PLACEHOLDER_1.to_vec(), images[1].clone()),
            ]
            .into_iter()
            .collect(),
            sequence_number: None,
            signers: vec![Signer::Sign(
                signing_key_from_pem(&private).expect("published key"),
                Algorithm::Es256,
            )],
        }
        .apply(&vectors::spec_example(3))
        .expect("re-signing example 3");
        Example3 {
            envelope,
            images,
            key: verifying_key_from_pem(&public).expect("published key"),
        }
    }

    /// `authenticate` + `update` on a fresh lean device running slot 0.
    pub fn authenticate_and_update(&self, keys: &dyn KeyStore) -> Result<UpdateSummary, Error> {
        let auth = authenticate(&self.envelope, keys)?;
        let id = [0x81, 0x41, 0x00];
        let (mut s0, mut s1) = ([0u8; 64], [0u8; 64]);
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
        let served = [
            (EXAMPLE3_URIS[0], &self.images[0][..]),
            (EXAMPLE3_URIS[1], &self.images[1][..]),
        ];
        let identity = StaticIdentity {
            vendor: SPEC_VENDOR,
            class: SPEC_CLASS,
            device: None,
            running_slot: 0,
        };
        auth.update(&mut Platform {
            storage: &mut MemoryStorage {
                components: &mut comps,
            },
            fetch: &mut SliceFetch::new(&served),
            identity: &identity,
            rollback: &mut MemoryRollback(0),
            clock: &NoClock,
            invoker: &mut NoInvoke,
            reporter: &mut NoReport,
            decryption: &NoDecryptionKeys,
            policy: &mut NoPolicy,
            dependencies: None,
        })
    }
}

impl Default for Example3 {
    fn default() -> Self {
        Self::new()
    }
}

/// A transport over fixed slices, found by URI.
pub struct SliceFetch<'a> {
    served: &'a [(&'a str, &'a [u8])],
    current: &'a [u8],
}

impl<'a> SliceFetch<'a> {
    /// Serves each `(uri, bytes)`.
    pub fn new(served: &'a [(&'a str, &'a [u8])]) -> Self {
        SliceFetch {
            served,
            current: &[],
        }
    }
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
        let (head, tail) = self.current.split_at(n);
        buf[..n].copy_from_slice(head);
        self.current = tail;
        Ok(n)
    }
}
