//! On-target tests of the suitcase device crates.
//!
//! A `no_std`, `no_main` image for the Arm MPS2 AN386 board (Cortex-M4F) as
//! QEMU models it. It runs every test in [`tests::ALL`], printing one line per
//! test over semihosting with the instructions it executed and the stack it
//! used, then `N passed, M failed`, and exits through `SYS_EXIT_EXTENDED`
//! with status 0 only when every test passed. See `firmware/README.md`.

#![no_std]
#![no_main]

mod harness;
mod statics;
mod tests;
mod vectors;

use cortex_m_rt::{ExceptionFrame, entry, exception};
use cortex_m_semihosting::hprintln;

/// Exit status of a panic (a failed test that could not return `Err`).
const EXIT_PANIC: u32 = 101;
/// Exit status of a HardFault (bad memory access, stack overflow into .bss, ...).
const EXIT_HARDFAULT: u32 = 102;

#[entry]
fn main() -> ! {
    let Some(mut core) = cortex_m::Peripherals::take() else {
        harness::exit(EXIT_PANIC)
    };
    hprintln!(
        "running {} tests on mps2-an386 (Cortex-M4F)",
        tests::ALL.len()
    );
    let summary = harness::run_all(tests::ALL, &mut core.SYST);
    hprintln!("{} passed, {} failed", summary.passed, summary.failed);
    harness::exit(u32::from(summary.failed != 0))
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    hprintln!("\npanicked: {}", info);
    harness::exit(EXIT_PANIC)
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    hprintln!("\nHardFault at pc={:#010x}", frame.pc());
    harness::exit(EXIT_HARDFAULT)
}
