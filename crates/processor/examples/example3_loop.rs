//! Instruction-count harness for BENCHMARKS.md: runs example 3 (re-signed with two
//! 16-byte images) 2000 times in one of three modes, for `valgrind --tool=callgrind`:
//!
//! - `verify`: the COSE_Sign1 verification alone;
//! - `full`: `authenticate` + `update` on a lean device (what a device does with the
//!   envelope; `suitcase_testkit::lean::Example3`, the same fixture as the criterion bench).
//!
//! ```text
//! cargo build --profile bench -p suitcase-processor --example example3_loop
//! valgrind --tool=callgrind target/release/examples/example3_loop verify   # and full
//! # an optional second argument sets the iterations (2000 by default)
//! ```
//!
//! Instruction counts are exact and repeatable, unlike wall time on a shared machine.

use std::hint::black_box;

use suitcase_cose::CoseMessage;
use suitcase_processor::platform::{StaticKeys, TrustAnchor};
use suitcase_processor::suit::Envelope;
use suitcase_testkit::lean::Example3;

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "full".into());
    // An optional second argument: fewer iterations for a quicker profile.
    let iterations: u32 = std::env::args()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let fx = Example3::new();
    let env = Envelope::decode(&fx.envelope).unwrap();
    let block = env.auth.blocks().next().unwrap();
    let anchors = [TrustAnchor {
        key: fx.key.as_verifying_key(),
        kid: None,
    }];
    let keys = StaticKeys {
        anchors: &anchors,
        rules: &[],
    };
    for _ in 0..iterations {
        if mode == "verify" {
            let msg = CoseMessage::decode(black_box(block)).unwrap();
            fx.key
                .as_verifying_key()
                .verify(&msg, black_box(env.auth.signed_payload))
                .unwrap();
        } else {
            black_box(fx.authenticate_and_update(&keys).unwrap());
        }
    }
}
