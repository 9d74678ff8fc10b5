use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};

use super::*;

type F4 = SimFlash<4, 512>;

fn dev(erased: u8) -> F4 {
    SimFlash::new(
        Geometry::new(&[(512, 2), (1024, 1), (2048, 1)]),
        Options { erased, log: true },
    )
}

#[test]
fn geometry_maps_addresses_to_sectors() {
    let g = Geometry::new(&[(512, 2), (1024, 1), (2048, 1)]);
    assert_eq!(g.capacity(), 4096);
    assert_eq!(g.sector_of(0), Some(0));
    assert_eq!(g.sector_of(511), Some(0));
    assert_eq!(g.sector_of(1024), Some(2));
    assert_eq!(g.sector_of(2047), Some(2));
    assert_eq!(g.sector_of(4095), Some(3));
    assert_eq!(g.sector_of(4096), None);
    assert!(g.is_boundary(2048) && g.is_boundary(4096) && !g.is_boundary(1536));
}

#[test]
fn starts_erased_with_either_value() {
    for e in [0xFF, 0x00] {
        let mut f = dev(e);
        let mut b = [0x55; 8];
        f.read(100, &mut b).unwrap();
        assert_eq!(b, [e; 8]);
    }
}

#[test]
fn writes_must_be_aligned_and_in_bounds() {
    let mut f = dev(0xFF);
    assert_eq!(f.write(2, &[0; 4]), Err(SimError::NotAligned));
    assert_eq!(f.write(0, &[0; 3]), Err(SimError::NotAligned));
    assert_eq!(f.write(4096, &[0; 4]), Err(SimError::OutOfBounds));
    assert_eq!(f.violations().len(), 3);
    assert_eq!(f.violations()[0].rule, Rule::Alignment);
}

#[test]
fn a_unit_is_written_once_per_erase() {
    let mut f = dev(0xFF);
    f.write(0, &[1, 2, 3, 4]).unwrap();
    // Even writing the erased value programs the unit.
    f.write(4, &[0xFF; 4]).unwrap();
    assert_eq!(f.write(4, &[0; 4]), Err(SimError::NotErased(4)));
    assert_eq!(f.write(0, &[1, 2, 3, 4]), Err(SimError::NotErased(0)));
    f.erase(0, 512).unwrap();
    f.write(0, &[9; 4]).unwrap();
    assert_eq!(f.violations().len(), 2);
}

#[test]
fn erases_cover_whole_physical_sectors() {
    let mut f = dev(0x00);
    // A multiple of ERASE_SIZE but inside the 1 KiB sector: refused.
    assert_eq!(f.erase(1024, 1536), Err(SimError::NotAligned));
    assert_eq!(f.erase(512, 2048), Ok(()));
    assert_eq!(f.wear(), &[0, 1, 1, 0]);
    assert_eq!(f.stats().erases, 1);
    assert_eq!(f.stats().sectors_erased, 2);
    assert_eq!(f.erase(2048, 8192), Err(SimError::OutOfBounds));
}

#[test]
fn a_cut_changes_nothing_and_keeps_the_power_off() {
    let mut f = dev(0xFF);
    f.write(0, &[1; 4]).unwrap();
    f.schedule_in(0, Fault::Cut);
    assert_eq!(f.write(4, &[2; 4]), Err(SimError::PowerLoss));
    assert!(!f.is_powered());
    let mut b = [0; 4];
    assert_eq!(f.read(4, &mut b), Err(SimError::PowerLoss));
    assert_eq!(f.erase(0, 512), Err(SimError::PowerLoss));
    f.restore_power();
    f.read(4, &mut b).unwrap();
    assert_eq!(b, [0xFF; 4]);
    f.write(4, &[2; 4]).unwrap();
    assert_eq!(
        f.log().iter().map(|e| e.outcome).collect::<Vec<_>>(),
        vec![Outcome::Done, Outcome::Cut, Outcome::Done]
    );
    assert_eq!(f.ops(), 3);
}

#[test]
fn a_torn_write_leaves_a_prefix_and_an_undefined_unit() {
    for erased in [0xFF, 0x00] {
        for seed in 0..64 {
            let mut f = dev(erased);
            let data: Vec<u8> = (0..64).map(|i| i as u8 ^ 0x5A).collect();
            f.schedule_in(0, Fault::Tear { seed });
            assert_eq!(f.write(64, &data), Err(SimError::PowerLoss));
            f.restore_power();
            let mem = &f.contents()[64..128];
            let done = mem
                .chunks(4)
                .zip(data.chunks(4))
                .take_while(|(m, d)| m == d)
                .count();
            // After the prefix: at most one unit in between, then untouched.
            let rest = &mem[(done + 1).min(16) * 4..];
            assert!(rest.iter().all(|b| *b == erased), "seed {seed}");
            assert!(done < 16 || mem == &data[..]);
            // The torn unit either reads erased (and may be written) or must be erased.
            let unit = 64 + done as u32 * 4;
            if done < 16 {
                let t = f.contents()[unit as usize..unit as usize + 4].to_vec();
                let r = f.write(unit, &[0x11; 4]);
                if t.iter().all(|b| *b == erased) {
                    assert_eq!(r, Ok(()));
                } else {
                    assert_eq!(r, Err(SimError::NotErased(unit)));
                }
            }
        }
    }
}

#[test]
fn a_torn_erase_leaves_the_sector_unwritable_until_erased() {
    for seed in 0..16 {
        let mut f = dev(0xFF);
        f.write(0, &[0; 4]).unwrap();
        f.write(1024, &[0; 4]).unwrap();
        f.schedule_in(0, Fault::Tear { seed });
        assert_eq!(f.erase(0, 2048), Err(SimError::PowerLoss));
        f.restore_power();
        // Sectors 0..k erased, sector k torn, the rest untouched.
        let torn = f.wear().iter().rposition(|w| *w == 1).unwrap();
        assert!(torn <= 2);
        let start = f.geometry().start(torn);
        assert!(matches!(
            f.write(start, &[1; 4]),
            Err(SimError::NotErased(_))
        ));
        f.erase(0, 2048).unwrap();
        f.write(start, &[1; 4]).unwrap();
    }
}

#[test]
fn faults_fire_at_their_index_only() {
    let mut f = dev(0xFF);
    f.schedule(2, Fault::Cut);
    f.schedule(5, Fault::Cut);
    f.write(0, &[0; 4]).unwrap();
    f.write(4, &[0; 4]).unwrap();
    assert_eq!(f.write(8, &[0; 4]), Err(SimError::PowerLoss));
    f.restore_power();
    assert_eq!(f.pending_faults(), 1);
    f.write(8, &[0; 4]).unwrap();
    f.write(12, &[0; 4]).unwrap();
    assert_eq!(f.write(16, &[0; 4]), Err(SimError::PowerLoss));
}

#[test]
fn multiwrite_allows_bits_away_from_erased_only() {
    let mut f = dev(0xFF).into_multiwrite();
    f.write(0, &[0xF0; 4]).unwrap();
    f.write(0, &[0x30; 4]).unwrap();
    let mut b = [0; 4];
    f.read(0, &mut b).unwrap();
    assert_eq!(b, [0x30; 4]);
    assert_eq!(f.write(0, &[0xFF; 4]), Err(SimError::NotErased(0)));
    let mut z = dev(0x00).into_multiwrite();
    z.write(0, &[0x0F; 4]).unwrap();
    z.write(0, &[0x3F; 4]).unwrap();
    z.read(0, &mut b).unwrap();
    assert_eq!(b, [0x3F; 4]);
}

#[test]
fn state_survives_in_the_backing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flash.bin");
    {
        let mut f = F4::create(
            &path,
            Geometry::new(&[(512, 2), (1024, 1)]),
            Options::default(),
        )
        .unwrap();
        f.write(8, &[1, 2, 3, 4]).unwrap();
        f.erase(512, 2048).unwrap();
        f.write(600, &[5; 8]).unwrap();
    }
    let mut f = F4::open(&path, Options::default()).unwrap();
    assert_eq!(&f.contents()[8..12], &[1, 2, 3, 4]);
    assert_eq!(&f.contents()[600..608], &[5; 8]);
    assert_eq!(f.wear(), &[0, 1, 1]);
    assert_eq!(f.ops(), 3);
    assert_eq!(f.write(8, &[0; 4]), Err(SimError::NotErased(8)));
    assert!(matches!(
        SimFlash::<8, 512>::open(&path, Options::default()),
        Err(SimError::BadImage(_))
    ));
}

#[test]
fn a_cut_is_persisted_like_any_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flash.bin");
    {
        let mut f = F4::create(&path, Geometry::uniform(512, 2), Options::default()).unwrap();
        f.schedule_in(0, Fault::Tear { seed: 3 });
        let _ = f.write(0, &[0; 64]);
    }
    let g = F4::open(&path, Options::default()).unwrap();
    assert_eq!(g.ops(), 1);
    assert!(g.is_powered(), "a new process is a new boot");
}
