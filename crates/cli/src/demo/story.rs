//! Part 2 of the demo: the device story with the real bootloader over the flash
//! simulator, in a temporary directory, driven through the same [`Device`] that
//! `suitcase device` uses.
//!
//! Keys, three releases built from descriptions and signed, a device on v1, the update
//! to v2 with the power cut in the middle of the swap and the recovery, the trial boot
//! and its confirmation, a bad v3 whose self-test fails and is reverted, and a
//! downgrade to v1 refused.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, ensure};
use sha2::{Digest as _, Sha256};
use suitcase_boot::State;
use suitcase_flash_sim::Fault;
use suitcase_testkit::image;

use crate::device::{Device, DirArgs, FileFetch, InitArgs, describe};
use crate::keys::{self, KeyAlg, PrivateKey};
use crate::output::{self, Mode};
use crate::{Rejected, build, sign};

/// Sector size × sectors per slot of the demo device (an STM32-like 64 KiB slot).
const GEOMETRY: &str = "4096x16";
/// Image sizes of v1, v2, v3 (v2 is larger, so the swap moves the old image's units too).
const SIZES: [usize; 3] = [40_000, 46_000, 43_000];

/// What the story's steps share.
pub struct Story {
    tmp: tempfile::TempDir,
    key: Option<PrivateKey>,
    device: Option<Device>,
    /// The power cut: (operation, of how many).
    pub cut: Option<(u64, u64)>,
}

impl Story {
    /// A fresh story in a new temporary directory.
    ///
    /// # Errors
    /// The temporary directory cannot be made.
    pub fn new() -> anyhow::Result<Story> {
        Ok(Story {
            tmp: tempfile::Builder::new()
                .prefix("suitcase-demo-")
                .tempdir()
                .context("temporary directory")?,
            key: None,
            device: None,
            cut: None,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn device(&mut self) -> anyhow::Result<&mut Device> {
        self.device
            .as_mut()
            .ok_or_else(|| anyhow!("needs the factory step"))
    }

    fn envelope(&self, v: usize) -> anyhow::Result<Vec<u8>> {
        let p = self.path(&format!("v{v}.suit"));
        std::fs::read(&p).with_context(|| format!("v{v}.suit (needs the release step)"))
    }

    fn image_sha(v: usize) -> String {
        hex::encode(Sha256::digest(release_image(v)))
    }

    /// The device's state in one line for the summary.
    ///
    /// # Errors
    /// No device, flash errors.
    pub fn summary(&mut self) -> anyhow::Result<String> {
        let v = self.device()?.state()?;
        let running = &v["running"];
        let e = &v["erases"];
        Ok(format!(
            "running sequence {} ({}), counter {}, journal {}; most erases of any sector: \
             primary {}, secondary {}, journal {}, counter {}",
            running["sequence"],
            if running["trial"].as_bool() == Some(true) {
                "trial"
            } else {
                "permanent"
            },
            v["counter"],
            v["journal"].as_str().unwrap_or("?"),
            e["primary"]["max"],
            e["secondary"]["max"],
            e["journal"]["max"],
            e["counter"]["max"]
        ))
    }
}

fn release_image(v: usize) -> Vec<u8> {
    image(0x5000 + v as u64, SIZES[v - 1])
}

/// `device init` arguments of a demo thermostat in `dir` trusting `key`.
pub(super) fn thermostat(dir: &Path, key: PathBuf, geometry: &str) -> InitArgs {
    InitArgs {
        common: DirArgs {
            dir: dir.to_owned(),
            json: false,
        },
        key,
        geometry: geometry.into(),
        trial_boots: 1,
        header_size: 2048,
        vendor_domain: "example.com".into(),
        class: "thermostat-v2".into(),
        component: "814100".into(),
        force: true,
    }
}

/// Release `v` of the demo thermostat, described in `dir/v{v}.toml` (image `image`,
/// relative to `dir`; payload URI `uri`), built with sequence number `v` and signed.
pub(super) fn signed_release(
    dir: &Path,
    v: u64,
    image: &str,
    uri: &str,
    key: &mut PrivateKey,
) -> anyhow::Result<Vec<u8>> {
    let toml = format!(
        "[manifest]\nvendor-domain = \"example.com\"\nclass = \"thermostat-v2\"\n\n\
         [[component]]\nid = [\"0x00\"]\nimage = \"{image}\"\n\
         uri = \"{uri}\"\ninvoke = true\n\
         [component.text]\nversion = \"{v}.0.0\"\n"
    );
    let desc = dir.join(format!("v{v}.toml"));
    std::fs::write(&desc, toml).context("description")?;
    let (unsigned, _) = build::build_file(&desc, Some(v))?;
    Ok(sign::add_signature(&unsigned, key)?.0)
}

/// (i) The author's key pair (P-256), as `suitcase keygen` writes it.
pub fn keys_step(s: &mut Story) -> anyhow::Result<String> {
    let key = keys::generate(KeyAlg::Es256, 10)?;
    output::write_atomic(
        &s.path("author.pem"),
        key.to_pem()?.as_bytes(),
        Mode::Secret,
    )?;
    let public = key.public();
    output::write_atomic(
        &s.path("author.pub.pem"),
        public.to_pem()?.as_bytes(),
        Mode::Public,
    )?;
    let id = hex::encode(public.key_id());
    s.key = Some(key);
    Ok(format!(
        "author key (P-256) generated in {} (removed at the end), key id {}…",
        s.tmp.path().display(),
        &id[..16]
    ))
}

/// (j) Three releases: images, descriptions, envelopes built and signed.
pub fn release_step(s: &mut Story) -> anyhow::Result<String> {
    let payloads = s.path("payloads");
    std::fs::create_dir_all(&payloads).context("payloads")?;
    let mut sizes = Vec::new();
    for v in 1..=3 {
        let img = release_image(v);
        std::fs::write(payloads.join(format!("app-v{v}.bin")), &img).context("image")?;
        let key = s
            .key
            .as_mut()
            .ok_or_else(|| anyhow!("needs the keys step"))?;
        let signed = signed_release(
            s.tmp.path(),
            v as u64,
            &format!("payloads/app-v{v}.bin"),
            &format!("https://updates.example.com/thermostat/app-v{v}.bin"),
            key,
        )?;
        output::write_atomic(&s.path(&format!("v{v}.suit")), &signed, Mode::Public)?;
        sizes.push(format!(
            "v{v} {} KiB / {} B",
            img.len() / 1024,
            signed.len()
        ));
    }
    Ok(format!(
        "images and signed envelopes, sequence numbers 1, 2, 3: {}",
        sizes.join(", ")
    ))
}

/// (k) The factory: a device on the flash simulator, v1 in its primary slot, first boot.
pub fn factory_step(s: &mut Story) -> anyhow::Result<String> {
    let dir = s.path("device");
    let mut device = Device::init(&dir, &thermostat(&dir, s.path("author.pub.pem"), GEOMETRY))?;
    let envelope = s.envelope(1)?;
    device.provision(&envelope, &release_image(1))?;
    let r = device.reboot(None)?;
    let h = r
        .handover
        .ok_or_else(|| anyhow!("v1 did not boot: {}", r.refusal.unwrap_or_default()))?;
    ensure!(h.sequence == 1 && !h.trial, "booted {h:?}");
    let counter = device.counter()?;
    s.device = Some(device);
    Ok(format!(
        "NOR flash simulator ({GEOMETRY}: journal, counter, 64 KiB primary, 68 KiB secondary) \
         provisioned with v1; verified boot: sequence 1, permanent, counter {counter}"
    ))
}

/// (l) The update agent: v2 authenticated and installed into the staging slot.
pub fn update_step(s: &mut Story) -> anyhow::Result<String> {
    let envelope = s.envelope(2)?;
    let payloads = s.path("payloads");
    let device = s.device()?;
    let mut fetch = FileFetch::new(vec![payloads]);
    let seq = device.apply(&envelope, &mut fetch)?;
    let state = device.journal()?;
    ensure!(
        matches!(state, State::Requested(_)),
        "journal: {}",
        describe(&state)
    );
    Ok(format!(
        "v2 (sequence {seq}) authenticated, {} B fetched from payloads/app-v2.bin into the \
         secondary slot through the processor; test boot requested",
        fetch.bytes
    ))
}

/// (m) The power is cut in the middle of the swap (a torn flash operation).
pub fn power_cut_step(s: &mut Story) -> anyhow::Result<String> {
    let device = s.device()?;
    let total = device.next_boot_ops()?;
    let at = total / 2;
    let r = device.reboot(Some((at, Fault::Tear { seed: at })))?;
    ensure!(r.power_cut, "the boot finished before the cut");
    ensure!(
        matches!(r.after, State::Swapping(_)),
        "journal after the cut: {}",
        describe(&r.after)
    );
    s.cut = Some((at, total));
    Ok(format!(
        "power lost during flash operation {at} of {total} of the boot: {}; nothing runs",
        describe(&r.after)
    ))
}

/// (n) The next boot redoes the torn half-step, finishes the swap and runs v2 on trial.
pub fn recovery_step(s: &mut Story) -> anyhow::Result<String> {
    let device = s.device()?;
    let r = device.reboot(None)?;
    let h = r
        .handover
        .ok_or_else(|| anyhow!("nothing booted: {}", r.refusal.unwrap_or_default()))?;
    ensure!(h.sequence == 2 && h.trial, "booted {h:?}");
    let running = device.running().ok_or_else(|| anyhow!("nothing running"))?;
    ensure!(
        running.image_sha256 == Story::image_sha(2),
        "the primary slot does not hold v2's image"
    );
    let violations = device.flash.violations().len();
    ensure!(violations == 0, "{violations} flash rule violations");
    Ok(format!(
        "the next boot resumed from the journal ({} flash operations): swap finished, v2 \
         verified (signature, image digest) and booted on trial; no flash rule broken",
        r.ops
    ))
}

/// (o) v2's self-test passes: it confirms itself and the counter rises.
pub fn confirm_step(s: &mut Story) -> anyhow::Result<String> {
    let device = s.device()?;
    ensure!(device.self_test(false)?, "there was no trial to confirm");
    let r = device.reboot(None)?;
    let h = r.handover.ok_or_else(|| anyhow!("nothing booted"))?;
    ensure!(h.sequence == 2 && !h.trial, "booted {h:?}");
    let counter = device.counter()?;
    ensure!(counter == 2, "counter {counter}");
    Ok(format!(
        "self-test passed, v2 confirmed: permanent, counter 1 → {counter}; reboot: sequence 2"
    ))
}

/// (p) A bad v3: installed and booted on trial, its self-test fails, and the next boot
/// swaps v2 back.
pub fn bad_update_step(s: &mut Story) -> anyhow::Result<String> {
    let envelope = s.envelope(3)?;
    let payloads = s.path("payloads");
    let device = s.device()?;
    device.apply(&envelope, &mut FileFetch::new(vec![payloads]))?;
    let r = device.reboot(None)?;
    let h = r.handover.ok_or_else(|| anyhow!("v3 did not boot"))?;
    ensure!(h.sequence == 3 && h.trial, "booted {h:?}");
    match device.self_test(true) {
        Err(e) if e.chain().any(|c| c.is::<Rejected>()) => {}
        other => anyhow::bail!("the failing self-test was not reported: {other:?}"),
    }
    let r = device.reboot(None)?;
    let h = r
        .handover
        .ok_or_else(|| anyhow!("nothing booted after the revert"))?;
    ensure!(h.sequence == 2 && !h.trial, "booted {h:?}");
    let running = device.running().ok_or_else(|| anyhow!("nothing running"))?;
    ensure!(
        running.image_sha256 == Story::image_sha(2),
        "the primary slot does not hold v2's image"
    );
    let counter = device.counter()?;
    ensure!(counter == 2, "counter {counter}");
    Ok(format!(
        "v3 staged and booted on trial; its self-test failed, so it never confirmed; the \
         next boot reverted: {}, v2 running, counter still {counter}",
        describe(&r.after)
    ))
}

/// (q) Going back to v1 is refused before anything is written.
pub fn downgrade_step(s: &mut Story) -> anyhow::Result<String> {
    let envelope = s.envelope(1)?;
    let payloads = s.path("payloads");
    let device = s.device()?;
    let before = device.flash.wear().iter().sum::<u32>();
    let err = match device.apply(&envelope, &mut FileFetch::new(vec![payloads])) {
        Ok(_) => anyhow::bail!("the downgrade was accepted"),
        Err(e) if e.chain().any(|c| c.is::<Rejected>()) => e,
        Err(e) => return Err(e),
    };
    let after = device.flash.wear().iter().sum::<u32>();
    ensure!(
        before == after,
        "the refused update erased {} sectors",
        after - before
    );
    let state = device.journal()?;
    ensure!(
        matches!(state, State::Idle(_)),
        "journal: {}",
        describe(&state)
    );
    Ok(format!(
        "v1 offered again: {}; nothing erased or written, v2 keeps running",
        crate::one_line(&format!("{err:#}"))
    ))
}

/// The folder the story runs in (for the opening line).
pub fn dir(s: &Story) -> &Path {
    s.tmp.path()
}
