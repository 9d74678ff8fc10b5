//! The swap state machine's states: one type per state, each holding only what is true
//! in it, and the pure fold that replays the journal (a checkpoint, then records) into
//! the current state.
//!
//! The flash-touching transitions (`Requested::decide`, `Swapping::run`, ...) live in
//! [`mod@crate::boot`] and [`crate::update`]; each consumes its state. Nothing outside this crate can
//! build a state: the only way to one is reading the journal.
//!
//! Journal fold, evaluated in order; the first matching row applies (`u` = units,
//! `d` = half-steps done, `a` = trial boots so far). One test per row in `state/tests.rs`.
//!
//! | # | state | record | next state |
//! |---|---|---|---|
//! | 1 | Requested(mode) | SwapStart(mode′, u, seq) | Swapping(mode′, u, seq, d = 0) |
//! | 2 | Requested | Reject | Idle(Rejected) |
//! | 3 | Swapping(d) | Progress(d + 1), d + 1 < 2u | Swapping(d + 1) |
//! | 4 | Swapping(Test, d) | Progress(2u), d + 1 = 2u | Trial(a = 0) |
//! | 5 | Swapping(Permanent, d) | Progress(2u), d + 1 = 2u | Idle(Updated) |
//! | 6 | Trial(a) | Attempt | Trial(a + 1) |
//! | 7 | Trial | Confirm | Idle(Updated) |
//! | 8 | Trial | Revert | Reverting(d = 0) |
//! | 9 | Reverting(d) | Progress(d + 1), d + 1 < 2u | Reverting(d + 1) |
//! | 10 | Reverting(d) | Progress(2u), d + 1 = 2u | Idle(Reverted) |
//! | 11 | any | anything else | unchanged (a record that does not fit is ignored) |

use crate::record::{Raw, RawCheckpoint, tag};

/// How a requested update is to be taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Trial boot: the new image must confirm itself within `trial_boots` boots, or it is
    /// swapped back out.
    Test,
    /// Permanent at once (MCUboot's PERM): no revert.
    Permanent,
}

/// How the last update ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// No update since the journal was empty.
    None,
    /// Installed and permanent.
    Updated,
    /// The staged image did not verify, or was not newer: never swapped in.
    Rejected,
    /// The trial image did not confirm (or stopped verifying) and was swapped back out.
    Reverted,
}

/// Nothing in progress: the primary slot holds a permanent image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Idle {
    pub(crate) last: Outcome,
}

/// The application staged an image and asked for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Requested {
    pub(crate) mode: Mode,
}

/// The staged image is being swapped into the primary slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Swapping {
    pub(crate) mode: Mode,
    pub(crate) units: u16,
    pub(crate) seq: u64,
    pub(crate) done: u16,
}

/// The new image runs on trial; the previous one waits in the secondary slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trial {
    pub(crate) units: u16,
    pub(crate) seq: u64,
    pub(crate) attempts: u8,
}

/// The trial image is being swapped back out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reverting {
    pub(crate) units: u16,
    pub(crate) seq: u64,
    pub(crate) done: u16,
}

/// The journal's current state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Nothing in progress.
    Idle(Idle),
    /// An update is requested.
    Requested(Requested),
    /// Swapping in.
    Swapping(Swapping),
    /// Trial boot.
    Trial(Trial),
    /// Swapping back.
    Reverting(Reverting),
}

impl Idle {
    /// How the last update ended.
    pub fn last(&self) -> Outcome {
        self.last
    }
}

impl Requested {
    /// The requested mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }
}

impl Swapping {
    /// Half-steps done of `2 × units`.
    pub fn progress(&self) -> (u16, u16) {
        (self.done, self.units.saturating_mul(2))
    }
    /// The incoming manifest's sequence number.
    pub fn sequence(&self) -> u64 {
        self.seq
    }
}

impl Trial {
    /// Boots used so far.
    pub fn attempts(&self) -> u8 {
        self.attempts
    }
    /// The trial image's sequence number.
    pub fn sequence(&self) -> u64 {
        self.seq
    }
}

impl Reverting {
    /// Half-steps done of `2 × units`.
    pub fn progress(&self) -> (u16, u16) {
        (self.done, self.units.saturating_mul(2))
    }
}

/// A journal record: one transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Record {
    /// The staged image verified: swap `units` units, then run `seq` in `mode`.
    SwapStart { mode: Mode, units: u16, seq: u64 },
    /// Half-step `n` (1-based) of the current swap or revert is complete.
    Progress(u16),
    /// A trial boot was handed over.
    Attempt,
    /// The trial image confirmed itself.
    Confirm,
    /// The trial is over: swap back.
    Revert,
    /// The staged image was refused.
    Reject,
}

/// Half-steps of a swap of `units` units.
pub(crate) fn total(units: u16) -> u32 {
    2 * u32::from(units)
}

const PHASE_IDLE: u8 = 0x11;
const PHASE_REQUESTED: u8 = 0x22;
const PHASE_SWAPPING: u8 = 0x33;
const PHASE_TRIAL: u8 = 0x44;
const PHASE_REVERTING: u8 = 0x55;

fn mode_code(m: Mode) -> u8 {
    match m {
        Mode::Test => 1,
        Mode::Permanent => 2,
    }
}

fn mode_of(c: u8) -> Option<Mode> {
    match c {
        1 => Some(Mode::Test),
        2 => Some(Mode::Permanent),
        _ => None,
    }
}

fn outcome_code(o: Outcome) -> u8 {
    match o {
        Outcome::None => 1,
        Outcome::Updated => 2,
        Outcome::Rejected => 3,
        Outcome::Reverted => 4,
    }
}

fn outcome_of(c: u8) -> Option<Outcome> {
    match c {
        1 => Some(Outcome::None),
        2 => Some(Outcome::Updated),
        3 => Some(Outcome::Rejected),
        4 => Some(Outcome::Reverted),
        _ => None,
    }
}

impl Record {
    pub(crate) fn raw(self) -> Raw {
        let r = |tag, a8, a16, a64| Raw { tag, a8, a16, a64 };
        match self {
            Record::SwapStart { mode, units, seq } => {
                r(tag::SWAP_START, mode_code(mode), units, seq)
            }
            Record::Progress(n) => r(tag::PROGRESS, 0, n, 0),
            Record::Attempt => r(tag::ATTEMPT, 0, 0, 0),
            Record::Confirm => r(tag::CONFIRM, 0, 0, 0),
            Record::Revert => r(tag::REVERT, 0, 0, 0),
            Record::Reject => r(tag::REJECT, 0, 0, 0),
        }
    }

    pub(crate) fn from_raw(r: Raw) -> Option<Record> {
        Some(match r.tag {
            tag::SWAP_START => Record::SwapStart {
                mode: mode_of(r.a8)?,
                units: r.a16,
                seq: r.a64,
            },
            tag::PROGRESS => Record::Progress(r.a16),
            tag::ATTEMPT => Record::Attempt,
            tag::CONFIRM => Record::Confirm,
            tag::REVERT => Record::Revert,
            tag::REJECT => Record::Reject,
            _ => return None,
        })
    }
}

impl State {
    /// The state of an empty journal.
    pub(crate) const EMPTY: State = State::Idle(Idle {
        last: Outcome::None,
    });

    /// One row of the fold table (module docs). `max_units` bounds what a record may
    /// claim: a record naming more units than the slots hold is ignored (row 11).
    pub(crate) fn apply(self, record: Record, max_units: u16) -> State {
        use Record as R;
        use State as S;
        match (self, record) {
            (S::Requested(_), R::SwapStart { mode, units, seq })
                if units >= 1 && units <= max_units =>
            {
                S::Swapping(Swapping {
                    mode,
                    units,
                    seq,
                    done: 0,
                })
            }
            (S::Requested(_), R::Reject) => S::Idle(Idle {
                last: Outcome::Rejected,
            }),
            (S::Swapping(s), R::Progress(n)) if u32::from(n) == u32::from(s.done) + 1 => {
                if u32::from(n) < total(s.units) {
                    S::Swapping(Swapping { done: n, ..s })
                } else {
                    match s.mode {
                        Mode::Test => S::Trial(Trial {
                            units: s.units,
                            seq: s.seq,
                            attempts: 0,
                        }),
                        Mode::Permanent => S::Idle(Idle {
                            last: Outcome::Updated,
                        }),
                    }
                }
            }
            (S::Trial(t), R::Attempt) => S::Trial(Trial {
                attempts: t.attempts.saturating_add(1),
                ..t
            }),
            (S::Trial(_), R::Confirm) => S::Idle(Idle {
                last: Outcome::Updated,
            }),
            (S::Trial(t), R::Revert) => S::Reverting(Reverting {
                units: t.units,
                seq: t.seq,
                done: 0,
            }),
            (S::Reverting(r), R::Progress(n)) if u32::from(n) == u32::from(r.done) + 1 => {
                if u32::from(n) < total(r.units) {
                    S::Reverting(Reverting { done: n, ..r })
                } else {
                    S::Idle(Idle {
                        last: Outcome::Reverted,
                    })
                }
            }
            (s, _) => s,
        }
    }

    /// The checkpoint that stands for this state.
    pub(crate) fn checkpoint(&self, generation: u32) -> RawCheckpoint {
        let c = |phase, mode, count, units, done, seq| RawCheckpoint {
            generation,
            phase,
            mode,
            count,
            units,
            done,
            seq,
        };
        match *self {
            State::Idle(i) => c(PHASE_IDLE, 0, outcome_code(i.last), 0, 0, 0),
            State::Requested(r) => c(PHASE_REQUESTED, mode_code(r.mode), 0, 0, 0, 0),
            State::Swapping(s) => c(PHASE_SWAPPING, mode_code(s.mode), 0, s.units, s.done, s.seq),
            State::Trial(t) => c(PHASE_TRIAL, 0, t.attempts, t.units, 0, t.seq),
            State::Reverting(r) => c(PHASE_REVERTING, 0, 0, r.units, r.done, r.seq),
        }
    }

    /// The state a checkpoint stands for; `None` for one that is not consistent (which the
    /// journal treats like a missing checkpoint).
    pub(crate) fn from_checkpoint(c: &RawCheckpoint, max_units: u16) -> Option<State> {
        let units_ok = c.units >= 1 && c.units <= max_units;
        Some(match c.phase {
            PHASE_IDLE => State::Idle(Idle {
                last: outcome_of(c.count)?,
            }),
            PHASE_REQUESTED => State::Requested(Requested {
                mode: mode_of(c.mode)?,
            }),
            PHASE_SWAPPING if units_ok && u32::from(c.done) < total(c.units) => {
                State::Swapping(Swapping {
                    mode: mode_of(c.mode)?,
                    units: c.units,
                    seq: c.seq,
                    done: c.done,
                })
            }
            PHASE_TRIAL if units_ok => State::Trial(Trial {
                units: c.units,
                seq: c.seq,
                attempts: c.count,
            }),
            PHASE_REVERTING if units_ok && u32::from(c.done) < total(c.units) => {
                State::Reverting(Reverting {
                    units: c.units,
                    seq: c.seq,
                    done: c.done,
                })
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests;
