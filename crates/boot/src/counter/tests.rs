//! One test per row of the counter table, and every cut of every operation.

use suitcase_flash_sim::{Fault, Geometry, Options, SimFlash};

use super::*;
use crate::layout::{Layout, Region, SectorRun};

type F = SimFlash<4, 256>;
const SECTORS: &[SectorRun] = &[SectorRun {
    size: 256,
    count: 2,
}];
const SLOT: &[SectorRun] = &[SectorRun {
    size: 256,
    count: 8,
}];

fn plan(erased: u8) -> Plan {
    Layout {
        primary: Region {
            offset: 1024,
            sectors: SLOT,
        },
        secondary: Region {
            offset: 1024,
            sectors: SLOT,
        },
        state: Region {
            offset: 0,
            sectors: &[SectorRun {
                size: 1024,
                count: 2,
            }],
        },
        counter: Region {
            offset: 0,
            sectors: SECTORS,
        },
        header_size: 64,
        erased,
        trial_boots: 1,
    }
    .plan::<F>()
    .unwrap()
}

fn flash(erased: u8) -> F {
    SimFlash::new(Geometry::uniform(256, 12), Options { erased, log: false })
}

#[test]
fn row1_an_empty_counter_reads_zero_and_starts_in_bank_0() {
    for e in [0xFF, 0x00] {
        let mut f = flash(e);
        let mut c = Counter::new(&mut f, plan(e));
        assert_eq!(c.read().unwrap(), 0);
        c.advance_to(3).unwrap();
        assert_eq!(c.read().unwrap(), 3);
        assert_eq!(f.wear()[..2], [1, 0]);
    }
}

#[test]
fn row2_an_advance_appends_to_the_bank_holding_the_value() {
    let mut f = flash(0xFF);
    let p = plan(0xFF);
    for v in 1..=16 {
        Counter::new(&mut f, p).advance_to(v).unwrap();
    }
    // 256 / 16 = 16 records fill bank 0 with one erase.
    assert_eq!(f.wear()[..2], [1, 0]);
    assert_eq!(Counter::new(&mut f, p).read().unwrap(), 16);
}

#[test]
fn row3_a_full_bank_moves_the_value_to_the_other() {
    let mut f = flash(0x00);
    let p = plan(0x00);
    for v in 1..=40 {
        Counter::new(&mut f, p).advance_to(v * 10).unwrap();
        assert_eq!(Counter::new(&mut f, p).read().unwrap(), v * 10);
    }
    assert_eq!(f.wear()[..2], [2, 1]);
    assert!(f.violations().is_empty());
}

#[test]
fn equal_is_a_no_op_and_lower_is_refused() {
    let mut f = flash(0xFF);
    let p = plan(0xFF);
    let mut c = Counter::new(&mut f, p);
    c.advance_to(5).unwrap();
    assert_eq!(c.advance_to(5), Ok(true));
    assert_eq!(c.advance_to(4), Ok(false));
    assert_eq!(c.advance(4), Err(RollbackError::WouldDecrease));
    assert_eq!(c.current(), Ok(5));
    assert_eq!(f.stats().writes, 1);
}

/// Cut (and tear) every operation of 40 advances, over both erased values: the value read
/// after the cut is the old or the new one, never lower, and advancing again works.
#[test]
fn every_cut_of_every_advance_keeps_the_value() {
    for e in [0xFF, 0x00] {
        let p = plan(e);
        let mut clean = flash(e);
        for v in 1..=40 {
            Counter::new(&mut clean, p).advance_to(v).unwrap();
        }
        let total = clean.ops();
        for k in 0..total {
            for fault in [Fault::Cut, Fault::Tear { seed: k }] {
                let mut f = flash(e);
                f.schedule(k, fault);
                let mut floor = 0;
                for v in 1..=40u64 {
                    let r = Counter::new(&mut f, p).advance_to(v);
                    if r.is_err() {
                        f.restore_power();
                        let now = Counter::new(&mut f, p).read().unwrap();
                        assert!(
                            now == v || now == v - 1,
                            "cut {k}: read {now} advancing to {v}"
                        );
                        Counter::new(&mut f, p).advance_to(v).unwrap();
                    }
                    let now = Counter::new(&mut f, p).read().unwrap();
                    assert!(now >= floor && now == v, "cut {k}: {now} after {v}");
                    floor = now;
                }
                assert!(f.violations().is_empty(), "cut {k}: {:?}", f.violations());
            }
        }
    }
}
