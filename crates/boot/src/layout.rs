//! Where everything lives: the regions of the flash, each with its sector map (like
//! MCUboot's `flash_area` and `flash_area_get_sectors`), and the plan derived from them.

use embedded_storage::nor_flash::NorFlash;

/// A run of `count` equal sectors of `size` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SectorRun {
    /// Sector size in bytes.
    pub size: u32,
    /// How many.
    pub count: u32,
}

/// A flash area: its offset in the device and its physical sectors, in address order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region<'g> {
    /// Offset of the first sector in the device.
    pub offset: u32,
    /// The sector map (runs of equal sectors).
    pub sectors: &'g [SectorRun],
}

impl Region<'_> {
    /// Each sector as (offset within the region, size).
    pub fn iter(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.sectors
            .iter()
            .flat_map(|r| core::iter::repeat_n(r.size, r.count as usize))
            .scan(0u32, |at, size| {
                let start = *at;
                *at = at.saturating_add(size);
                Some((start, size))
            })
    }

    /// Size in bytes (`None` past 4 GiB).
    pub fn size(&self) -> Option<u32> {
        self.sectors
            .iter()
            .try_fold(0u32, |acc, r| acc.checked_add(r.size.checked_mul(r.count)?))
    }

    fn count(&self) -> u32 {
        self.sectors.iter().map(|r| r.count).sum()
    }

    fn largest(&self) -> u32 {
        self.sectors.iter().map(|r| r.size).max().unwrap_or(0)
    }

    /// The first sector boundary at or after `rel` (relative), if inside the region.
    pub fn boundary_at_or_after(&self, rel: u32) -> Option<u32> {
        if rel == 0 {
            return Some(0);
        }
        self.iter()
            .map(|(s, n)| s.saturating_add(n))
            .find(|end| *end >= rel)
    }

    /// The boundary after the first half of the sectors: two banks.
    fn halves(&self) -> Option<(Bank, Bank)> {
        let n = self.count();
        if n < 2 {
            return None;
        }
        let mid = self.iter().nth((n / 2) as usize)?.0;
        let size = self.size()?;
        Some((
            Bank {
                offset: self.offset,
                size: mid,
            },
            Bank {
                offset: self.offset.checked_add(mid)?,
                size: size - mid,
            },
        ))
    }
}

/// The flash layout: the two image slots, the swap journal and the rollback counter.
///
/// | region | holds | erased |
/// |---|---|---|
/// | `primary` | the running image (the slot content, see `docs/boot.md`) | once per swap unit per update / revert |
/// | `secondary` | the staged update from unit 1 on; after a swap, the previous image from unit 0 on | once per unit at staging, once per swap / revert |
/// | `state` | two banks of the swap journal | one bank per update |
/// | `counter` | two banks of rollback-counter records | one bank per `frames` advances |
#[derive(Clone, Copy, Debug)]
pub struct Layout<'g> {
    /// The slot images run from.
    pub primary: Region<'g>,
    /// The staging slot; must be at least one swap unit larger than an image.
    pub secondary: Region<'g>,
    /// The swap journal: at least two sectors, split in two banks.
    pub state: Region<'g>,
    /// The rollback counter: at least two sectors, split in two banks.
    pub counter: Region<'g>,
    /// Bytes before the image in a slot: the slot header and the envelope. A multiple of
    /// the write size; the image starts at `primary.offset + header_size` (mind the vector
    /// table's alignment).
    pub header_size: u32,
    /// The value an erased byte reads as (`0xFF` or `0x00`): the journal needs it to find
    /// where its records end.
    pub erased: u8,
    /// Boots a test image gets to confirm itself before it is reverted (at least 1).
    pub trial_boots: u8,
}

/// Why a layout cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayoutError {
    /// `WRITE_SIZE` is not 1, 2, 4, 8, 16 or 32.
    WriteSize,
    /// The erased value is neither `0xFF` nor `0x00`.
    Erased,
    /// A sector or region offset is not a multiple of `ERASE_SIZE`, or a region is empty
    /// or larger than 4 GiB.
    Sector,
    /// A slot sector straddles a swap-unit boundary (the unit is the largest slot sector;
    /// every multiple of it must be a sector boundary in both slots).
    UnitStraddle,
    /// The secondary slot has fewer than two units, or the primary none.
    SlotTooSmall,
    /// The header size is not a multiple of the write size, is under 64 bytes, or leaves
    /// no room for an image.
    HeaderSize,
    /// The state region is not two banks each holding a whole update's journal.
    StateTooSmall,
    /// The counter region is not two banks of at least one record each.
    CounterTooSmall,
    /// `trial_boots` is 0.
    TrialBoots,
}

/// A bank: one half of the state or counter region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bank {
    /// Absolute offset.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
}

/// What the layout implies, computed once per boot by [`Layout::plan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The swap unit: the largest sector of either slot.
    pub unit: u32,
    /// Units an image (with its header) may span: min(primary units, secondary units − 1).
    pub max_units: u16,
    /// Journal and counter record size: max(16, write size).
    pub frame: u32,
    /// Records a journal bank holds after its checkpoint.
    pub journal_frames: u32,
    pub(crate) write: u32,
    pub(crate) erased: u8,
    pub(crate) header: u32,
    pub(crate) trial_boots: u8,
    pub(crate) primary: u32,
    pub(crate) secondary: u32,
    pub(crate) state: [Bank; 2],
    pub(crate) counter: [Bank; 2],
}

/// Journal records one update needs without any interruption: swap start, two per unit
/// each way, the trial boots, the confirm or revert. Each power cut can burn one frame
/// more; a full bank is compacted into the other (see `docs/boot.md`).
pub const fn journal_records(units: u32, trial_boots: u32) -> u32 {
    1 + 4 * units + trial_boots + 1
}

fn slot_units(r: &Region<'_>, unit: u32) -> Result<u32, LayoutError> {
    // A sector must not straddle a unit boundary: then every unit is a whole number of
    // sectors and erasing a unit never touches its neighbours.
    for (start, size) in r.iter() {
        if start % unit + size > unit {
            return Err(LayoutError::UnitStraddle);
        }
    }
    Ok(r.size().ok_or(LayoutError::Sector)? / unit)
}

impl Layout<'_> {
    /// Checks the layout against the flash type and computes the plan.
    ///
    /// # Errors
    /// The first [`LayoutError`] found.
    pub fn plan<F: NorFlash>(&self) -> Result<Plan, LayoutError> {
        let write = F::WRITE_SIZE as u32;
        if !matches!(write, 1 | 2 | 4 | 8 | 16 | 32) {
            return Err(LayoutError::WriteSize);
        }
        if self.erased != 0xFF && self.erased != 0x00 {
            return Err(LayoutError::Erased);
        }
        if self.trial_boots == 0 {
            return Err(LayoutError::TrialBoots);
        }
        let erase = F::ERASE_SIZE as u32;
        for r in [&self.primary, &self.secondary, &self.state, &self.counter] {
            let aligned = erase > 0
                && r.offset % erase == 0
                && r.sectors.iter().all(|s| s.size > 0 && s.size % erase == 0);
            let fits = r
                .size()
                .is_some_and(|s| s > 0 && r.offset.checked_add(s).is_some());
            if !aligned || !fits {
                return Err(LayoutError::Sector);
            }
        }
        let unit = self.primary.largest().max(self.secondary.largest());
        let pu = slot_units(&self.primary, unit)?;
        let su = slot_units(&self.secondary, unit)?;
        if pu < 1 || su < 2 {
            return Err(LayoutError::SlotTooSmall);
        }
        let max_units = u16::try_from(pu.min(su - 1)).map_err(|_| LayoutError::SlotTooSmall)?;
        let h = self.header_size;
        if !h.is_multiple_of(write)
            || h < 64
            || u64::from(h) >= u64::from(max_units) * u64::from(unit)
        {
            return Err(LayoutError::HeaderSize);
        }
        let frame = write.max(16);
        let (s0, s1) = self.state.halves().ok_or(LayoutError::StateTooSmall)?;
        let journal_frames = (s0.size.min(s1.size) - crate::record::CHECKPOINT_LEN as u32) / frame;
        // Room for an uninterrupted update and revert, plus slack for frames burnt by cuts.
        if journal_frames < journal_records(u32::from(max_units), u32::from(self.trial_boots)) + 4 {
            return Err(LayoutError::StateTooSmall);
        }
        let (c0, c1) = self.counter.halves().ok_or(LayoutError::CounterTooSmall)?;
        if c0.size.min(c1.size) < frame {
            return Err(LayoutError::CounterTooSmall);
        }
        Ok(Plan {
            unit,
            max_units,
            frame,
            journal_frames,
            write,
            erased: self.erased,
            header: h,
            trial_boots: self.trial_boots,
            primary: self.primary.offset,
            secondary: self.secondary.offset,
            state: [s0, s1],
            counter: [c0, c1],
        })
    }
}

impl Plan {
    /// Swap units a slot content of `image_len` bytes spans (header included).
    pub fn units_for(&self, image_len: u32) -> u32 {
        (u64::from(self.header) + u64::from(image_len)).div_ceil(u64::from(self.unit)) as u32
    }

    /// The largest image a slot takes.
    pub fn max_image(&self) -> u32 {
        u32::from(self.max_units) * self.unit - self.header
    }

    /// Absolute offset of unit `i` of the primary slot.
    pub(crate) fn primary_unit(&self, i: u32) -> u32 {
        self.primary + i * self.unit
    }

    /// Absolute offset of unit `i` of the secondary slot.
    pub(crate) fn secondary_unit(&self, i: u32) -> u32 {
        self.secondary + i * self.unit
    }
}

#[cfg(test)]
mod tests;
