//! The semihosting calls the images use: host files, the command line, console output,
//! exit. Each is one trap (`bkpt 0xab`) that QEMU serves on the host; QEMU does the
//! whole call before the guest runs its next instruction, so a power cut
//! ([`crate::power`]) falls between calls, never inside one.

use cortex_m_semihosting::syscall1;

const SYS_OPEN: usize = 0x01;
const SYS_CLOSE: usize = 0x02;
const SYS_WRITE: usize = 0x05;
const SYS_READ: usize = 0x06;
const SYS_SEEK: usize = 0x0A;
const SYS_FLEN: usize = 0x0C;
const SYS_GET_CMDLINE: usize = 0x15;
const SYS_EXIT_EXTENDED: usize = 0x20;
/// Open modes (ISO C `fopen` strings as semihosting numbers).
const MODE_RB: usize = 1;
const MODE_RPLUSB: usize = 3;
const MODE_W: usize = 4;

/// One semihosting call with a mutable parameter block: QEMU may write into the block
/// (SYS_GET_CMDLINE writes back the length), so it must not be a shared reference that
/// the optimiser may assume unchanged.
fn call(nr: usize, block: &mut [usize]) -> usize {
    // SAFETY: `nr` is one of the operations above and `block` is its parameter block,
    // valid and writable for the duration of the trap; every pointer inside it points
    // at memory the caller lent for the call.
    unsafe { syscall1(nr, block.as_mut_ptr() as usize) }
}

/// An open host file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct File(usize);

/// Longest path [`File::open`] takes.
const PATH_MAX: usize = 200;

impl File {
    fn open_mode(path: &[u8], mode: usize) -> Option<File> {
        // The host wants a NUL-terminated name.
        let mut name = [0u8; PATH_MAX + 1];
        name.get_mut(..path.len())?.copy_from_slice(path);
        let mut block = [name.as_ptr() as usize, mode, path.len()];
        let fd = call(SYS_OPEN, &mut block);
        (fd != usize::MAX).then_some(File(fd))
    }

    /// Opens an existing file for reading.
    pub fn open_read(path: &[u8]) -> Option<File> {
        Self::open_mode(path, MODE_RB)
    }

    /// Opens an existing file for reading and writing (`r+b`: not truncated).
    pub fn open_rw(path: &[u8]) -> Option<File> {
        Self::open_mode(path, MODE_RPLUSB)
    }

    /// Moves the file position to `pos`.
    pub fn seek(self, pos: usize) -> bool {
        call(SYS_SEEK, &mut [self.0, pos]) == 0
    }

    /// Writes `bytes` at the file position, in one call: all or, on a host error, an
    /// unknown prefix.
    pub fn write(self, bytes: &[u8]) -> bool {
        call(
            SYS_WRITE,
            &mut [self.0, bytes.as_ptr() as usize, bytes.len()],
        ) == 0
    }

    /// Reads up to `buf.len()` bytes; how many it read.
    pub fn read(self, buf: &mut [u8]) -> Option<usize> {
        let left = call(
            SYS_READ,
            &mut [self.0, buf.as_mut_ptr() as usize, buf.len()],
        );
        buf.len().checked_sub(left)
    }

    /// The file's length.
    pub fn len(self) -> Option<usize> {
        let n = call(SYS_FLEN, &mut [self.0]);
        (n != usize::MAX).then_some(n)
    }

    /// Closes the file.
    pub fn close(self) {
        call(SYS_CLOSE, &mut [self.0]);
    }
}

/// The console: QEMU's stdout (`:tt` opened for writing).
pub fn print(bytes: &[u8]) {
    if let Some(tt) = File::open_mode(b":tt", MODE_W) {
        tt.write(bytes);
        tt.close();
    }
}

/// `n` in decimal, into `buf`; the digits.
pub fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        if let Some(d) = buf.get_mut(at) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || at == 0 {
            break;
        }
    }
    buf.get(at..).unwrap_or(&[])
}

/// Prints `parts` (strings) and numbers as one line.
pub fn line(parts: &[Part<'_>]) {
    let mut out = [0u8; 256];
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        for &b in bytes {
            if let Some(slot) = out.get_mut(at) {
                *slot = b;
                at += 1;
            }
        }
    };
    for part in parts {
        match part {
            Part::S(s) => put(s.as_bytes()),
            Part::B(b) => put(b),
            Part::N(n) => put(decimal(*n, &mut [0; 20])),
        }
    }
    put(b"\n");
    print(out.get(..at).unwrap_or(&[]));
}

/// A piece of a [`line`].
pub enum Part<'a> {
    /// Text.
    S(&'a str),
    /// Bytes (printed as they are).
    B(&'a [u8]),
    /// A number, in decimal.
    N(u64),
}

/// Exits QEMU with `status` (SYS_EXIT_EXTENDED: any status, not only 0/1). Nothing is
/// flushed or closed: every flash write already reached the host file.
pub fn exit(status: u32) -> ! {
    /// ADP_Stopped_ApplicationExit.
    const APPLICATION_EXIT: usize = 0x2_0026;
    call(SYS_EXIT_EXTENDED, &mut [APPLICATION_EXIT, status as usize]);
    // Only reached when semihosting is off: spin until the host's timeout.
    loop {
        cortex_m::asm::wfi();
    }
}

/// The command line QEMU was given (`-semihosting-config ...,arg=a,arg=b`: `"a b"`), as
/// `key=value` words.
pub struct Cmdline {
    buf: [u8; 512],
    len: usize,
}

impl Cmdline {
    /// Asks the host; an empty line if it has none.
    pub fn get() -> Cmdline {
        let mut c = Cmdline {
            buf: [0; 512],
            len: 0,
        };
        let mut block = [c.buf.as_mut_ptr() as usize, c.buf.len()];
        if call(SYS_GET_CMDLINE, &mut block) == 0 {
            // The host wrote back the length (without the NUL).
            c.len = block[1].min(c.buf.len());
        }
        c
    }

    /// The value of `key=value`, if present.
    pub fn value(&self, key: &[u8]) -> Option<&[u8]> {
        self.buf
            .get(..self.len)?
            .split(|&b| b == b' ')
            .find_map(|word| {
                let rest = word.strip_prefix(key)?;
                rest.strip_prefix(b"=")
            })
    }

    /// The value of `key=<decimal>`, if present and a number.
    pub fn number(&self, key: &[u8]) -> Option<u64> {
        let v = self.value(key)?;
        if v.is_empty() {
            return None;
        }
        v.iter().try_fold(0u64, |acc, &d| {
            let d = d.checked_sub(b'0').filter(|d| *d < 10)?;
            acc.checked_mul(10)?.checked_add(u64::from(d))
        })
    }
}
