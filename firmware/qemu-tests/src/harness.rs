//! The test runner: a table of `fn() -> Outcome`, with instruction counting
//! and stack painting around each call.
//!
//! **Instructions.** QEMU models no cycle counter (DWT.CYCCNT reads 0). Under
//! `-icount shift=0` every guest instruction advances virtual time by exactly
//! 1 ns, and the MPS2 SysTick runs from the 25 MHz system clock, so one tick
//! is 40 instructions. The counts are therefore exact to within 40
//! instructions and repeatable, but they are instructions, not cycles: real
//! silicon adds wait states, pipeline refills and multi-cycle multiplies.
//! Without `-icount` the counts follow host time and mean nothing; the
//! `harness::icount_calibration` test catches that.
//!
//! **Stack.** Before each test, every word between the end of `.bss`
//! (`_stack_end`) and just below the runner's stack pointer is painted with a
//! pattern; afterwards the lowest overwritten word gives the deepest point
//! the test reached. Stack that a test reserves but never writes is not seen.

use core::ptr;

use cortex_m::peripheral::{SYST, syst::SystClkSource};
use cortex_m_semihosting::{hprint, hprintln};

/// What a test returns: `Err` carries a one-line reason.
pub type Outcome = Result<(), &'static str>;

/// One on-target test: a name and a function.
pub struct Test {
    /// Printed on the test's line, `module::function`.
    pub name: &'static str,
    /// The test itself; it must not rely on state left by another test.
    pub run: fn() -> Outcome,
}

/// Pass/fail counts of a whole run.
pub struct Summary {
    /// Tests that returned `Ok`.
    pub passed: u32,
    /// Tests that returned `Err` or whose measurement overflowed.
    pub failed: u32,
}

/// Guest instructions per SysTick tick: 25 MHz SysTick clock, 1 ns per
/// instruction under `-icount shift=0`.
pub const INSTRUCTIONS_PER_TICK: u64 = 40;
/// SysTick reload: the full 24 bits, ~671 M instructions before a wrap.
const RELOAD: u32 = 0x00FF_FFFF;
/// Stack paint; any value a test is unlikely to store.
const PAINT: u32 = 0xDEAD_C0DE;
/// Bytes left unpainted below the painter's own stack pointer.
const GUARD: usize = 64;

unsafe extern "C" {
    /// Lowest address of the stack region, just above `.bss`/`.uninit`
    /// (cortex-m-rt's `link.x`).
    static _stack_end: u32;
}

/// Runs every test in `tests`, printing one line each.
pub fn run_all(tests: &[Test], syst: &mut SYST) -> Summary {
    syst.disable_interrupt();
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD);
    syst.clear_current();
    syst.enable_counter();

    let mut summary = Summary {
        passed: 0,
        failed: 0,
    };
    for test in tests {
        hprint!("test {} ... ", test.name);
        let m = measure(test, syst);
        let result = if m.wrapped {
            Err("instruction counter wrapped (> 671 M instructions)")
        } else {
            m.outcome
        };
        match result {
            Ok(()) => {
                summary.passed += 1;
                hprintln!("ok ({} instr, {} B stack)", m.instructions, m.stack);
            }
            Err(why) => {
                summary.failed += 1;
                hprintln!(
                    "FAILED: {} ({} instr, {} B stack)",
                    why,
                    m.instructions,
                    m.stack
                );
            }
        }
    }
    summary
}

/// What one test run gave.
struct Measurement {
    outcome: Outcome,
    instructions: u64,
    wrapped: bool,
    stack: usize,
}

#[inline(never)]
fn measure(test: &Test, syst: &mut SYST) -> Measurement {
    let bottom = stack_bottom();
    let top = paint(bottom);
    let base = cortex_m::register::msp::read() as usize;
    let run = core::hint::black_box(test.run);

    syst.clear_current();
    // The write above makes the counter reload on the next tick; wait for it
    // so that `start` is read from a counter already counting down.
    while SYST::get_current() == 0 {}
    let _ = syst.has_wrapped(); // reading COUNTFLAG clears it
    let start = SYST::get_current();
    let outcome = run();
    let end = SYST::get_current();
    let wrapped = syst.has_wrapped();

    let low = lowest_dirty(bottom, top);
    Measurement {
        outcome,
        instructions: u64::from(start.wrapping_sub(end)) * INSTRUCTIONS_PER_TICK,
        wrapped,
        stack: base.saturating_sub(low),
    }
}

fn stack_bottom() -> usize {
    ptr::addr_of!(_stack_end) as usize
}

/// Paints `[bottom, SP - GUARD)` and returns the top of the painted range.
#[inline(never)]
fn paint(bottom: usize) -> usize {
    let top = (cortex_m::register::msp::read() as usize).saturating_sub(GUARD) & !3;
    let mut p = bottom;
    while p < top {
        // SAFETY: `p` is word-aligned and lies between the end of `.bss`
        // (`_stack_end`, where cortex-m-rt's stack region begins) and below
        // this function's own stack pointer. No Rust object lives there:
        // Cortex-M has no red zone and this program runs no interrupt
        // handlers, so nothing is stored below the stack pointer.
        unsafe { ptr::write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
    top
}

/// The lowest address in `[bottom, top)` whose word no longer holds the paint.
#[inline(never)]
fn lowest_dirty(bottom: usize, top: usize) -> usize {
    let mut p = bottom;
    // SAFETY: the same range `paint` wrote; reading it aliases nothing live
    // except frames of functions that have already returned.
    while p < top && unsafe { ptr::read_volatile(p as *const u32) } == PAINT {
        p += 4;
    }
    p
}

/// Ends the QEMU run with `status` as its exit status.
///
/// `SYS_EXIT_EXTENDED` (0x20) carries any status, where `SYS_EXIT` (what
/// `cortex_m_semihosting::debug::exit` uses) can only say 0 or 1.
pub fn exit(status: u32) -> ! {
    /// ADP_Stopped_ApplicationExit.
    const APPLICATION_EXIT: usize = 0x2_0026;
    /// SYS_EXIT_EXTENDED; not in `cortex_m_semihosting::nr`.
    const EXIT_EXTENDED: usize = 0x20;
    let block = [APPLICATION_EXIT, status as usize];
    // SAFETY: a valid semihosting operation with its two-word parameter block.
    unsafe { cortex_m_semihosting::syscall(EXIT_EXTENDED, &block) };
    // Only reached when semihosting is off: spin until the host's timeout.
    loop {
        cortex_m::asm::wfi();
    }
}

/// Checks the instruction counter against a loop of known length: fails when
/// QEMU runs without `-icount shift=0`, where counts follow host time.
pub fn icount_calibration() -> Outcome {
    const ITERATIONS: u32 = 1_000_000;
    // Two instructions per iteration (subs, bne).
    const EXPECTED: u64 = 2 * ITERATIONS as u64;
    let start = SYST::get_current();
    // SAFETY: a register-only loop; it touches no memory and no stack.
    unsafe {
        core::arch::asm!(
            "2:",
            "subs {n}, {n}, #1",
            "bne 2b",
            n = inout(reg) ITERATIONS => _,
            options(nomem, nostack),
        );
    }
    let end = SYST::get_current();
    let measured = u64::from(start.wrapping_sub(end)) * INSTRUCTIONS_PER_TICK;
    // One tick of slack each side, plus the reads themselves.
    if measured.abs_diff(EXPECTED) <= 2 * INSTRUCTIONS_PER_TICK {
        Ok(())
    } else {
        Err(
            "SysTick does not count 40 instructions per tick: is QEMU running with -icount shift=0?",
        )
    }
}
