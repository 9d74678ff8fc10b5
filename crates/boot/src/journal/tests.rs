//! One test per row of the live-bank table.

use suitcase_flash_sim::{Geometry, Options, SimFlash};

use super::*;
use crate::layout::{Layout, Region, SectorRun};
use crate::state::{Idle, Mode, Outcome, Requested, Trial};

type F = SimFlash<8, 512>;
const SLOT: &[SectorRun] = &[SectorRun {
    size: 512,
    count: 4,
}];

fn plan() -> Plan {
    Layout {
        primary: Region {
            offset: 2048,
            sectors: SLOT,
        },
        secondary: Region {
            offset: 2048,
            sectors: SLOT,
        },
        state: Region {
            offset: 0,
            sectors: &[SectorRun {
                size: 512,
                count: 2,
            }],
        },
        counter: Region {
            offset: 1024,
            sectors: &[SectorRun {
                size: 512,
                count: 2,
            }],
        },
        header_size: 64,
        erased: 0xFF,
        trial_boots: 1,
    }
    .plan::<F>()
    .unwrap()
}

fn flash() -> F {
    SimFlash::new(Geometry::uniform(512, 20), Options::default())
}

fn requested() -> State {
    State::Requested(Requested { mode: Mode::Test })
}

fn trial() -> State {
    State::Trial(Trial {
        units: 2,
        seq: 3,
        attempts: 0,
    })
}

/// Writes a checkpoint of `state`, generation `g`, into `bank`.
fn put_checkpoint(f: &mut F, bank: u8, g: u32, state: &State) {
    let b = plan().state[bank as usize];
    f.erase(b.offset, b.offset + b.size).unwrap();
    f.write(b.offset, &encode_checkpoint(state.checkpoint(g), bank))
        .unwrap();
}

#[test]
fn row1_bank_1_newer_is_live() {
    let mut f = flash();
    put_checkpoint(&mut f, 0, 4, &requested());
    put_checkpoint(&mut f, 1, 5, &trial());
    assert_eq!(Journal::read(&mut f, &plan()).unwrap().1, trial());
}

#[test]
fn row2_bank_0_newer_or_equal_is_live() {
    let mut f = flash();
    put_checkpoint(&mut f, 0, 6, &requested());
    put_checkpoint(&mut f, 1, 5, &trial());
    assert_eq!(Journal::read(&mut f, &plan()).unwrap().1, requested());
    put_checkpoint(&mut f, 1, 6, &trial());
    assert_eq!(Journal::read(&mut f, &plan()).unwrap().1, requested());
}

#[test]
fn row3_bank_1_torn_leaves_bank_0_live() {
    let mut f = flash();
    put_checkpoint(&mut f, 0, 1, &requested());
    let b = plan().state[1];
    f.erase(b.offset, b.offset + b.size).unwrap();
    let mut c = encode_checkpoint(trial().checkpoint(2), 1);
    c[31] ^= 0x40;
    f.write(b.offset, &c).unwrap();
    assert_eq!(Journal::read(&mut f, &plan()).unwrap().1, requested());
}

#[test]
fn row4_bank_0_inconsistent_leaves_bank_1_live() {
    let mut f = flash();
    let mut c = trial().checkpoint(9);
    c.units = 200;
    let b = plan().state[0];
    f.erase(b.offset, b.offset + b.size).unwrap();
    f.write(b.offset, &encode_checkpoint(c, 0)).unwrap();
    put_checkpoint(&mut f, 1, 2, &trial());
    assert_eq!(Journal::read(&mut f, &plan()).unwrap().1, trial());
}

#[test]
fn row5_nothing_valid_is_idle() {
    let mut f = flash();
    assert_eq!(
        Journal::read(&mut f, &plan()).unwrap().1,
        State::Idle(Idle {
            last: Outcome::None
        })
    );
    // A checkpoint copied into the other bank does not count there either.
    let b = plan().state[1];
    f.write(b.offset, &encode_checkpoint(trial().checkpoint(1), 0))
        .unwrap();
    assert_eq!(Journal::read(&mut f, &plan()).unwrap().1, State::EMPTY);
}

#[test]
fn records_replay_skip_torn_frames_and_compact_when_full() {
    let p = plan();
    let mut f = flash();
    let (mut j, _) = Journal::read(&mut f, &p).unwrap();
    j.open(&mut f, &p, &trial()).unwrap();
    // A torn frame: written garbage where the next record would go.
    let first = p.state[0].offset + 32;
    f.write(first, &[0x13; 16]).unwrap();
    let (mut j, s) = Journal::read(&mut f, &p).unwrap();
    assert_eq!(s, trial());
    let mut state = s;
    for _ in 0..p.journal_frames + 3 {
        let next = state.apply(Record::Attempt, p.max_units);
        j.commit(&mut f, &p, Record::Attempt, &next).unwrap();
        state = next;
        assert_eq!(Journal::read(&mut f, &p).unwrap().1, state);
    }
    // The bank filled up and the state moved on to bank 1 by a checkpoint.
    assert_eq!(f.wear()[..2], [1, 1]);
    assert!(f.violations().is_empty());
}
