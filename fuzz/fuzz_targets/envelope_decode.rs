//! The SUIT decoder on arbitrary bytes: `Envelope::decode`, the manifest, every
//! sequence and every command in it (nested try-each branches and run-sequence bodies
//! included) must never panic, and a decoded sequence must iterate without error (it
//! was validated whole at decode time).

#![no_main]

use libfuzzer_sys::fuzz_target;
use suitcase_suit::{Command, CommandSequence, Envelope, SequenceSource, SeverableKind};

fn walk(seq: CommandSequence<'_>, depth: usize) {
    assert!(depth < suitcase_suit::command::MAX_SEQUENCE_DEPTH + 1);
    for item in seq.iter() {
        let (_, cmd) = item.expect("a validated sequence iterates");
        match cmd {
            Command::TryEach(t) => {
                for b in t.branches() {
                    walk(b.expect("validated branch"), depth + 1);
                }
            }
            Command::RunSequence(s) => walk(s, depth + 1),
            Command::OverrideParameters(p) | Command::SetParameters(p) => {
                let _ = p.iter().count();
            }
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = CommandSequence::decode(data).map(|s| walk(s, 0));
    let Ok(env) = Envelope::decode(data) else { return };
    let _ = env.auth.blocks().count();
    let Ok(m) = env.manifest() else { return };
    for kind in SeverableKind::ALL {
        if let Ok(SequenceSource::Available(s)) = env.sequence(&m, kind) {
            walk(s, 0);
        }
    }
    for s in [m.common.shared_sequence, m.validate, m.load, m.invoke, m.uninstall].into_iter().flatten() {
        walk(s, 0);
    }
    let _ = env.text(&m);
    let _ = env.integrated_names().count();
});
