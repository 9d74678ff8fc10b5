//! FlashStorage over a strict RAM NorFlash (aligned writes, no write over unerased bytes),
//! and the pipeline with a transform stage.

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

extern crate std;
use std::vec::Vec;

use super::*;
use crate::Error;
use crate::pipeline::{self, Source, Transform};
use suitcase_suit::ComponentId;

#[derive(Debug)]
struct FlashError(NorFlashErrorKind);
impl NorFlashError for FlashError {
    fn kind(&self) -> NorFlashErrorKind {
        self.0
    }
}

/// 8 KiB, 1 KiB sectors, write size W, erased 0xFF; refuses what real NOR refuses.
struct Strict<const W: usize> {
    mem: [u8; 8192],
    erases: usize,
}

impl<const W: usize> ErrorType for Strict<W> {
    type Error = FlashError;
}
impl<const W: usize> ReadNorFlash for Strict<W> {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        let o = offset as usize;
        bytes.copy_from_slice(
            self.mem
                .get(o..o + bytes.len())
                .ok_or(FlashError(NorFlashErrorKind::OutOfBounds))?,
        );
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.mem.len()
    }
}
impl<const W: usize> NorFlash for Strict<W> {
    const WRITE_SIZE: usize = W;
    const ERASE_SIZE: usize = 1024;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        assert!(
            from.is_multiple_of(1024) && to.is_multiple_of(1024),
            "unaligned erase"
        );
        self.mem[from as usize..to as usize].fill(0xFF);
        self.erases += ((to - from) / 1024) as usize;
        Ok(())
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        assert!(
            (offset as usize).is_multiple_of(W) && bytes.len().is_multiple_of(W),
            "unaligned write"
        );
        let dst = &mut self.mem[offset as usize..offset as usize + bytes.len()];
        assert!(dst.iter().all(|b| *b == 0xFF), "write over unerased bytes");
        dst.copy_from_slice(bytes);
        Ok(())
    }
}

const ID: &[u8] = &[0x81, 0x41, 0x00]; // [h'00']

fn target() -> Target<'static> {
    Target {
        index: 0,
        id: ComponentId::decode(ID).unwrap(),
        slot: Some(1),
    }
}

fn run<const W: usize>(image: &[u8], source_chunk: usize) -> (Strict<W>, [u8; 32]) {
    let regions = [FlashRegion {
        id: ID,
        slot: Some(1),
        offset: 2048,
        size: 4096,
    }];
    let mut s = FlashStorage::new(
        Strict::<W> {
            mem: [0xAA; 8192],
            erases: 0,
        },
        &regions,
    );
    let t = target();
    // Feed the pipeline through a transport that returns odd-sized reads.
    struct Odd<'a>(&'a [u8], usize);
    impl crate::platform::Fetch for Odd<'_> {
        fn open(&mut self, _: &str, _: Option<&[u8]>) -> Result<(), crate::platform::FetchError> {
            Ok(())
        }
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, crate::platform::FetchError> {
            let n = self.0.len().min(self.1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let mut f = Odd(image, source_chunk);
    let w = pipeline::install(
        &mut s,
        &t,
        Some(image.len() as u64),
        Source::Fetch(&mut f),
        None,
    )
    .unwrap();
    assert_eq!(w.len, image.len() as u64);
    (s.into_inner(), w.digest)
}

#[test]
fn flash_writes_are_reblocked_for_every_write_size() {
    let image: Vec<u8> = (0..2500u32).map(|i| (i * 7 + 3) as u8).collect();
    for chunk in [1, 3, 7, 64, 511, 4096] {
        let (f1, d1) = run::<1>(&image, chunk);
        let (f4, _) = run::<4>(&image, chunk);
        let (f16, _) = run::<16>(&image, chunk);
        let (f32_, _) = run::<32>(&image, chunk);
        for f in [&f1.mem[..], &f4.mem[..], &f16.mem[..], &f32_.mem[..]] {
            assert_eq!(&f[2048..2048 + 2500], &image[..], "chunk {chunk}");
            // Only the sectors the image needs were erased; the rest of the region and
            // the flash outside it are untouched.
            assert!(f[2048 + 3072..].iter().all(|b| *b == 0xAA));
            assert!(f[..2048].iter().all(|b| *b == 0xAA));
        }
        assert_eq!(f1.erases, 3);
        use sha2::Digest as _;
        assert_eq!(d1, <[u8; 32]>::from(sha2::Sha256::digest(&image)));
    }
}

#[test]
fn flash_reads_back_and_bounds_are_enforced() {
    let regions = [FlashRegion {
        id: ID,
        slot: Some(1),
        offset: 2048,
        size: 4096,
    }];
    let mut s = FlashStorage::new(
        Strict::<4> {
            mem: [0xFF; 8192],
            erases: 0,
        },
        &regions,
    );
    let t = target();
    assert_eq!(s.begin_write(&t, Some(5000)), Err(StorageError::OutOfSpace));
    s.begin_write(&t, Some(10)).unwrap();
    s.write(&t, 0, b"0123456789").unwrap();
    // Out-of-order write: refused.
    assert_eq!(s.write(&t, 3, b"x"), Err(StorageError::OutOfSpace));
    s.finish_write(&t, 10).unwrap();
    let mut buf = [0u8; 10];
    s.read(&t, 0, &mut buf).unwrap();
    assert_eq!(&buf, b"0123456789");
    assert_eq!(s.read(&t, 4090, &mut buf), Err(StorageError::OutOfBounds));
    let other = Target { slot: Some(0), ..t };
    assert_eq!(
        s.read(&other, 0, &mut buf),
        Err(StorageError::UnknownComponent)
    );
}

/// A transform sees every byte once, in order, and the digest covers its output.
#[test]
fn the_pipeline_hashes_what_the_transform_produces() {
    struct Xor(u8, usize, bool);
    impl Transform for Xor {
        fn apply(&mut self, chunk: &mut [u8]) -> Result<usize, Error> {
            for b in chunk.iter_mut() {
                *b ^= self.0;
            }
            self.1 += chunk.len();
            Ok(chunk.len())
        }
        fn finish(&mut self) -> Result<(), Error> {
            self.2 = true;
            Ok(())
        }
    }
    let plain: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
    let cipher: Vec<u8> = plain.iter().map(|b| b ^ 0x5c).collect();
    let mut buf = [0u8; 4096];
    let mut comps = [MemoryComponent {
        id: ID,
        slot: Some(1),
        data: &mut buf,
        len: 0,
    }];
    let mut s = MemoryStorage {
        components: &mut comps,
    };
    let mut x = Xor(0x5c, 0, false);
    let w = pipeline::install(
        &mut s,
        &target(),
        None,
        Source::Bytes(&cipher),
        Some(&mut x),
    )
    .unwrap();
    assert_eq!((x.1, x.2), (3000, true));
    use sha2::Digest as _;
    assert_eq!(w.digest, <[u8; 32]>::from(sha2::Sha256::digest(&plain)));
    assert_eq!(&comps[0].data[..3000], &plain[..]);
}

/// A transform that holds back the last `K` bytes it has seen (as AES-GCM holds back its
/// tag) and drops them at the end: the output, its length, the digest and the
/// image-size limit all follow what it releases, for any chunking of the source.
#[test]
fn a_transform_may_hold_bytes_back() {
    const K: usize = 16;
    struct Hold {
        held: Vec<u8>,
        finished: bool,
    }
    impl Transform for Hold {
        fn apply(&mut self, chunk: &mut [u8]) -> Result<usize, Error> {
            self.held.extend_from_slice(chunk);
            let out = self.held.len().saturating_sub(K);
            let released: Vec<u8> = self.held.drain(..out).collect();
            chunk[..out].copy_from_slice(&released);
            Ok(out)
        }
        fn finish(&mut self) -> Result<(), Error> {
            self.finished = true;
            if self.held.len() == K {
                Ok(())
            } else {
                Err(Error::DecryptionFailed)
            }
        }
    }
    use sha2::Digest as _;
    for len in [16usize, 17, 511, 512, 527, 528, 529, 1500] {
        let src: Vec<u8> = (0..len as u32).map(|i| (i * 7) as u8).collect();
        let want = &src[..len - K];
        let exact = (len - K) as u64;
        let limits = if exact > 0 {
            std::vec![None, Some(exact), Some(exact - 1)]
        } else {
            std::vec![None, Some(0)]
        };
        for limit in limits {
            let mut buf = [0u8; 2048];
            let mut comps = [MemoryComponent {
                id: ID,
                slot: Some(1),
                data: &mut buf,
                len: 0,
            }];
            let mut s = MemoryStorage {
                components: &mut comps,
            };
            let mut h = Hold {
                held: Vec::new(),
                finished: false,
            };
            let r = pipeline::install(&mut s, &target(), limit, Source::Bytes(&src), Some(&mut h));
            if limit.is_some_and(|l| l < exact) {
                assert_eq!(r, Err(Error::ImageSizeExceeded), "len {len}");
                continue;
            }
            let w = r.unwrap();
            assert!(h.finished);
            assert_eq!(w.len, want.len() as u64);
            assert_eq!(w.digest, <[u8; 32]>::from(sha2::Sha256::digest(want)));
            assert_eq!(&comps[0].data[..want.len()], want);
            assert_eq!(comps[0].len, want.len());
        }
    }
    // Shorter than what the transform holds: nothing is output and finish says no.
    let mut buf = [0u8; 64];
    let mut comps = [MemoryComponent {
        id: ID,
        slot: Some(1),
        data: &mut buf,
        len: 0,
    }];
    let mut s = MemoryStorage {
        components: &mut comps,
    };
    let mut h = Hold {
        held: Vec::new(),
        finished: false,
    };
    assert_eq!(
        pipeline::install(
            &mut s,
            &target(),
            None,
            Source::Bytes(&[1; 10]),
            Some(&mut h)
        ),
        Err(Error::DecryptionFailed)
    );
}

/// A transform that claims more output than its input is refused, not trusted.
#[test]
fn a_transform_claiming_too_much_is_refused() {
    struct Liar;
    impl Transform for Liar {
        fn apply(&mut self, chunk: &mut [u8]) -> Result<usize, Error> {
            Ok(chunk.len() + 1)
        }
        fn finish(&mut self) -> Result<(), Error> {
            Ok(())
        }
    }
    let mut buf = [0u8; 64];
    let mut comps = [MemoryComponent {
        id: ID,
        slot: Some(1),
        data: &mut buf,
        len: 0,
    }];
    let mut s = MemoryStorage {
        components: &mut comps,
    };
    assert_eq!(
        pipeline::install(
            &mut s,
            &target(),
            None,
            Source::Bytes(&[1; 10]),
            Some(&mut Liar)
        ),
        Err(Error::Storage(StorageError::OutOfBounds))
    );
}
