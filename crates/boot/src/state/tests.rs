//! One test per row of the fold table (module docs of `state`), plus checkpoint round trips.

use super::*;

const MAX: u16 = 8;

fn swapping(mode: Mode, done: u16) -> State {
    State::Swapping(Swapping {
        mode,
        units: 3,
        seq: 9,
        done,
    })
}

fn trial(attempts: u8) -> State {
    State::Trial(Trial {
        units: 3,
        seq: 9,
        attempts,
    })
}

fn reverting(done: u16) -> State {
    State::Reverting(Reverting {
        units: 3,
        seq: 9,
        done,
    })
}

fn idle(last: Outcome) -> State {
    State::Idle(Idle { last })
}

fn requested() -> State {
    State::Requested(Requested { mode: Mode::Test })
}

#[test]
fn row1_requested_swap_start_starts_swapping() {
    let s = requested().apply(
        Record::SwapStart {
            mode: Mode::Permanent,
            units: 3,
            seq: 9,
        },
        MAX,
    );
    assert_eq!(s, swapping(Mode::Permanent, 0));
}

#[test]
fn row1_a_swap_start_naming_more_units_than_the_slots_is_ignored() {
    for units in [0, MAX + 1] {
        let r = Record::SwapStart {
            mode: Mode::Test,
            units,
            seq: 9,
        };
        assert_eq!(requested().apply(r, MAX), requested());
    }
}

#[test]
fn row2_requested_reject_is_idle_rejected() {
    assert_eq!(
        requested().apply(Record::Reject, MAX),
        idle(Outcome::Rejected)
    );
}

#[test]
fn row3_progress_advances_a_swap_by_one_only() {
    assert_eq!(
        swapping(Mode::Test, 2).apply(Record::Progress(3), MAX),
        swapping(Mode::Test, 3)
    );
    // A repeated or skipping progress record does not fit: row 11.
    assert_eq!(
        swapping(Mode::Test, 2).apply(Record::Progress(2), MAX),
        swapping(Mode::Test, 2)
    );
    assert_eq!(
        swapping(Mode::Test, 2).apply(Record::Progress(4), MAX),
        swapping(Mode::Test, 2)
    );
}

#[test]
fn row4_the_last_half_step_of_a_test_swap_starts_the_trial() {
    assert_eq!(
        swapping(Mode::Test, 5).apply(Record::Progress(6), MAX),
        trial(0)
    );
}

#[test]
fn row5_the_last_half_step_of_a_permanent_swap_is_an_update() {
    assert_eq!(
        swapping(Mode::Permanent, 5).apply(Record::Progress(6), MAX),
        idle(Outcome::Updated)
    );
}

#[test]
fn row6_an_attempt_counts_a_trial_boot() {
    assert_eq!(trial(1).apply(Record::Attempt, MAX), trial(2));
    assert_eq!(trial(u8::MAX).apply(Record::Attempt, MAX), trial(u8::MAX));
}

#[test]
fn row7_confirm_makes_the_trial_permanent() {
    assert_eq!(trial(1).apply(Record::Confirm, MAX), idle(Outcome::Updated));
}

#[test]
fn row8_revert_starts_reverting() {
    assert_eq!(trial(1).apply(Record::Revert, MAX), reverting(0));
}

#[test]
fn row9_progress_advances_a_revert() {
    assert_eq!(reverting(0).apply(Record::Progress(1), MAX), reverting(1));
}

#[test]
fn row10_the_last_half_step_of_a_revert_is_reverted() {
    assert_eq!(
        reverting(5).apply(Record::Progress(6), MAX),
        idle(Outcome::Reverted)
    );
}

#[test]
fn row11_records_that_do_not_fit_change_nothing() {
    let all = [
        Record::SwapStart {
            mode: Mode::Test,
            units: 1,
            seq: 1,
        },
        Record::Progress(1),
        Record::Attempt,
        Record::Confirm,
        Record::Revert,
        Record::Reject,
    ];
    for s in [idle(Outcome::None), idle(Outcome::Updated)] {
        for r in all {
            assert_eq!(s.apply(r, MAX), s, "{r:?}");
        }
    }
    // A confirm never reaches a swap in progress or a revert.
    for s in [swapping(Mode::Test, 1), reverting(1), requested()] {
        assert_eq!(s.apply(Record::Confirm, MAX), s);
        assert_eq!(s.apply(Record::Attempt, MAX), s);
    }
}

#[test]
fn every_state_round_trips_through_a_checkpoint() {
    for s in [
        idle(Outcome::None),
        idle(Outcome::Updated),
        idle(Outcome::Rejected),
        idle(Outcome::Reverted),
        requested(),
        State::Requested(Requested {
            mode: Mode::Permanent,
        }),
        swapping(Mode::Test, 0),
        swapping(Mode::Permanent, 5),
        trial(0),
        trial(3),
        reverting(0),
        reverting(5),
    ] {
        assert_eq!(
            State::from_checkpoint(&s.checkpoint(7), MAX),
            Some(s),
            "{s:?}"
        );
    }
}

#[test]
fn an_inconsistent_checkpoint_is_no_state() {
    let mut c = swapping(Mode::Test, 5).checkpoint(1);
    c.done = 6;
    assert_eq!(State::from_checkpoint(&c, MAX), None);
    let mut c = trial(0).checkpoint(1);
    c.units = MAX + 1;
    assert_eq!(State::from_checkpoint(&c, MAX), None);
    let mut c = idle(Outcome::None).checkpoint(1);
    c.phase = 0xFF;
    assert_eq!(State::from_checkpoint(&c, MAX), None);
}
