//! Anti-rollback: the sequence number must be above the installed one, and only a fully
//! successful update advances the stored number.

use suitcase_processor::{Error, authenticate};
use suitcase_testkit::device::MemDevice;
use suitcase_testkit::resign::Signer;
use suitcase_testkit::vectors;

use super::common::*;

const C0: &[&[u8]] = &[&[0x00]];
const URI: &str = "http://example.com/file.bin";

fn example1_with_seq(seq: u64, img: &[u8]) -> Vec<u8> {
    let mut rw = rewrite(
        &[(P0, img)],
        vec![Signer::Sign(
            spec_private(),
            suitcase_cose::Algorithm::Es256,
        )],
    );
    rw.sequence_number = Some(seq);
    rw.apply(&vectors::spec_example(1)).unwrap()
}

#[test]
fn equal_or_lower_sequence_numbers_are_refused_before_anything_runs() {
    let img = image(11, 1000);
    for installed in [5u64, 6, 100] {
        let bytes = example1_with_seq(5, &img);
        let mut dev = MemDevice::spec()
            .with_component(C0, None, 2000)
            .serve(URI, img.clone());
        dev.rollback.0 = installed;
        let r =
            with_spec_key(|k| dev.with_platform(|p| authenticate(&bytes, k).unwrap().update(p)));
        assert_eq!(
            r,
            Err(Error::Rollback {
                installed,
                offered: 5
            })
        );
        assert!(
            dev.fetched.is_empty(),
            "nothing may be fetched for a refused manifest"
        );
        assert_eq!(dev.rollback.0, installed);
    }
}

#[test]
fn a_newer_manifest_installs_and_advances_the_counter() {
    let img = image(12, 1000);
    let mut dev = MemDevice::spec()
        .with_component(C0, None, 2000)
        .serve(URI, img.clone());
    dev.rollback.0 = 4;
    let bytes = example1_with_seq(5, &img);
    with_spec_key(|k| dev.with_platform(|p| authenticate(&bytes, k).unwrap().update(p))).unwrap();
    assert_eq!(dev.rollback.0, 5);
    // The same manifest again is now a replay.
    let r = with_spec_key(|k| dev.with_platform(|p| authenticate(&bytes, k).unwrap().update(p)));
    assert_eq!(
        r,
        Err(Error::Rollback {
            installed: 5,
            offered: 5
        })
    );
}

#[test]
fn a_failed_install_leaves_the_counter_unchanged() {
    let img = image(13, 1000);
    let bytes = example1_with_seq(9, &img);
    // The transport serves a different image: image-match fails after the fetch.
    let mut dev = MemDevice::spec()
        .with_component(C0, None, 2000)
        .serve(URI, image(14, 1000));
    dev.rollback.0 = 3;
    let r = with_spec_key(|k| dev.with_platform(|p| authenticate(&bytes, k).unwrap().update(p)));
    assert!(matches!(r, Err(Error::ConditionFailed { .. })), "{r:?}");
    assert_eq!(dev.rollback.0, 3);
    // The transport has nothing: the fetch fails.
    let mut dev = MemDevice::spec().with_component(C0, None, 2000);
    dev.rollback.0 = 3;
    let r = with_spec_key(|k| dev.with_platform(|p| authenticate(&bytes, k).unwrap().update(p)));
    assert!(matches!(r, Err(Error::Fetch(_))), "{r:?}");
    assert_eq!(dev.rollback.0, 3);
    // The image is larger than the component: storage refuses it.
    let mut dev = MemDevice::spec()
        .with_component(C0, None, 500)
        .serve(URI, img.clone());
    dev.rollback.0 = 3;
    let r = with_spec_key(|k| dev.with_platform(|p| authenticate(&bytes, k).unwrap().update(p)));
    assert!(matches!(r, Err(Error::Storage(_))), "{r:?}");
    assert_eq!(dev.rollback.0, 3);
}

#[test]
fn booting_an_older_manifest_than_installed_is_refused() {
    let img = image(15, 1000);
    let mut dev = MemDevice::spec().with_component(C0, None, 2000);
    dev.preload(C0, None, &img);
    dev.rollback.0 = 7;
    let mut rw = rewrite(
        &[(P0, &img)],
        vec![Signer::Sign(
            spec_private(),
            suitcase_cose::Algorithm::Es256,
        )],
    );
    for (seq, ok) in [(6u64, false), (7, true), (8, true)] {
        rw.sequence_number = Some(seq);
        let bytes = rw.apply(&vectors::spec_example(0)).unwrap();
        let r =
            with_spec_key(|k| dev.with_platform(|p| authenticate(&bytes, k).unwrap().invoke(p)));
        assert_eq!(r.is_ok(), ok, "seq {seq}: {r:?}");
    }
}
