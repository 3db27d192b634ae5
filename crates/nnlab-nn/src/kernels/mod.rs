//! CPU kernels for the layers where candle's own CPU path is slow, as candle custom ops with their
//! own backward passes: stride-1 2-D convolution (im2col + gemm) and 2-D max-pooling.
//!
//! Each public entry point falls back to candle's op on other devices and dtypes, so the `cuda`
//! feature keeps working. Every kernel is deterministic: work is split over batch items (or fixed
//! chunks of them) and partial sums are added in a fixed order, so results do not depend on how
//! rayon schedules the work.

pub mod conv;
mod gemm;
mod im2col;


use candle_core::{bail, CpuStorage, Layout, Result};

/// The f32 elements of a contiguous tensor. The public entry points make their inputs contiguous
/// before applying an op, so a strided layout here is a bug, reported rather than misread.
fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("{what}: expected a contiguous tensor, got strides {:?}", layout.stride()),
    }
}

/// Batch items per parallel task: a few tasks per thread, so that a busy core does not hold up the
/// others, while per-task scratch buffers stay few.
fn items_per_task(batch: usize) -> usize {
    batch.div_ceil(4 * rayon::current_num_threads()).max(1)
}
