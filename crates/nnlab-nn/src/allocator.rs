//! The process allocator's settings for training.
//!
//! Every training step allocates and frees the same large activation and gradient buffers (19 MB
//! for `a1.cnn`'s second convolution at batch 128). glibc serves blocks that large with `mmap` and
//! returns them with `munmap`, so each step page-faults its buffers in afresh and flushes TLBs on
//! every core; measured on `a1.cnn`, that kernel work took a fifth of a step. Keeping freed memory
//! in the heap lets the next step reuse it.

/// Serve blocks up to glibc's largest mmap threshold (32 MiB) from the heap and never trim freed
/// memory back to the system. Call once, at start-up, before the threads that train exist.
/// Elsewhere than glibc, a no-op.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // glibc rejects thresholds above HEAP_MAX_SIZE / 2, 32 MiB on 64-bit targets.
        const LARGEST_MMAP_THRESHOLD: libc::c_int = 32 * 1024 * 1024;
        // SAFETY: mallopt only sets allocator parameters; it is called before any other thread
        // exists, and a rejected value (return 0) leaves glibc's defaults in place.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, LARGEST_MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
        }
    }
}
