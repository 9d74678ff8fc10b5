//! The geometry matrix. Each entry fixes the write size and the smallest erase unit at
//! compile time (`SimFlash<W, E>` implements `NorFlash` with them as constants) and the
//! sector layout and erased value at run time; MCUboot's `sim_test!` shape.

use suitcase_boot::SectorRun;
use suitcase_boot::layout::journal_records;

use super::common::{HEADER, Spec};
use super::powercut::{Report, run};

pub fn runs(list: &[(u32, u32)]) -> Vec<SectorRun> {
    list.iter()
        .map(|&(size, count)| SectorRun { size, count })
        .collect()
}

/// Primary-slot units for a swap unit: 4–16 sectors of small flash, fewer of large.
fn units_for(unit: u32) -> u32 {
    match unit {
        0..=1024 => 8,
        1025..=4096 => 6,
        4097..=16384 => 4,
        _ => 2,
    }
}

/// Two journal banks of `sector`-sized sectors, each holding a whole update and revert
/// plus room for frames burnt by cuts.
fn state(sector: u32, units: u32, trial: u8, write: u32) -> Vec<SectorRun> {
    let frame = write.max(16);
    let need = 32 + (journal_records(units, u32::from(trial)) + 4 + 24) * frame;
    runs(&[(sector, 2 * need.div_ceil(sector))])
}

/// Image lengths: the new image spans every primary unit (just), the old one two fewer
/// (so the swap length is the larger of the two).
fn images(unit: u32, units: u32) -> (usize, usize) {
    let new = (units - 1) * unit + unit / 8 - HEADER;
    let old_units = units.saturating_sub(2).max(1);
    let old = (old_units - 1) * unit + unit / 2 - HEADER;
    (old as usize, new as usize)
}

fn name(layout: &str, write: u32, erased: u8) -> String {
    format!("{layout}/w{write}/{erased:02x}")
}

/// Uniform sectors.
pub fn uniform(sector: u32, write: u32, erased: u8, trial: u8) -> Spec {
    let units = units_for(sector);
    let (old_len, new_len) = images(sector, units);
    Spec {
        name: name(&format!("uniform-{}", kib(sector)), write, erased),
        erased,
        trial_boots: trial,
        reserved: vec![],
        state: state(sector, units, trial, write),
        counter: runs(&[(sector, 2)]),
        gap: vec![],
        primary: runs(&[(sector, units)]),
        secondary: runs(&[(sector, units + 1)]),
        old_len,
        new_len,
    }
}

fn kib(b: u32) -> String {
    if b >= 1024 {
        format!("{}k", b / 1024)
    } else {
        format!("{b}")
    }
}

/// Small mixed sectors: the primary's first unit is 4 × 1 KiB + 4 KiB, then 8 KiB sectors.
pub fn mixed_small(write: u32, erased: u8, trial: u8) -> Spec {
    let (old_len, new_len) = images(8192, 4);
    Spec {
        name: name("mixed-1k4k8k", write, erased),
        erased,
        trial_boots: trial,
        reserved: vec![],
        state: state(1024, 4, trial, write),
        counter: runs(&[(1024, 2)]),
        gap: vec![],
        primary: runs(&[(1024, 4), (4096, 1), (8192, 3)]),
        secondary: runs(&[(8192, 5)]),
        old_len,
        new_len,
    }
}

/// Internal 2 KiB pages for the primary, an "external" 8 KiB-sector secondary.
pub fn mixed_external(write: u32, erased: u8, trial: u8) -> Spec {
    let (old_len, new_len) = images(8192, 4);
    Spec {
        name: name("mixed-2k-ext8k", write, erased),
        erased,
        trial_boots: trial,
        reserved: vec![],
        state: state(2048, 4, trial, write),
        counter: runs(&[(2048, 2)]),
        gap: vec![],
        primary: runs(&[(2048, 16)]),
        secondary: runs(&[(8192, 5)]),
        old_len,
        new_len,
    }
}

/// STM32F4-like: 16 KiB sectors for journal and counter, an unused 64 KiB sector, then
/// 128 KiB sectors for the slots.
pub fn mixed_f4(write: u32, erased: u8, trial: u8) -> Spec {
    let (old_len, new_len) = images(128 << 10, 2);
    Spec {
        name: name("mixed-f4-16k64k128k", write, erased),
        erased,
        trial_boots: trial,
        reserved: vec![],
        state: state(16 << 10, 2, trial, write),
        counter: runs(&[(16 << 10, 2)]),
        gap: runs(&[(64 << 10, 1)]),
        primary: runs(&[(128 << 10, 2)]),
        secondary: runs(&[(128 << 10, 3)]),
        old_len,
        new_len,
    }
}

/// Large mixed sectors: the primary's first unit is 2 × 64 KiB, then a 128 KiB sector.
pub fn mixed_large(write: u32, erased: u8, trial: u8) -> Spec {
    let (old_len, new_len) = images(128 << 10, 2);
    Spec {
        name: name("mixed-64k128k", write, erased),
        erased,
        trial_boots: trial,
        reserved: vec![],
        state: state(64 << 10, 2, trial, write),
        counter: runs(&[(64 << 10, 2)]),
        gap: vec![],
        primary: runs(&[(64 << 10, 2), (128 << 10, 1)]),
        secondary: runs(&[(128 << 10, 3)]),
        old_len,
        new_len,
    }
}

/// One matrix entry: a name and the run for its compile-time write and erase sizes.
pub type Entry = (String, Box<dyn Fn() -> Report + Send + Sync>);

macro_rules! matrix {
    ($( ($w:literal, $e:literal, $spec:expr) ),* $(,)?) => {
        vec![$({
            let spec = $spec;
            (spec.name.clone(), Box::new(move || run::<$w, $e>(spec.clone())) as Box<dyn Fn() -> Report + Send + Sync>)
        }),*]
    };
}

/// The CI matrix: every write size, both erased values, 512 B – 128 KiB sectors, uniform
/// and mixed, trial of one and two boots.
pub fn ci() -> Vec<Entry> {
    matrix![
        (1, 512, uniform(512, 1, 0xFF, 1)),
        (4, 512, uniform(512, 4, 0x00, 2)),
        (32, 512, uniform(512, 32, 0xFF, 1)),
        (2, 1024, uniform(1024, 2, 0x00, 1)),
        (8, 1024, uniform(1024, 8, 0xFF, 2)),
        (16, 1024, uniform(1024, 16, 0x00, 1)),
        (1, 2048, uniform(2048, 1, 0x00, 2)),
        (8, 2048, uniform(2048, 8, 0xFF, 1)),
        (32, 2048, uniform(2048, 32, 0x00, 2)),
        (4, 4096, uniform(4096, 4, 0xFF, 1)),
        (1, 4096, uniform(4096, 1, 0x00, 1)),
        (16, 4096, uniform(4096, 16, 0xFF, 2)),
        (2, 8192, uniform(8192, 2, 0xFF, 2)),
        (32, 8192, uniform(8192, 32, 0x00, 1)),
        (4, 16384, uniform(16384, 4, 0x00, 2)),
        (8, 16384, uniform(16384, 8, 0xFF, 1)),
        (32, 131072, uniform(131072, 32, 0xFF, 1)),
        (1, 1024, mixed_small(1, 0xFF, 2)),
        (8, 1024, mixed_small(8, 0x00, 1)),
        (32, 1024, mixed_small(32, 0xFF, 1)),
        (4, 2048, mixed_external(4, 0x00, 2)),
        (16, 2048, mixed_external(16, 0xFF, 1)),
        (4, 16384, mixed_f4(4, 0xFF, 2)),
        (16, 65536, mixed_large(16, 0x00, 1)),
    ]
}

/// Every write size × both erased values × every layout (a separate, long command).
pub fn full() -> Vec<Entry> {
    let mut all = Vec::new();
    macro_rules! each_write {
        ($e:literal, $mk:expr) => {
            for erased in [0xFF, 0x00] {
                for trial in [1, 2] {
                    all.extend(matrix![
                        (1, $e, $mk(1, erased, trial)),
                        (2, $e, $mk(2, erased, trial)),
                        (4, $e, $mk(4, erased, trial)),
                        (8, $e, $mk(8, erased, trial)),
                        (16, $e, $mk(16, erased, trial)),
                        (32, $e, $mk(32, erased, trial)),
                    ]);
                }
            }
        };
    }
    each_write!(512, |w, e, t| uniform(512, w, e, t));
    each_write!(1024, |w, e, t| uniform(1024, w, e, t));
    each_write!(2048, |w, e, t| uniform(2048, w, e, t));
    each_write!(4096, |w, e, t| uniform(4096, w, e, t));
    each_write!(8192, |w, e, t| uniform(8192, w, e, t));
    each_write!(16384, |w, e, t| uniform(16384, w, e, t));
    each_write!(131072, |w, e, t| uniform(131072, w, e, t));
    each_write!(1024, mixed_small);
    each_write!(2048, mixed_external);
    each_write!(16384, mixed_f4);
    each_write!(65536, mixed_large);
    all
}
