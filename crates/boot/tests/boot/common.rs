//! The simulated device: a [`SimFlash`] laid out for the bootloader, the bootloader
//! itself, and an update agent that runs the SUIT update procedure into the staging slot.

use std::collections::HashMap;

use embedded_storage::nor_flash::NorFlash;
pub use suitcase_boot::update::InstallError;
use suitcase_boot::update::{Agent, Updater};
use suitcase_boot::{BootError, Config, Handover, Layout, Mode, Region, SectorRun, State};
use suitcase_cose::{Algorithm, OwnedVerifyingKey, signing_key_from_pem, verifying_key_from_pem};
use suitcase_flash_sim::{Fault, Geometry, Options, SimFlash};
use suitcase_processor::platform::{
    Fetch, FetchError, NoClock, NoDecryptionKeys, StaticIdentity, StaticKeys, TrustAnchor,
};
use suitcase_processor::report::NoReport;
use suitcase_testkit::device::{SPEC_CLASS, SPEC_VENDOR};
use suitcase_testkit::resign::{Rewrite, Signer};
use suitcase_testkit::vectors::{self, PLACEHOLDER_0};

/// The image component of the spec examples, `[h'00']`.
pub const COMPONENT: &[u8] = &[0x81, 0x41, 0x00];
/// The factory image's sequence number.
pub const SEQ_OLD: u64 = 5;
/// The update's.
pub const SEQ_NEW: u64 = 6;

/// Bytes before the image in a slot: header + envelope (example 2 is ~930 bytes).
pub const HEADER: u32 = 1024;
/// The boot buffer (envelope, and the swap's copy buffer).
pub const BUF: usize = 4096;

/// A device shape: regions as runs of sectors, in flash order state, counter, primary,
/// secondary (plus unused sectors before them).
#[derive(Clone, Debug)]
pub struct Spec {
    pub name: String,
    pub erased: u8,
    pub trial_boots: u8,
    /// Sectors before the first region (a bootloader's own, say).
    pub reserved: Vec<SectorRun>,
    pub state: Vec<SectorRun>,
    pub counter: Vec<SectorRun>,
    /// Unused sectors between the counter and the primary slot.
    pub gap: Vec<SectorRun>,
    pub primary: Vec<SectorRun>,
    pub secondary: Vec<SectorRun>,
    pub old_len: usize,
    pub new_len: usize,
}

fn size(runs: &[SectorRun]) -> u32 {
    runs.iter().map(|r| r.size * r.count).sum()
}

/// A signed envelope, its image and the slot content they make.
#[derive(Clone, Debug)]
pub struct Payload {
    pub seq: u64,
    pub image: Vec<u8>,
    pub envelope: Vec<u8>,
    /// header ‖ envelope ‖ erased padding to HEADER ‖ image: what the slot must hold.
    pub content: Vec<u8>,
}

/// Everything shared by the devices of one geometry.
pub struct Fixture {
    pub spec: Spec,
    pub offsets: [u32; 4],
    pub key: OwnedVerifyingKey,
    pub old: Payload,
    pub new: Payload,
}

/// The spec example `n`, re-signed with `image` as its digest and `seq` as its number.
pub fn envelope(n: u32, image: &[u8], seq: u64) -> Vec<u8> {
    let key = signing_key_from_pem(&vectors::spec_keys().1).unwrap();
    Rewrite {
        images: HashMap::from([(PLACEHOLDER_0.to_vec(), image.to_vec())]),
        sequence_number: Some(seq),
        signers: vec![Signer::Sign(key, Algorithm::Es256)],
    }
    .apply(&vectors::spec_example(n))
    .unwrap()
}

/// The slot content of an envelope and image, as the agent writes it.
pub fn content(envelope: &[u8], image: &[u8], erased: u8) -> Vec<u8> {
    let mut c = vec![erased; HEADER as usize];
    c[..4].copy_from_slice(b"SCs1");
    c[4..8].copy_from_slice(&(envelope.len() as u32).to_le_bytes());
    c[8..12].copy_from_slice(&(image.len() as u32).to_le_bytes());
    c[12..32].fill(0);
    c[32..32 + envelope.len()].copy_from_slice(envelope);
    c.extend_from_slice(image);
    c
}

impl Payload {
    /// Example `n` (0: secure boot only; 2: download, install, secure boot) over a
    /// pseudo-random image.
    pub fn new(n: u32, seed: u64, len: usize, seq: u64, erased: u8) -> Payload {
        let image = suitcase_testkit::image(seed, len);
        let envelope = envelope(n, &image, seq);
        let content = content(&envelope, &image, erased);
        Payload {
            seq,
            image,
            envelope,
            content,
        }
    }
}

impl Fixture {
    pub fn new(spec: Spec) -> Fixture {
        let mut at = size(&spec.reserved);
        let mut offsets = [0; 4];
        for (i, r) in [&spec.state, &spec.counter, &spec.primary, &spec.secondary]
            .into_iter()
            .enumerate()
        {
            if i == 2 {
                at += size(&spec.gap);
            }
            offsets[i] = at;
            at += size(r);
        }
        let key = verifying_key_from_pem(&vectors::spec_keys().0).unwrap();
        // The factory image carries the secure-boot-only example 0; updates carry
        // example 2 (fetch, install, validate, invoke).
        let old = Payload::new(0, 11, spec.old_len, SEQ_OLD, spec.erased);
        let new = Payload::new(2, 22, spec.new_len, SEQ_NEW, spec.erased);
        Fixture {
            spec,
            offsets,
            key,
            old,
            new,
        }
    }

    pub fn layout(&self) -> Layout<'_> {
        let s = &self.spec;
        Layout {
            state: Region {
                offset: self.offsets[0],
                sectors: &s.state,
            },
            counter: Region {
                offset: self.offsets[1],
                sectors: &s.counter,
            },
            primary: Region {
                offset: self.offsets[2],
                sectors: &s.primary,
            },
            secondary: Region {
                offset: self.offsets[3],
                sectors: &s.secondary,
            },
            header_size: HEADER,
            erased: s.erased,
            trial_boots: s.trial_boots,
        }
    }

    pub fn geometry(&self) -> Geometry {
        let s = &self.spec;
        let runs: Vec<(u32, u32)> = [
            &s.reserved,
            &s.state,
            &s.counter,
            &s.gap,
            &s.primary,
            &s.secondary,
        ]
        .into_iter()
        .flatten()
        .map(|r| (r.size, r.count))
        .collect();
        Geometry::new(&runs)
    }

    pub fn identity() -> StaticIdentity {
        StaticIdentity {
            vendor: SPEC_VENDOR,
            class: SPEC_CLASS,
            device: None,
            running_slot: 0,
        }
    }

    pub fn with_keys<R>(&self, f: impl FnOnce(&StaticKeys<'_>) -> R) -> R {
        let anchors = [TrustAnchor {
            key: self.key.as_verifying_key(),
            kid: None,
        }];
        f(&StaticKeys {
            anchors: &anchors,
            rules: &[],
        })
    }
}

/// Serves one image at every URI, in transport-sized pieces.
pub struct Serve<'a> {
    image: &'a [u8],
    at: usize,
}

impl Fetch for Serve<'_> {
    fn open(&mut self, _uri: &str, _args: Option<&[u8]>) -> Result<(), FetchError> {
        self.at = 0;
        Ok(())
    }
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, FetchError> {
        let n = (self.image.len() - self.at).min(buf.len());
        buf[..n].copy_from_slice(&self.image[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// One simulated device.
#[derive(Clone)]
pub struct Device<'f, const W: usize, const E: usize> {
    pub fx: &'f Fixture,
    pub flash: SimFlash<W, E>,
}

impl<'f, const W: usize, const E: usize> Device<'f, W, E> {
    /// A factory-fresh device: the old image provisioned in the primary slot, journal
    /// and counter erased, statistics zeroed.
    pub fn factory(fx: &'f Fixture) -> Self {
        let mut flash = SimFlash::new(
            fx.geometry(),
            Options {
                erased: fx.spec.erased,
                log: false,
            },
        );
        let mut dev = Device {
            fx,
            flash: flash.clone(),
        };
        let at = fx.offsets[2];
        let mut c = fx.old.content.clone();
        c.resize(c.len().div_ceil(W) * W, fx.spec.erased);
        flash.write(at, &c).unwrap();
        flash.reset_stats();
        dev.flash = flash;
        dev
    }

    pub fn boot(&mut self) -> Result<Handover, BootError> {
        let fx = self.fx;
        let layout = fx.layout();
        let identity = Fixture::identity();
        let mut buf = vec![0u8; BUF];
        fx.with_keys(|keys| {
            let cfg = Config {
                layout,
                keys,
                identity: &identity,
                component: COMPONENT,
            };
            suitcase_boot::boot(&mut self.flash, &cfg, &mut buf)
        })
    }

    /// The update agent: authenticate, run the update procedure into the staging slot
    /// (rollback floor from the counter), commit the envelope and request the update.
    pub fn install(&mut self, p: &Payload, mode: Mode) -> Result<(), InstallError> {
        self.install_raw(&p.envelope, &p.image, mode)
    }

    pub fn install_raw(
        &mut self,
        envelope: &[u8],
        image: &[u8],
        mode: Mode,
    ) -> Result<(), InstallError> {
        let fx = self.fx;
        let layout = fx.layout();
        let identity = Fixture::identity();
        fx.with_keys(|keys| {
            let mut updater = Updater::new(&mut self.flash, &layout).map_err(InstallError::Boot)?;
            let mut agent = Agent {
                keys,
                identity: &identity,
                fetch: &mut Serve { image, at: 0 },
                clock: &NoClock,
                reporter: &mut NoReport,
                decryption: &NoDecryptionKeys,
                policy: &mut suitcase_processor::platform::NoPolicy,
            };
            updater
                .install(envelope, COMPONENT, &mut agent, mode)
                .map(|_| ())
        })
    }

    /// The envelope the primary slot keeps with the running image.
    pub fn running_envelope(&mut self) -> Option<Vec<u8>> {
        let layout = self.fx.layout();
        let mut buf = vec![0u8; 8192];
        Updater::new(&mut self.flash, &layout)
            .unwrap()
            .running_envelope(&mut buf)
            .unwrap()
            .map(<[u8]>::to_vec)
    }

    pub fn confirm(&mut self) -> Result<(), BootError> {
        let layout = self.fx.layout();
        Updater::new(&mut self.flash, &layout)?.confirm()
    }

    pub fn state(&mut self) -> State {
        let layout = self.fx.layout();
        Updater::new(&mut self.flash, &layout)
            .unwrap()
            .state()
            .unwrap()
    }

    /// The rollback counter (power must be on).
    pub fn counter(&mut self) -> u64 {
        let layout = self.fx.layout();
        Updater::new(&mut self.flash, &layout)
            .unwrap()
            .floor()
            .unwrap()
    }

    /// Whether the primary slot holds exactly `p`'s header, envelope and image.
    pub fn primary_holds(&self, p: &Payload) -> bool {
        let at = self.fx.offsets[2] as usize;
        self.flash.contents()[at..at + p.content.len()] == p.content[..]
    }

    /// Whether the staging slot (secondary, unit 1) holds exactly `p`.
    pub fn staged_holds(&self, p: &Payload) -> bool {
        let layout = self.fx.layout();
        let unit = layout.plan::<SimFlash<W, E>>().unwrap().unit;
        let at = (self.fx.offsets[3] + unit) as usize;
        self.flash.contents()[at..at + p.content.len()] == p.content[..]
    }

    /// Switches the power back on; schedules the next of `further` random cuts.
    pub fn power_on(&mut self, rng: &mut Rng, further: &mut u32, span: u64) {
        self.flash.restore_power();
        if *further > 0 {
            *further -= 1;
            // The last cut of a sequence lands anywhere; the others within the next eight
            // operations: the recovery of the recovery, before the scenario can end.
            let reach = if *further == 0 { span.max(8) } else { 8 };
            let fault = if rng.below(2) == 0 {
                Fault::Cut
            } else {
                Fault::Tear { seed: rng.next() }
            };
            self.flash.schedule_in(rng.below(reach), fault);
        }
    }
}

/// xorshift64*, for reproducible cut sequences.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The small geometry the behaviour tests use: 4 KiB sectors, 8-byte writes.
pub type Small<'f> = Device<'f, 8, 4096>;

pub fn small(trial_boots: u8) -> Fixture {
    Fixture::new(super::geometries::uniform(4096, 8, 0xFF, trial_boots))
}

impl<const W: usize, const E: usize> Device<'_, W, E> {
    /// Stages `image` and `envelope` without the update procedure (an attacker, or a
    /// buggy agent, with write access to the staging slot) and requests it.
    pub fn stage_raw(
        &mut self,
        envelope: &[u8],
        image: &[u8],
        mode: Mode,
    ) -> Result<(), BootError> {
        use suitcase_processor::platform::{ComponentStorage, Target};
        use suitcase_processor::suit::ComponentId;
        let layout = self.fx.layout();
        let mut updater = Updater::new(&mut self.flash, &layout)?;
        let mut staging = updater.stage(COMPONENT)?;
        let id = ComponentId::decode(COMPONENT).unwrap();
        let t = Target {
            index: 0,
            id,
            slot: None,
        };
        staging.begin_write(&t, Some(image.len() as u64)).unwrap();
        staging.write(&t, 0, image).unwrap();
        staging.finish_write(&t, image.len() as u64).unwrap();
        staging.commit(envelope, mode)
    }

    /// Flips bits of one byte at `offset` from the start of the primary (`secondary =
    /// false`) or staged (`true`) slot content.
    pub fn corrupt(&mut self, secondary: bool, offset: u32) {
        let layout = self.fx.layout();
        let unit = layout.plan::<SimFlash<W, E>>().unwrap().unit;
        let at = if secondary {
            self.fx.offsets[3] + unit + offset
        } else {
            self.fx.offsets[2] + offset
        };
        let b = self.flash.contents()[at as usize];
        self.flash.tamper(at, &[b ^ 0x01]);
    }
}
