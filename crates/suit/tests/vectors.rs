//! The published vectors decode, and their decoded contents are what the READMEs say.

use std::path::PathBuf;

use suitcase_suit::{
    Command, Condition, Directive, Envelope, IndexArg, Member, Parameter, SequenceSource,
    SeverableKind,
};

fn vectors(dir: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/vectors")
        .join(dir)
}

fn read(dir: &str, name: &str) -> Vec<u8> {
    let p = vectors(dir).join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn all_suit_files() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for dir in [
        "suit-manifest-spec",
        "suit-firmware-encryption",
        "suit-trust-domains",
    ] {
        let mut names: Vec<_> = std::fs::read_dir(vectors(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".suit"))
            .collect();
        names.sort();
        for n in names {
            out.push((format!("{dir}/{n}"), read(dir, &n)));
        }
    }
    out
}

#[test]
fn every_vector_envelope_and_manifest_decode() {
    let files = all_suit_files();
    assert_eq!(files.len(), 13 + 6 + 3);
    for (name, bytes) in &files {
        let env = Envelope::decode(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let m = env.manifest().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!m.common.components.is_empty(), "{name}");
        for kind in SeverableKind::ALL {
            env.sequence(&m, kind)
                .unwrap_or_else(|e| panic!("{name} {kind:?}: {e}"));
        }
    }
}

#[test]
fn spec_examples_have_the_documented_sequence_numbers_and_blocks() {
    for n in 0..=5u64 {
        for (file, blocks) in [
            (format!("example{n}.suit"), 1),
            (format!("example{n}-unsigned.suit"), 0),
        ] {
            let bytes = read("suit-manifest-spec", &file);
            let env = Envelope::decode(&bytes).unwrap();
            assert_eq!(env.auth.block_count(), blocks, "{file}");
            assert_eq!(env.manifest().unwrap().sequence_number, n, "{file}");
        }
    }
}

#[test]
fn example2_install_and_text_are_severed_and_carried() {
    let bytes = read("suit-manifest-spec", "example2.suit");
    let env = Envelope::decode(&bytes).unwrap();
    let m = env.manifest().unwrap();
    assert!(matches!(
        m.member(SeverableKind::Install),
        Member::Severed(_)
    ));
    assert!(matches!(m.member(SeverableKind::Text), Member::Severed(_)));
    assert!(matches!(
        env.sequence(&m, SeverableKind::Install).unwrap(),
        SequenceSource::Available(_)
    ));
    assert!(env.text(&m).is_some());

    let bytes = read("suit-manifest-spec", "example2-severed.suit");
    let env = Envelope::decode(&bytes).unwrap();
    let m = env.manifest().unwrap();
    assert_eq!(
        env.sequence(&m, SeverableKind::Install).unwrap(),
        SequenceSource::Severed
    );
    assert!(env.text(&m).is_none());
}

#[test]
fn example3_shared_sequence_is_try_each_over_component_slot() {
    let bytes = read("suit-manifest-spec", "example3.suit");
    let env = Envelope::decode(&bytes).unwrap();
    let m = env.manifest().unwrap();
    let shared = m.common.shared_sequence.unwrap();
    let cmds: Vec<_> = shared.iter().map(|c| c.unwrap().1).collect();
    let Command::TryEach(t) = cmds
        .iter()
        .find(|c| matches!(c, Command::TryEach(_)))
        .unwrap()
    else {
        unreachable!()
    };
    let branches: Vec<_> = t.branches().map(|b| b.unwrap()).collect();
    assert_eq!(branches.len(), 2);
    assert!(!t.has_empty_fallback);
    for (slot, b) in branches.iter().enumerate() {
        let cmds: Vec<_> = b.iter().map(|c| c.unwrap().1).collect();
        let Command::OverrideParameters(p) = cmds[0] else {
            panic!("{cmds:?}")
        };
        assert_eq!(p.iter().next(), Some(Parameter::ComponentSlot(slot as u64)));
        assert!(matches!(cmds[1], Command::Condition(Condition::ComponentSlot, pol) if pol.0 == 5));
    }
}

#[test]
fn example4_declares_three_components_and_copies() {
    let bytes = read("suit-manifest-spec", "example4.suit");
    let env = Envelope::decode(&bytes).unwrap();
    let m = env.manifest().unwrap();
    assert_eq!(m.common.components.len(), 3);
    let ids: Vec<_> = m
        .common
        .components
        .iter()
        .map(|c| c.segments().collect::<Vec<_>>())
        .collect();
    assert_eq!(
        ids,
        vec![vec![&[0u8][..]], vec![&[2u8][..]], vec![&[1u8][..]]]
    );
    let SequenceSource::Available(install) = env.sequence(&m, SeverableKind::Install).unwrap()
    else {
        panic!()
    };
    let cmds: Vec<_> = install.iter().map(|c| c.unwrap().1).collect();
    assert_eq!(cmds[0], Command::SetComponentIndex(IndexArg::One(0)));
    assert!(
        cmds.iter()
            .any(|c| matches!(c, Command::Directive(Directive::Copy, _)))
    );
}

#[test]
fn integrated_payloads_are_found_by_their_uri() {
    let bytes = read("suit-trust-domains", "example2_integrated.suit");
    let env = Envelope::decode(&bytes).unwrap();
    let dep = env
        .integrated("#dependent.suit")
        .expect("integrated dependency");
    assert!(Envelope::decode(dep).is_ok());
    assert!(env.integrated("#nothing").is_none());
}
