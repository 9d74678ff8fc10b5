//! Erases per sector and bytes written per update and per revert, measured on the flash
//! simulator (4 KiB sectors, 4-byte writes: an nRF52840-like part), next to MCUboot's
//! swap-move and swap-offset for the same image in the same run (their per-sector erase
//! counts are MCUboot's published ones; their bytes are the copies those algorithms make,
//! plus their status bytes).
//!
//! `cargo run --release -p suitcase-boot --example wear`

use std::collections::HashMap;

use embedded_storage::nor_flash::NorFlash;
use suitcase_boot::update::Updater;
use suitcase_boot::{Config, Layout, Mode, Region, SectorRun};
use suitcase_cose::{Algorithm, signing_key_from_pem, verifying_key_from_pem};
use suitcase_flash_sim::{Geometry, Options, SimFlash};
use suitcase_processor::platform::{
    ComponentStorage, StaticIdentity, StaticKeys, Target, TrustAnchor,
};
use suitcase_processor::suit::ComponentId;
use suitcase_testkit::device::{SPEC_CLASS, SPEC_VENDOR};
use suitcase_testkit::resign::{Rewrite, Signer};
use suitcase_testkit::vectors::{self, PLACEHOLDER_0};

const SECTOR: u32 = 4096;
const HEADER: u32 = 1024;
const COMPONENT: &[u8] = &[0x81, 0x41, 0x00];
type Flash = SimFlash<4, 4096>;

fn envelope(n: u32, image: &[u8], seq: u64) -> Vec<u8> {
    let key = signing_key_from_pem(&vectors::spec_keys().1).unwrap();
    Rewrite {
        images: HashMap::from([(PLACEHOLDER_0.to_vec(), image.to_vec())]),
        sequence_number: Some(seq),
        signers: vec![Signer::Sign(key, Algorithm::Es256)],
    }
    .apply(&vectors::spec_example(n))
    .unwrap()
}

struct Figures {
    primary_max: u32,
    secondary_max: u32,
    bytes: u64,
}

fn measure(
    f: &Flash,
    primary: std::ops::Range<usize>,
    secondary: std::ops::Range<usize>,
) -> Figures {
    Figures {
        primary_max: f.wear()[primary].iter().copied().max().unwrap_or(0),
        secondary_max: f.wear()[secondary].iter().copied().max().unwrap_or(0),
        bytes: f.stats().bytes_written,
    }
}

fn main() {
    let key = verifying_key_from_pem(&vectors::spec_keys().0).unwrap();
    let anchors = [TrustAnchor {
        key: key.as_verifying_key(),
        kid: None,
    }];
    let keys = StaticKeys {
        anchors: &anchors,
        rules: &[],
    };
    let identity = StaticIdentity {
        vendor: SPEC_VENDOR,
        class: SPEC_CLASS,
        device: None,
        running_slot: 0,
    };
    println!(
        "| image | sectors | update: erases per sector (primary · secondary) | update: bytes written | revert: erases per sector | revert: bytes written | staging (agent): erases per secondary sector, bytes | MCUboot swap-move: erases, bytes | MCUboot swap-offset: erases, bytes |"
    );
    println!("|---:|---:|---|---:|---|---:|---|---|---|");
    for kib in [64u32, 128, 256, 512, 1024] {
        let len = kib * 1024;
        let units = (HEADER + len).div_ceil(SECTOR);
        let frames = suitcase_boot::layout::journal_records(units, 1) + 8;
        let bank = (32 + frames * 16).div_ceil(SECTOR);
        let state = [SectorRun {
            size: SECTOR,
            count: 2 * bank,
        }];
        let counter = [SectorRun {
            size: SECTOR,
            count: 2,
        }];
        let primary = [SectorRun {
            size: SECTOR,
            count: units,
        }];
        let secondary = [SectorRun {
            size: SECTOR,
            count: units + 1,
        }];
        let s_at = 0;
        let c_at = 2 * bank * SECTOR;
        let p_at = c_at + 2 * SECTOR;
        let x_at = p_at + units * SECTOR;
        let layout = Layout {
            primary: Region {
                offset: p_at,
                sectors: &primary,
            },
            secondary: Region {
                offset: x_at,
                sectors: &secondary,
            },
            state: Region {
                offset: s_at,
                sectors: &state,
            },
            counter: Region {
                offset: c_at,
                sectors: &counter,
            },
            header_size: HEADER,
            erased: 0xFF,
            trial_boots: 1,
        };
        let total = (x_at + (units + 1) * SECTOR) / SECTOR;
        let mut flash = Flash::new(
            Geometry::uniform(SECTOR, total),
            Options {
                erased: 0xFF,
                log: false,
            },
        );
        let psec = (p_at / SECTOR) as usize..(x_at / SECTOR) as usize;
        let ssec = (x_at / SECTOR) as usize..total as usize;

        // Factory image, written directly.
        let old = suitcase_testkit::image(1, len as usize);
        let old_env = envelope(0, &old, 1);
        let mut content = vec![0xFF; HEADER as usize];
        content[..4].copy_from_slice(b"SCs1");
        content[4..8].copy_from_slice(&(old_env.len() as u32).to_le_bytes());
        content[8..12].copy_from_slice(&len.to_le_bytes());
        content[12..32].fill(0);
        content[32..32 + old_env.len()].copy_from_slice(&old_env);
        content.extend_from_slice(&old);
        flash.write(p_at, &content).unwrap();
        let cfg = Config {
            layout,
            keys: &keys,
            identity: &identity,
            component: COMPONENT,
        };
        let mut buf = vec![0u8; 4096];
        suitcase_boot::boot(&mut flash, &cfg, &mut buf).unwrap();

        // Staging by the agent (the image arrives in 512-byte chunks, as the processor's
        // pipeline delivers it).
        let new = suitcase_testkit::image(2, len as usize);
        let new_env = envelope(2, &new, 2);
        flash.reset_stats();
        {
            let mut u = Updater::new(&mut flash, &layout).unwrap();
            let mut st = u.stage(COMPONENT).unwrap();
            let t = Target {
                index: 0,
                id: ComponentId::decode(COMPONENT).unwrap(),
                slot: None,
            };
            st.begin_write(&t, Some(u64::from(len))).unwrap();
            for (i, chunk) in new.chunks(512).enumerate() {
                st.write(&t, (i * 512) as u64, chunk).unwrap();
            }
            st.finish_write(&t, u64::from(len)).unwrap();
            st.commit(&new_env, Mode::Test).unwrap();
        }
        let staging = measure(&flash, psec.clone(), ssec.clone());

        flash.reset_stats();
        let h = suitcase_boot::boot(&mut flash, &cfg, &mut buf).unwrap();
        assert!(h.trial && h.sequence == 2);
        let update = measure(&flash, psec.clone(), ssec.clone());

        flash.reset_stats();
        let h = suitcase_boot::boot(&mut flash, &cfg, &mut buf).unwrap();
        assert!(!h.trial && h.sequence == 1);
        let revert = measure(&flash, psec.clone(), ssec.clone());
        assert!(flash.violations().is_empty());

        // MCUboot, same image: swap-move moves the primary up one sector, then swaps (3
        // sector copies per sector, primary erased twice, secondary once); swap-offset
        // swaps once (2 copies, each slot erased once). Status: 3 resp. 2 records per
        // sector at the write alignment (4 bytes), plus the trailer's fixed fields.
        let n = u64::from(units);
        let s = u64::from(SECTOR);
        let mv = 3 * n * s + 3 * n * 4;
        let off = 2 * n * s + 2 * n * 4;
        println!(
            "| {kib} KiB | {units} | {} · {} | {} | {} · {} | {} | {}, {} | 2 · 1, {} | 1 · 1, {} |",
            update.primary_max,
            update.secondary_max,
            update.bytes,
            revert.primary_max,
            revert.secondary_max,
            revert.bytes,
            staging.secondary_max,
            staging.bytes,
            mv,
            off,
        );
    }
}
