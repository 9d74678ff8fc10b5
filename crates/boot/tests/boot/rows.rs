//! One test per row of the boot table (`src/boot.rs`).

use suitcase_boot::state::State;
use suitcase_boot::{BootError, Mode, Outcome, Refusal};

use super::common::{SEQ_NEW, SEQ_OLD, Small, small};

fn last(s: State) -> Option<Outcome> {
    match s {
        State::Idle(i) => Some(i.last()),
        _ => None,
    }
}

/// Boots the factory image, installs the update.
fn installed(dev: &mut Small<'_>) {
    assert_eq!(dev.boot().unwrap().sequence, SEQ_OLD);
    let new = dev.fx.new.clone();
    dev.install(&new, Mode::Test).unwrap();
    assert!(matches!(dev.state(), State::Requested(_)));
}

#[test]
fn row1_a_requested_image_that_verifies_is_swapped_in_for_a_trial() {
    let fx = small(1);
    let mut dev = Small::factory(&fx);
    installed(&mut dev);
    let h = dev.boot().unwrap();
    assert_eq!((h.sequence, h.trial), (SEQ_NEW, true));
    assert!(dev.primary_holds(&fx.new));
    assert!(matches!(dev.state(), State::Trial(t) if t.attempts() == 1 && t.sequence() == SEQ_NEW));
    // The counter waits for the confirm.
    assert_eq!(dev.counter(), SEQ_OLD);
}

#[test]
fn row2_a_requested_image_that_does_not_verify_is_rejected() {
    let fx = small(1);
    let mut dev = Small::factory(&fx);
    installed(&mut dev);
    dev.corrupt(true, 1024 + 100);
    let h = dev.boot().unwrap();
    assert_eq!((h.sequence, h.trial), (SEQ_OLD, false));
    assert_eq!(last(dev.state()), Some(Outcome::Rejected));
    assert!(dev.primary_holds(&fx.old));
}

#[test]
fn row3_an_interrupted_swap_carries_on() {
    let fx = small(1);
    let mut dev = Small::factory(&fx);
    installed(&mut dev);
    let mut probe = dev.clone();
    let before = probe.flash.ops();
    probe.boot().unwrap();
    let swap_ops = probe.flash.ops() - before;
    dev.flash
        .schedule_in(swap_ops / 2, suitcase_flash_sim::Fault::Tear { seed: 7 });
    assert!(matches!(dev.boot(), Err(BootError::Flash(_))));
    dev.flash.restore_power();
    assert!(matches!(dev.state(), State::Swapping(s) if s.progress().0 > 0));
    let h = dev.boot().unwrap();
    assert_eq!((h.sequence, h.trial), (SEQ_NEW, true));
    assert!(dev.primary_holds(&fx.new));
}

#[test]
fn row4_a_trial_that_used_its_boots_is_reverted() {
    let fx = small(1);
    let mut dev = Small::factory(&fx);
    installed(&mut dev);
    assert!(dev.boot().unwrap().trial);
    let h = dev.boot().unwrap();
    assert_eq!((h.sequence, h.trial), (SEQ_OLD, false));
    assert_eq!(last(dev.state()), Some(Outcome::Reverted));
    assert!(dev.primary_holds(&fx.old));
    // The failed image is back where a staged image lives.
    assert!(dev.staged_holds(&fx.new));
    assert_eq!(dev.counter(), SEQ_OLD);
}

#[test]
fn row5_a_trial_image_that_stops_verifying_is_reverted() {
    let fx = small(2);
    let mut dev = Small::factory(&fx);
    installed(&mut dev);
    assert!(dev.boot().unwrap().trial);
    dev.corrupt(false, 1024 + 5);
    let h = dev.boot().unwrap();
    assert_eq!((h.sequence, h.trial), (SEQ_OLD, false));
    assert_eq!(last(dev.state()), Some(Outcome::Reverted));
}

#[test]
fn row6_a_trial_image_that_verifies_boots_on_trial_each_time() {
    let fx = small(2);
    let mut dev = Small::factory(&fx);
    installed(&mut dev);
    for n in 1..=2 {
        let h = dev.boot().unwrap();
        assert_eq!((h.sequence, h.trial), (SEQ_NEW, true));
        assert!(matches!(dev.state(), State::Trial(t) if t.attempts() == n));
    }
    assert_eq!(dev.boot().unwrap().sequence, SEQ_OLD);
}

#[test]
fn row7_an_interrupted_revert_carries_on() {
    let fx = small(1);
    let mut dev = Small::factory(&fx);
    installed(&mut dev);
    dev.boot().unwrap();
    let mut probe = dev.clone();
    let before = probe.flash.ops();
    probe.boot().unwrap();
    let revert_ops = probe.flash.ops() - before;
    dev.flash
        .schedule_in(revert_ops / 2, suitcase_flash_sim::Fault::Cut);
    assert!(matches!(dev.boot(), Err(BootError::Flash(_))));
    dev.flash.restore_power();
    assert!(matches!(dev.state(), State::Reverting(_)));
    assert_eq!(dev.boot().unwrap().sequence, SEQ_OLD);
    assert!(dev.primary_holds(&fx.old));
}

#[test]
fn row8_idle_boots_the_primary_and_the_counter_follows_it() {
    let fx = small(1);
    let mut dev = Small::factory(&fx);
    assert_eq!(dev.counter(), 0);
    let h = dev.boot().unwrap();
    assert_eq!(
        (h.sequence, h.trial, h.len as usize),
        (SEQ_OLD, false, fx.old.image.len())
    );
    assert_eq!(h.image, fx.offsets[2] + super::common::HEADER);
    assert_eq!(dev.counter(), SEQ_OLD);
    assert_eq!(last(dev.state()), Some(Outcome::None));
}

#[test]
fn row9_idle_without_a_verifying_image_hands_over_nothing() {
    let fx = small(1);
    let mut dev = Small::factory(&fx);
    dev.corrupt(false, 1024 + 77);
    assert!(matches!(
        dev.boot(),
        Err(BootError::NoBootableImage(Refusal::Processor(_)))
    ));
    // An erased slot has no header at all.
    let mut blank = Small::factory(&fx);
    let at = fx.offsets[2];
    blank.flash.tamper(at, &[0xFF; 4]);
    assert_eq!(
        blank.boot(),
        Err(BootError::NoBootableImage(Refusal::NoHeader))
    );
}
