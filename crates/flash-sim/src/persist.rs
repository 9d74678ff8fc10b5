//! The backing file: the whole device state, updated in place after every change so a
//! simulated device survives the process (a killed process loses nothing the kernel has).
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `SUITSIM1` |
//! | 8 | 4 | write size (LE u32) |
//! | 12 | 4 | erase size (LE u32) |
//! | 16 | 1 | erased value |
//! | 17 | 7 | zero |
//! | 24 | 8 | operation index (LE u64) |
//! | 32 | 4 | sector count `n` (LE u32) |
//! | 36 | 4·n | sector sizes (LE u32) |
//! | 36+4n | capacity | contents |
//! | … | capacity / write size | one byte per write unit: 0 erased, 1 programmed |
//! | … | 4·n | erase count per sector (LE u32) |

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::{Geometry, Options, SimError, SimFlash};

const MAGIC: &[u8; 8] = b"SUITSIM1";

pub(crate) struct Backing {
    file: File,
    data_at: u64,
    flags_at: u64,
    wear_at: u64,
}

fn io(e: std::io::Error) -> SimError {
    SimError::Io(e.to_string())
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

impl Backing {
    fn offsets<const W: usize>(sectors: usize, cap: usize) -> (u64, u64, u64) {
        let data_at = 36 + 4 * sectors as u64;
        let flags_at = data_at + cap as u64;
        (data_at, flags_at, flags_at + (cap / W) as u64)
    }

    pub(crate) fn create<const W: usize, const E: usize>(
        path: &Path,
        f: &SimFlash<W, E>,
    ) -> Result<Backing, SimError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(io)?;
        let sectors = f.geometry.sectors();
        let mut head = Vec::with_capacity(36 + 4 * sectors.len());
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&(W as u32).to_le_bytes());
        head.extend_from_slice(&(E as u32).to_le_bytes());
        head.push(f.opts.erased);
        head.extend_from_slice(&[0; 7]);
        head.extend_from_slice(&f.ops.to_le_bytes());
        head.extend_from_slice(&(sectors.len() as u32).to_le_bytes());
        for s in sectors {
            head.extend_from_slice(&s.to_le_bytes());
        }
        file.write_all(&head).map_err(io)?;
        file.write_all(&f.mem).map_err(io)?;
        file.write_all(&f.programmed).map_err(io)?;
        let wear: Vec<u8> = f.wear.iter().flat_map(|w| w.to_le_bytes()).collect();
        file.write_all(&wear).map_err(io)?;
        let (data_at, flags_at, wear_at) = Self::offsets::<W>(sectors.len(), f.mem.len());
        Ok(Backing {
            file,
            data_at,
            flags_at,
            wear_at,
        })
    }

    pub(crate) fn open<const W: usize, const E: usize>(
        path: &Path,
        opts: Options,
    ) -> Result<SimFlash<W, E>, SimError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io)?;
        let mut all = Vec::new();
        file.read_to_end(&mut all).map_err(io)?;
        if all.len() < 36 || &all[..8] != MAGIC {
            return Err(SimError::BadImage("no SUITSIM1 header"));
        }
        if u32_at(&all, 8) as usize != W || u32_at(&all, 12) as usize != E {
            return Err(SimError::BadImage("write or erase size differs"));
        }
        let erased = all[16];
        let ops = u64::from_le_bytes(all[24..32].try_into().expect("8 bytes"));
        let n = u32_at(&all, 32) as usize;
        if all.len() < 36 + 4 * n {
            return Err(SimError::BadImage("truncated sector list"));
        }
        let sectors: Vec<u32> = (0..n).map(|i| u32_at(&all, 36 + 4 * i)).collect();
        let geometry = Geometry::from_sectors(sectors);
        let cap = geometry.capacity();
        let (data_at, flags_at, wear_at) = Self::offsets::<W>(n, cap);
        if all.len() != wear_at as usize + 4 * n {
            return Err(SimError::BadImage("size does not match the geometry"));
        }
        let mut f = SimFlash::new(geometry, Options { erased, ..opts });
        f.ops = ops;
        f.mem
            .copy_from_slice(&all[data_at as usize..flags_at as usize]);
        f.programmed
            .copy_from_slice(&all[flags_at as usize..wear_at as usize]);
        for (i, w) in f.wear.iter_mut().enumerate() {
            *w = u32_at(&all, wear_at as usize + 4 * i);
        }
        f.backing = Some(Backing {
            file,
            data_at,
            flags_at,
            wear_at,
        });
        Ok(f)
    }

    /// Writes the changed range (contents and unit flags), the wear of `sectors` and the
    /// operation index.
    pub(crate) fn update<const W: usize, const E: usize>(
        &mut self,
        f: &SimFlash<W, E>,
        at: usize,
        len: usize,
        sectors: Option<&[usize]>,
    ) -> Result<(), SimError> {
        let file = &mut self.file;
        file.seek(SeekFrom::Start(24)).map_err(io)?;
        file.write_all(&f.ops.to_le_bytes()).map_err(io)?;
        if len > 0 {
            file.seek(SeekFrom::Start(self.data_at + at as u64))
                .map_err(io)?;
            file.write_all(&f.mem[at..at + len]).map_err(io)?;
            let units = at / W..(at + len).div_ceil(W);
            file.seek(SeekFrom::Start(self.flags_at + units.start as u64))
                .map_err(io)?;
            file.write_all(&f.programmed[units]).map_err(io)?;
        }
        for &i in sectors.unwrap_or_default() {
            file.seek(SeekFrom::Start(self.wear_at + 4 * i as u64))
                .map_err(io)?;
            file.write_all(&f.wear[i].to_le_bytes()).map_err(io)?;
        }
        Ok(())
    }
}
