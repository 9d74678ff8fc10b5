//! Refusals: downgrades, tampered slots and envelopes, foreign signers, staging over
//! the image a revert needs. In every case the old image keeps booting.

use suitcase_boot::state::State;
use suitcase_boot::{BootError, Mode, Outcome};
use suitcase_processor::Error;
use suitcase_testkit::resign::{Rewrite, Signer};

use super::common::{InstallError, Payload, SEQ_NEW, SEQ_OLD, Small, small};

fn rejected(dev: &mut Small<'_>) {
    let h = dev.boot().unwrap();
    assert_eq!((h.sequence, h.trial), (SEQ_OLD, false));
    assert!(matches!(dev.state(), State::Idle(i) if i.last() == Outcome::Rejected));
    assert!(dev.primary_holds(&dev.fx.old.clone()));
    assert_eq!(dev.counter(), SEQ_OLD);
}

#[test]
fn a_downgrade_is_refused_by_the_agent() {
    let fx = small(1);
    let mut dev = Small::factory(&fx);
    dev.boot().unwrap();
    let older = Payload::new(2, 44, 5000, SEQ_OLD - 1, 0xFF);
    let r = dev.install(&older, Mode::Test);
    assert!(matches!(
        r,
        Err(InstallError::Processor(Error::Rollback {
            installed: SEQ_OLD,
            offered: 4
        }))
    ));
    assert_eq!(dev.boot().unwrap().sequence, SEQ_OLD);
}

#[test]
fn a_downgrade_staged_past_the_agent_is_refused_at_boot() {
    let fx = small(1);
    let mut dev = Small::factory(&fx);
    dev.boot().unwrap();
    let older = Payload::new(2, 44, 5000, SEQ_OLD - 1, 0xFF);
    dev.stage_raw(&older.envelope, &older.image, Mode::Permanent)
        .unwrap();
    rejected(&mut dev);
}

#[test]
fn the_same_sequence_number_is_not_an_update() {
    let fx = small(1);
    let mut dev = Small::factory(&fx);
    dev.boot().unwrap();
    let same = Payload::new(2, 45, 5000, SEQ_OLD, 0xFF);
    dev.stage_raw(&same.envelope, &same.image, Mode::Test)
        .unwrap();
    rejected(&mut dev);
}

#[test]
fn a_tampered_staged_image_is_refused() {
    let fx = small(1);
    let mut dev = Small::factory(&fx);
    dev.boot().unwrap();
    dev.install(&fx.new, Mode::Test).unwrap();
    dev.corrupt(true, 1024 + fx.new.image.len() as u32 - 1);
    rejected(&mut dev);
}

#[test]
fn a_tampered_staged_envelope_is_refused() {
    let fx = small(1);
    let mut dev = Small::factory(&fx);
    dev.boot().unwrap();
    dev.install(&fx.new, Mode::Test).unwrap();
    // The last envelope bytes are the signature's.
    dev.corrupt(true, 32 + fx.new.envelope.len() as u32 - 3);
    rejected(&mut dev);
}

#[test]
fn an_envelope_from_a_foreign_signer_is_refused() {
    let fx = small(1);
    let mut dev = Small::factory(&fx);
    dev.boot().unwrap();
    let foreign = Rewrite {
        signers: vec![Signer::Mac(vec![7; 32])],
        ..Default::default()
    }
    .apply(&fx.new.envelope)
    .unwrap();
    assert!(matches!(
        dev.install_raw(&foreign, &fx.new.image, Mode::Test),
        Err(InstallError::Processor(Error::Auth(_)))
    ));
    dev.stage_raw(&foreign, &fx.new.image, Mode::Test).unwrap();
    rejected(&mut dev);
}

#[test]
fn nothing_is_staged_over_the_image_a_revert_needs() {
    let fx = small(1);
    let mut dev = Small::factory(&fx);
    dev.boot().unwrap();
    dev.install(&fx.new, Mode::Test).unwrap();
    assert!(dev.boot().unwrap().trial);
    let again = Payload::new(2, 46, 5000, SEQ_NEW + 1, 0xFF);
    assert!(matches!(
        dev.install(&again, Mode::Test),
        Err(InstallError::Boot(BootError::Busy(State::Trial(_))))
    ));
    // The revert still finds the old image.
    assert_eq!(dev.boot().unwrap().sequence, SEQ_OLD);
    assert!(dev.primary_holds(&fx.old));
}

#[test]
fn after_a_confirm_the_old_image_cannot_come_back() {
    let fx = small(1);
    let mut dev = Small::factory(&fx);
    dev.boot().unwrap();
    dev.install(&fx.new, Mode::Test).unwrap();
    assert!(dev.boot().unwrap().trial);
    dev.confirm().unwrap();
    assert_eq!(dev.counter(), SEQ_NEW);
    let old = fx.old.clone();
    dev.stage_raw(&old.envelope, &old.image, Mode::Permanent)
        .unwrap();
    let h = dev.boot().unwrap();
    assert_eq!((h.sequence, h.trial), (SEQ_NEW, false));
    assert!(matches!(dev.state(), State::Idle(i) if i.last() == Outcome::Rejected));
}

#[test]
fn a_primary_with_an_older_number_than_the_counter_never_boots() {
    let fx = small(1);
    let mut dev = Small::factory(&fx);
    dev.boot().unwrap();
    dev.install(&fx.new, Mode::Permanent).unwrap();
    assert_eq!(dev.boot().unwrap().sequence, SEQ_NEW);
    // Someone writes the old (validly signed) image back into the primary slot.
    let at = fx.offsets[2];
    let mut c = fx.old.content.clone();
    c.resize(c.len().div_ceil(8) * 8, 0xFF);
    dev.flash.tamper(at, &c);
    assert!(matches!(dev.boot(), Err(BootError::NoBootableImage(_))));
}

#[test]
fn a_payload_longer_than_announced_is_not_written_past_the_erase() {
    use suitcase_processor::platform::{ComponentStorage, StorageError, Target};
    use suitcase_processor::suit::ComponentId;
    let fx = small(1);
    let mut dev = Small::factory(&fx);
    let layout = fx.layout();
    let mut u = suitcase_boot::update::Updater::new(&mut dev.flash, &layout).unwrap();
    let mut st = u.stage(super::common::COMPONENT).unwrap();
    let t = Target {
        index: 0,
        id: ComponentId::decode(super::common::COMPONENT).unwrap(),
        slot: None,
    };
    // 100 bytes announced: header and image fit the first 4 KiB sector, which is all
    // that is erased.
    st.begin_write(&t, Some(100)).unwrap();
    st.write(&t, 0, &[1; 3072]).unwrap();
    assert_eq!(st.write(&t, 3072, &[1; 8]), Err(StorageError::OutOfSpace));
    assert!(dev.flash.violations().is_empty());
}
