//! `EncryptionInfo::decode` on arbitrary bytes must never panic; every recipient of
//! what it accepts goes through its unwrap (the published A128KW KEK, an A256KW KEK, a
//! P-256 device scalar), and a content key that unwraps drives the streaming decryptor
//! over the input itself in uneven pieces. Seeded with the published `.cose` vectors.

#![no_main]

use libfuzzer_sys::fuzz_target;
use suitcase_cose::encryption::{ContentDecryptor, EncryptionInfo, KeyAlgorithm};

fuzz_target!(|data: &[u8]| {
    let Ok(info) = EncryptionInfo::decode(data) else {
        return;
    };
    assert!(info.recipient_count() >= 1);
    for r in info.recipients() {
        let cek = match r.alg {
            KeyAlgorithm::A128Kw => r.unwrap_aes_kw(b"aaaaaaaaaaaaaaaa", info.alg),
            KeyAlgorithm::A256Kw => r.unwrap_aes_kw(&[0x61; 32], info.alg),
            KeyAlgorithm::EcdhEsA128Kw => r.unwrap_ecdh_es(&[0x42; 32], info.alg),
        };
        let Ok(cek) = cek else { continue };
        let mut d = ContentDecryptor::new(&info, &cek).expect("a decoded info and its CEK fit");
        let mut buf = data.to_vec();
        let mut released = 0;
        for piece in buf.chunks_mut(13) {
            let n = d.update(piece).expect("within the keystream limit");
            assert!(n <= piece.len());
            released += n;
        }
        let _ = d.finish();
        assert!(released + 16 >= data.len());
    }
});
