//! The deterministic power cut.
//!
//! Under `-icount shift=0` every guest instruction advances QEMU's virtual clock by
//! exactly 1 ns, and the MPS2 SysTick (25 MHz) ticks once per 40 instructions. The
//! bootloader reads `cut=<ticks>` from the command line, then calls [`arm`] before it
//! touches the flash: with `cut=0` SysTick free-runs with the full 24-bit reload (so
//! [`ticks`] reads elapsed time, up to 671 M instructions); with `cut=T` it interrupts
//! after exactly `T` ticks, and the `SysTick` handler of whichever image is running then
//! (the bootloader, or the application it jumped to: the timer keeps counting across the
//! jump, and the application never touches it) calls [`cut`], which ends QEMU at once.
//! Both modes run the same instructions up to the cut, so the tick stamps a clean run
//! prints ([`crate::flash::HostFlash::window`]) say where a cut will land.

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;

/// QEMU's exit status after a cut.
pub const CUT_STATUS: u32 = 98;
/// Guest instructions per SysTick tick under `-icount shift=0`.
pub const INSTRUCTIONS_PER_TICK: u32 = 40;
const FULL: u32 = 0x00FF_FFFF;

/// Starts the clock: free-running (`cut_ticks == 0`, or out of range) or a cut after
/// `cut_ticks` ticks.
pub fn arm(syst: &mut SYST, cut_ticks: u64) {
    let cut = u32::try_from(cut_ticks)
        .ok()
        .filter(|t| (1..=FULL).contains(t));
    // Same register writes in both modes; only the values differ.
    let (reload, interrupt) = match cut {
        Some(t) => (t - 1, true),
        None => (FULL, false),
    };
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(reload);
    syst.clear_current();
    if interrupt {
        syst.enable_interrupt();
    } else {
        syst.disable_interrupt();
    }
    syst.enable_counter();
}

/// Ticks since [`arm`] in free-running mode (with a cut armed the value means nothing: the
/// counter runs down from the cut, not from the full reload).
pub fn ticks() -> u32 {
    FULL - SYST::get_current()
}

/// The power cut: QEMU exits with [`CUT_STATUS`]. Nothing is written or flushed: the
/// flash file holds exactly the semihosting writes that completed.
pub fn cut() -> ! {
    crate::host::exit(CUT_STATUS)
}
