//! Each spec example runs against an in-memory device and does what the spec says.
//! With the published (placeholder) digests, image-match fails exactly where the example
//! first checks an image; re-signed with real digests, the same flow runs to completion.

use suitcase_processor::report::SequenceKind;
use suitcase_processor::suit::{Condition, SeverableKind};
use suitcase_processor::{Error, authenticate};
use suitcase_testkit::device::MemDevice;
use suitcase_testkit::vectors;

use super::common::*;

const C0: &[&[u8]] = &[&[0x00]];
const C1: &[&[u8]] = &[&[0x01]];
const C2: &[&[u8]] = &[&[0x02]];

fn image_match_failed(sequence: SequenceKind, component: u32) -> Error {
    Error::ConditionFailed {
        condition: Condition::ImageMatch,
        component,
        sequence,
    }
}

#[test]
fn example0_secure_boot_validates_then_invokes() {
    let img = image(1, 34768);
    // Published: the placeholder digest matches nothing, so validate stops the boot.
    let mut dev = MemDevice::spec().with_component(C0, None, 40_000);
    dev.preload(C0, None, &img);
    let bytes = vectors::spec_example(0);
    let r = with_spec_key(|k| {
        let a = authenticate(&bytes, k).unwrap();
        dev.with_platform(|p| a.invoke(p))
    });
    assert_eq!(r, Err(image_match_failed(SequenceKind::Validate, 0)));
    assert!(dev.invoked.is_empty());

    // Real digest: validate passes and the image is invoked.
    let bytes = resigned(0, &[(P0, &img)]);
    with_spec_key(|k| {
        let a = authenticate(&bytes, k).unwrap();
        dev.with_platform(|p| a.invoke(p)).unwrap();
    });
    assert_eq!(dev.invoked, vec![(0, None)]);

    // A different image in the slot is refused.
    dev.preload(C0, None, &image(2, 34768));
    dev.invoked.clear();
    let r = with_spec_key(|k| dev.with_platform(|p| authenticate(&bytes, k).unwrap().invoke(p)));
    assert_eq!(r, Err(image_match_failed(SequenceKind::Validate, 0)));
    assert!(dev.invoked.is_empty());
}

#[test]
fn example1_fetches_and_installs() {
    let img = image(3, 34768);
    let uri = "http://example.com/file.bin";
    let fresh = || {
        MemDevice::spec()
            .with_component(C0, None, 40_000)
            .serve(uri, img.clone())
    };

    let mut dev = fresh();
    let bytes = vectors::spec_example(1);
    let r = with_spec_key(|k| dev.with_platform(|p| authenticate(&bytes, k).unwrap().update(p)));
    assert_eq!(r, Err(image_match_failed(SequenceKind::Install, 0)));
    assert_eq!(dev.fetched, vec![uri]);
    assert_eq!(
        dev.rollback.0, 0,
        "a failed update must not advance the counter"
    );

    let mut dev = fresh();
    let bytes = resigned(1, &[(P0, &img)]);
    let s = with_spec_key(|k| dev.with_platform(|p| authenticate(&bytes, k).unwrap().update(p)))
        .unwrap();
    assert_eq!(s.sequence_number, 1);
    assert_eq!(s.bytes_written, 34768);
    assert_eq!(dev.content(C0, None), &img[..]);
    assert_eq!(dev.rollback.0, 1);
}

#[test]
fn example2_uses_severed_install_and_refuses_without_it() {
    let img = image(4, 34768);
    let bytes = resigned(2, &[(P0, &img)]);
    let uri = "http://example.com/very/long/path/to/file/file.bin";
    let mut dev = MemDevice::spec()
        .with_component(C0, None, 40_000)
        .serve(uri, img.clone());
    with_spec_key(|k| dev.with_platform(|p| authenticate(&bytes, k).unwrap().update(p))).unwrap();
    assert_eq!(dev.fetched, vec![uri]);
    assert_eq!(dev.content(C0, None), &img[..]);
    with_spec_key(|k| dev.with_platform(|p| authenticate(&bytes, k).unwrap().invoke(p))).unwrap();
    assert_eq!(dev.invoked, vec![(0, None)]);

    // The severed form authenticates, cannot install, still boots.
    let severed = vectors::read(vectors::SPEC, "example2-severed.suit");
    let mut dev = MemDevice::spec().with_component(C0, None, 40_000);
    let r = with_spec_key(|k| dev.with_platform(|p| authenticate(&severed, k).unwrap().update(p)));
    assert_eq!(r, Err(Error::Severed(SeverableKind::Install)));
    assert!(dev.fetched.is_empty());
    let r = with_spec_key(|k| dev.with_platform(|p| authenticate(&severed, k).unwrap().invoke(p)));
    assert_eq!(r, Err(image_match_failed(SequenceKind::Validate, 0)));
}

#[test]
fn example3_installs_into_the_slot_that_is_not_running() {
    let (a, b) = (image(5, 34768), image(6, 76834));
    let bytes = resigned(3, &[(P0, &a), (P1, &b)]);
    let u0 = "http://example.com/file1.bin";
    let u1 = "http://example.com/file2.bin";
    for running in [0u64, 1] {
        let mut dev = MemDevice::spec()
            .with_component(C0, Some(0), 80_000)
            .with_component(C0, Some(1), 80_000)
            .serve(u0, a.clone())
            .serve(u1, b.clone());
        dev.identity.running_slot = running;
        with_spec_key(|k| dev.with_platform(|p| authenticate(&bytes, k).unwrap().update(p)))
            .unwrap();
        let (target, uri, img) = if running == 0 {
            (1, u1, &b)
        } else {
            (0, u0, &a)
        };
        assert_eq!(dev.fetched, vec![uri], "running slot {running}");
        assert_eq!(dev.content(C0, Some(target)), &img[..]);
        assert!(
            dev.content(C0, Some(running)).is_empty(),
            "the running slot is untouched"
        );
    }

    // Published digests: the slot choice is made, the image check fails.
    let mut dev = MemDevice::spec()
        .with_component(C0, Some(0), 80_000)
        .with_component(C0, Some(1), 80_000)
        .serve(u1, b.clone());
    let bytes = vectors::spec_example(3);
    let r = with_spec_key(|k| dev.with_platform(|p| authenticate(&bytes, k).unwrap().update(p)));
    assert_eq!(r, Err(image_match_failed(SequenceKind::Install, 0)));
    assert_eq!(dev.fetched, vec![u1]);
}

#[test]
fn example4_copies_across_three_components() {
    let img = image(7, 34768);
    // Load copies component 0 into 2 and checks it against the load digest: give the
    // load step the digest of the same image.
    let bytes = resigned(4, &[(P0, &img), (P1, &img)]);
    let uri = "http://example.com/file.bin";
    let mut dev = MemDevice::spec()
        .with_component(C0, None, 40_000)
        .with_component(C2, None, 40_000)
        .with_component(C1, None, 40_000)
        .serve(uri, img.clone());
    // Update: payload-fetch into staging [02], install copies it to [00], validate.
    with_spec_key(|k| dev.with_platform(|p| authenticate(&bytes, k).unwrap().update(p))).unwrap();
    assert_eq!(dev.fetched, vec![uri]);
    assert_eq!(dev.content(C2, None), &img[..], "staging");
    assert_eq!(dev.content(C0, None), &img[..], "installed");
    assert!(dev.content(C1, None).is_empty(), "nothing loaded yet");
    // Invoke: validate, load copies [00] into RAM [01], invoke index 2.
    with_spec_key(|k| dev.with_platform(|p| authenticate(&bytes, k).unwrap().invoke(p))).unwrap();
    assert_eq!(dev.content(C1, None), &img[..], "loaded");
    assert_eq!(dev.invoked, vec![(2, None)]);

    // Published: the fetched image fails its check in payload-fetch.
    let mut dev = MemDevice::spec()
        .with_component(C0, None, 40_000)
        .with_component(C2, None, 40_000)
        .with_component(C1, None, 40_000)
        .serve(uri, img.clone());
    let bytes = vectors::spec_example(4);
    let r = with_spec_key(|k| dev.with_platform(|p| authenticate(&bytes, k).unwrap().update(p)));
    assert_eq!(r, Err(image_match_failed(SequenceKind::PayloadFetch, 1)));
}

#[test]
fn example5_installs_two_images() {
    let (a, b) = (image(8, 34768), image(9, 76834));
    let bytes = resigned(5, &[(P0, &a), (P1, &b)]);
    let u0 = "http://example.com/file1.bin";
    let u1 = "http://example.com/file2.bin";
    let mut dev = MemDevice::spec()
        .with_component(C0, None, 40_000)
        .with_component(C1, None, 80_000)
        .serve(u0, a.clone())
        .serve(u1, b.clone());
    let s = with_spec_key(|k| dev.with_platform(|p| authenticate(&bytes, k).unwrap().update(p)))
        .unwrap();
    assert_eq!(s.components_written, 0b11);
    assert_eq!(dev.fetched, vec![u0, u1]);
    assert_eq!(dev.content(C0, None), &a[..]);
    assert_eq!(dev.content(C1, None), &b[..]);
    with_spec_key(|k| dev.with_platform(|p| authenticate(&bytes, k).unwrap().invoke(p))).unwrap();
    assert_eq!(dev.invoked, vec![(0, None)]);

    let mut dev = MemDevice::spec()
        .with_component(C0, None, 40_000)
        .with_component(C1, None, 80_000)
        .serve(u0, a.clone())
        .serve(u1, b.clone());
    let bytes = vectors::spec_example(5);
    let r = with_spec_key(|k| dev.with_platform(|p| authenticate(&bytes, k).unwrap().update(p)));
    assert_eq!(r, Err(image_match_failed(SequenceKind::Install, 0)));
}
