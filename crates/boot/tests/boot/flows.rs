//! Whole update flows on one geometry: repeated updates, permanent installs, wear per
//! update and revert, a device that outlives its process.

use suitcase_boot::state::State;
use suitcase_boot::{Layout, Mode, Outcome};
use suitcase_flash_sim::{Options, SimFlash};
use suitcase_processor::platform::RollbackStore;

use super::common::{Device, Payload, SEQ_NEW, SEQ_OLD, Small, small};

#[test]
fn update_confirm_and_update_again() {
    let fx = small(1);
    let mut dev = Small::factory(&fx);
    dev.boot().unwrap();
    dev.install(&fx.new, Mode::Test).unwrap();
    assert!(dev.boot().unwrap().trial);
    dev.confirm().unwrap();
    assert_eq!(dev.boot().unwrap().sequence, SEQ_NEW);
    // The envelope travels with its image: the agent reads it back (trust-store
    // roll-forward).
    assert_eq!(
        dev.running_envelope().as_deref(),
        Some(&fx.new.envelope[..])
    );
    let third = Payload::new(2, 33, fx.new.image.len() - 3000, SEQ_NEW + 1, 0xFF);
    dev.install(&third, Mode::Test).unwrap();
    let h = dev.boot().unwrap();
    assert_eq!((h.sequence, h.trial), (SEQ_NEW + 1, true));
    dev.confirm().unwrap();
    assert_eq!(dev.counter(), SEQ_NEW + 1);
    assert!(dev.primary_holds(&third));
    assert!(matches!(dev.state(), State::Idle(i) if i.last() == Outcome::Updated));
    assert!(dev.flash.violations().is_empty());
}

#[test]
fn a_permanent_install_needs_no_confirm() {
    let fx = small(1);
    let mut dev = Small::factory(&fx);
    dev.boot().unwrap();
    dev.install(&fx.new, Mode::Permanent).unwrap();
    let h = dev.boot().unwrap();
    assert_eq!((h.sequence, h.trial), (SEQ_NEW, false));
    assert_eq!(dev.counter(), SEQ_NEW);
    assert_eq!(dev.boot().unwrap().sequence, SEQ_NEW);
}

#[test]
fn confirm_outside_a_trial_changes_nothing() {
    let fx = small(1);
    let mut dev = Small::factory(&fx);
    dev.boot().unwrap();
    dev.confirm().unwrap();
    dev.install(&fx.new, Mode::Test).unwrap();
    assert!(dev.confirm().is_err(), "a request is not a trial");
    assert!(matches!(dev.state(), State::Requested(_)));
}

/// The swap erases each slot sector at most once, and exactly the sectors of the units
/// it moves; so does the revert.
#[test]
fn a_swap_and_a_revert_erase_each_slot_sector_once() {
    let fx = small(1);
    let mut dev = Small::factory(&fx);
    dev.boot().unwrap();
    dev.install(&fx.new, Mode::Test).unwrap();
    let sectors = |dev: &Small<'_>, region: usize| {
        let g = dev.flash.geometry();
        let first = g.sector_of(fx.offsets[region]).unwrap();
        let layout = fx.layout();
        let r = if region == 2 {
            layout.primary
        } else {
            layout.secondary
        };
        let n = r.iter().count();
        dev.flash.wear()[first..first + n].to_vec()
    };
    for step in ["swap", "revert"] {
        dev.flash.reset_stats();
        dev.boot().unwrap();
        let (p, s) = (sectors(&dev, 2), sectors(&dev, 3));
        // 6 units: the new image spans all of the primary. The swap erases secondary
        // units 0–5, the revert units 1–6.
        assert_eq!(p, [1; 6], "{step}: primary");
        let expect = if step == "swap" {
            [1, 1, 1, 1, 1, 1, 0]
        } else {
            [0, 1, 1, 1, 1, 1, 1]
        };
        assert_eq!(s, expect, "{step}: secondary");
    }
    assert!(dev.primary_holds(&fx.old));
}

#[test]
fn the_counter_is_a_rollback_store() {
    let fx = small(1);
    let mut dev = Small::factory(&fx);
    let layout = fx.layout();
    let mut u = suitcase_boot::update::Updater::new(&mut dev.flash, &layout).unwrap();
    let mut c = u.counter();
    assert_eq!(c.current(), Ok(0));
    c.advance(9).unwrap();
    assert!(c.advance(8).is_err());
    assert_eq!(c.current(), Ok(9));
}

/// The simulated device is a file: every process is one power-on.
#[test]
fn a_device_outlives_its_process() {
    let fx = small(1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.flash");
    let opts = Options {
        erased: 0xFF,
        log: false,
    };
    {
        let mut dev = Small::factory(&fx);
        dev.flash.persist(&path).unwrap();
        dev.boot().unwrap();
        dev.install(&fx.new, Mode::Test).unwrap();
        // Cut the power in the middle of the swap; the process ends.
        dev.flash
            .schedule_in(10, suitcase_flash_sim::Fault::Tear { seed: 1 });
        assert!(dev.boot().is_err());
    }
    {
        let mut dev = Device {
            fx: &fx,
            flash: SimFlash::<8, 4096>::open(&path, opts).unwrap(),
        };
        assert!(matches!(dev.state(), State::Swapping(_)));
        assert!(dev.boot().unwrap().trial);
        dev.confirm().unwrap();
    }
    let mut dev = Device {
        fx: &fx,
        flash: SimFlash::<8, 4096>::open(&path, opts).unwrap(),
    };
    let h = dev.boot().unwrap();
    assert_eq!((h.sequence, h.trial), (SEQ_NEW, false));
    assert!(dev.primary_holds(&fx.new));
    assert_eq!(dev.counter(), SEQ_NEW);
    let _: Layout<'_> = fx.layout();
    assert_ne!(SEQ_OLD, SEQ_NEW);
}
