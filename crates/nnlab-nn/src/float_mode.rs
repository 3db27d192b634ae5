//! Subnormal floats flushed to zero, as TensorFlow's CPU thread pools run.
//!
//! A weight that decays towards zero under a strong L2 penalty (or a unit that stopped learning)
//! passes through the subnormal range, where x86 arithmetic takes a slow microcode path: measured
//! here, a7b's dense network with L2 0.1 ended with a third of its weights subnormal and trained
//! 10× slower per epoch than with L2 0.01. TensorFlow sets flush-to-zero and denormals-are-zero on
//! its compute threads, so Keras never sees such values; with this mode set, nnlab does not either.

/// Sets flush-to-zero and denormals-are-zero for the calling thread's floating-point unit (x86-64:
/// MXCSR bits 15 and 6; AArch64: FPCR.FZ). Elsewhere it does nothing.
pub fn flush_subnormals_on_this_thread() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reads and writes the thread's own MXCSR register; only the two flush bits change.
    unsafe {
        let mut csr: u32 = 0;
        core::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack));
        csr |= (1 << 15) | (1 << 6);
        core::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack));
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: reads and writes the thread's own FPCR; only the flush-to-zero bit changes.
    unsafe {
        let mut fpcr: u64;
        core::arch::asm!("mrs {}, fpcr", out(reg) fpcr, options(nomem, nostack));
        fpcr |= 1 << 24;
        core::arch::asm!("msr fpcr, {}", in(reg) fpcr, options(nomem, nostack));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnormal_results_become_zero_on_a_flushing_thread() {
        let result = std::thread::spawn(|| {
            let tiny = std::hint::black_box(1.0e-30f32);
            let before = std::hint::black_box(tiny) * std::hint::black_box(1.0e-10f32);
            flush_subnormals_on_this_thread();
            let after = std::hint::black_box(tiny) * std::hint::black_box(1.0e-10f32);
            (before, after)
        })
        .join()
        .unwrap();
        assert!(result.0 > 0.0 && result.0.is_subnormal(), "without the mode the product is subnormal: {}", result.0);
        if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
            assert_eq!(result.1, 0.0);
        }
    }
}
