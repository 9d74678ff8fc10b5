extern crate std;
use std::vec::Vec;

use suitcase_flash_sim::SimFlash;

use super::*;

const fn run(size: u32, count: u32) -> SectorRun {
    SectorRun { size, count }
}

const S4K: &[SectorRun] = &[run(4096, 2)];
const P: &[SectorRun] = &[run(4096, 4)];
const S: &[SectorRun] = &[run(4096, 5)];

fn layout<'g>(primary: &'g [SectorRun], secondary: &'g [SectorRun]) -> Layout<'g> {
    Layout {
        primary: Region {
            offset: 0x10000,
            sectors: primary,
        },
        secondary: Region {
            offset: 0x40000,
            sectors: secondary,
        },
        state: Region {
            offset: 0,
            sectors: S4K,
        },
        counter: Region {
            offset: 0x8000,
            sectors: S4K,
        },
        header_size: 1024,
        erased: 0xFF,
        trial_boots: 1,
    }
}

type F = SimFlash<8, 1024>;

#[test]
fn a_uniform_layout_plans_one_sector_per_unit() {
    let p = layout(P, S).plan::<F>().unwrap();
    assert_eq!(p.unit, 4096);
    assert_eq!(p.max_units, 4);
    assert_eq!(p.frame, 16);
    assert_eq!(p.max_image(), 4 * 4096 - 1024);
    assert_eq!(p.units_for(3072), 1);
    assert_eq!(p.units_for(3073), 2);
    assert_eq!(p.state[1].offset, 4096);
    assert_eq!(p.journal_frames, (4096 - 32) / 16);
}

#[test]
fn mixed_sectors_make_units_of_the_largest() {
    let pri = [run(1024, 4), run(4096, 1), run(8192, 2)];
    let sec = [run(8192, 4)];
    let p = layout(&pri, &sec).plan::<F>().unwrap();
    assert_eq!(p.unit, 8192);
    assert_eq!(p.max_units, 3);
}

#[test]
fn a_sector_across_a_unit_boundary_is_refused() {
    // 4 KiB, then 8 KiB: the second sector crosses the 8 KiB boundary.
    let pri = [run(4096, 1), run(8192, 2)];
    let sec = [run(8192, 4)];
    assert_eq!(
        layout(&pri, &sec).plan::<F>(),
        Err(LayoutError::UnitStraddle)
    );
}

#[test]
fn the_secondary_needs_a_spare_unit() {
    assert_eq!(
        layout(P, &[run(4096, 1)]).plan::<F>(),
        Err(LayoutError::SlotTooSmall)
    );
    // One unit more than the primary is what a full-size image needs.
    assert_eq!(layout(P, &[run(4096, 4)]).plan::<F>().unwrap().max_units, 3);
}

#[test]
fn header_size_is_checked() {
    let mut l = layout(P, S);
    l.header_size = 1020;
    assert_eq!(l.plan::<F>(), Err(LayoutError::HeaderSize));
    l.header_size = 32;
    assert_eq!(l.plan::<F>(), Err(LayoutError::HeaderSize));
    l.header_size = 4 * 4096;
    assert_eq!(l.plan::<F>(), Err(LayoutError::HeaderSize));
}

#[test]
fn sectors_must_be_erase_units() {
    assert_eq!(
        layout(&[run(512, 8)], S).plan::<F>(),
        Err(LayoutError::Sector)
    );
    let mut l = layout(P, S);
    l.primary.offset = 0x10200;
    assert_eq!(l.plan::<F>(), Err(LayoutError::Sector));
}

#[test]
fn journal_banks_must_hold_an_update_and_its_revert() {
    let mut l = layout(P, S);
    let small = [run(1024, 2)];
    l.state.sectors = &small;
    // (1024 - 32) / 16 = 62 frames ≥ journal_records(4, 1) + 4 = 23.
    assert!(l.plan::<F>().is_ok());
    let big = [run(32768, 4)];
    let sec = [run(32768, 40)];
    let mut l = layout(&big, &sec);
    l.state.sectors = &small;
    // 39 units … 4 of them fit the primary: still fine; make the primary large.
    let pri = [run(32768, 39)];
    l.primary.sectors = &pri;
    // journal_records(39, 1) + 4 = 163 > 62.
    assert_eq!(l.plan::<F>(), Err(LayoutError::StateTooSmall));
}

#[test]
fn counter_and_state_need_two_banks() {
    let mut l = layout(P, S);
    let one = [run(4096, 1)];
    l.counter.sectors = &one;
    assert_eq!(l.plan::<F>(), Err(LayoutError::CounterTooSmall));
    let mut l = layout(P, S);
    l.state.sectors = &one;
    assert_eq!(l.plan::<F>(), Err(LayoutError::StateTooSmall));
}

#[test]
fn odd_values_are_refused() {
    let mut l = layout(P, S);
    l.erased = 0x5A;
    assert_eq!(l.plan::<F>(), Err(LayoutError::Erased));
    let mut l = layout(P, S);
    l.trial_boots = 0;
    assert_eq!(l.plan::<F>(), Err(LayoutError::TrialBoots));
}

#[test]
fn regions_iterate_their_sectors() {
    let r = Region {
        offset: 0,
        sectors: &[run(1024, 2), run(4096, 1)],
    };
    assert_eq!(
        r.iter().collect::<Vec<_>>(),
        [(0, 1024), (1024, 1024), (2048, 4096)]
    );
    assert_eq!(r.size(), Some(6144));
    assert_eq!(r.boundary_at_or_after(0), Some(0));
    assert_eq!(r.boundary_at_or_after(1), Some(1024));
    assert_eq!(r.boundary_at_or_after(2049), Some(6144));
    assert_eq!(r.boundary_at_or_after(6145), None);
}
