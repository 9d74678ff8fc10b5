//! Peak stack by painting: [`paint`] fills the free stack below the caller with a pattern,
//! [`peak`] finds the lowest word that changed. Stack reserved but never written is not
//! seen; the figure is from the top of the stack (`_stack_start`, the reset value of MSP).

/// Paint; any value a program is unlikely to store.
const PAINT: u32 = 0xDEAD_C0DE;
/// How far below the caller the paint reaches (more than either image uses: the
/// migration build's HSS-LMS verification alone takes about 45 KB).
const REACH: usize = 128 * 1024;
/// Left unpainted below the painter's own stack pointer.
const GUARD: usize = 64;

unsafe extern "C" {
    /// The top of the stack (cortex-m-rt's `link.x`).
    static _stack_start: u32;
    /// The lowest address the stack may reach, just above `.bss`/`.uninit`.
    static _stack_end: u32;
}

/// The painted range, for [`peak`].
#[derive(Clone, Copy, Debug)]
pub struct Painted {
    bottom: usize,
    top: usize,
}

/// Paints from [`REACH`] below the stack pointer (or the end of the static data, if
/// higher) to just below it.
#[inline(never)]
pub fn paint() -> Painted {
    let sp = cortex_m::register::msp::read() as usize;
    let top = (sp - GUARD) & !3;
    let floor = (&raw const _stack_end) as usize;
    let bottom = top.saturating_sub(REACH).max(floor);
    let mut at = bottom;
    while at < top {
        // SAFETY: `bottom..top` is free stack below the current frame (and the guard):
        // nothing live is stored there, and it is mapped SRAM.
        unsafe { core::ptr::write_volatile(at as *mut u32, PAINT) };
        at += 4;
    }
    Painted { bottom, top }
}

/// Bytes of stack in use now: from `_stack_start` down to the stack pointer (to subtract
/// from a [`peak`] taken around one call).
#[inline(always)]
pub fn depth() -> usize {
    let sp = cortex_m::register::msp::read() as usize;
    ((&raw const _stack_start) as usize).saturating_sub(sp)
}

/// Bytes of stack used since [`paint`]: from `_stack_start` down to the lowest changed
/// word.
pub fn peak(p: Painted) -> usize {
    let mut at = p.bottom;
    // SAFETY: reads of the range `paint` wrote, mapped SRAM.
    while at < p.top && unsafe { core::ptr::read_volatile(at as *const u32) } == PAINT {
        at += 4;
    }
    ((&raw const _stack_start) as usize).saturating_sub(at)
}
