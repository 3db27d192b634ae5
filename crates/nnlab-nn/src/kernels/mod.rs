//! CPU kernels for the layers where candle's own CPU path is slow, as candle custom ops with their
//! own backward passes: stride-1 2-D convolution (im2col + gemm) fused with its bias and
//! activation, 2-D max-pooling, the two fused where a convolution is followed by a pooling, a
//! dense layer's affine map, binary cross-entropy from the logits, and the L2 weight penalty.
//!
//! Each public entry point falls back to candle's op on other devices and dtypes, so the `cuda`
//! feature keeps working. Every kernel is deterministic: work is split over batch items (or fixed
//! chunks of them) and partial sums are added in a fixed order, so results do not depend on how
//! rayon schedules the work.

pub mod activation;
pub mod bce;
pub mod conv;
pub mod conv_pool;
pub mod dense;
mod gemm;
mod im2col;
pub mod l2;
pub mod pool;
mod pooled_backward;

use std::cell::RefCell;

use candle_core::{bail, CpuStorage, Layout, Result, Storage, Tensor};

/// The f32 elements of a contiguous tensor. The public entry points make their inputs contiguous
/// before applying an op, so a strided layout here is a bug, reported rather than misread.
fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("{what}: expected a contiguous tensor, got strides {:?}", layout.stride()),
    }
}

/// Runs `f` on the f32 elements of CPU tensors, read in place: a backward pass that computes
/// several gradients in one sweep reads its inputs here rather than through one op per gradient.
fn with_host_f32<R, const N: usize>(tensors: [&Tensor; N], f: impl FnOnce([&[f32]; N]) -> Result<R>) -> Result<R> {
    let guards = tensors.map(|t| t.storage_and_layout());
    let mut slices: [&[f32]; N] = [&[]; N];
    for (slice, (storage, layout)) in slices.iter_mut().zip(&guards) {
        let Storage::Cpu(storage) = &**storage else { bail!("a CPU tensor expected") };
        *slice = contiguous_f32(storage, layout, "kernel operand")?;
    }
    f(slices)
}

/// Batch items per parallel task: a few tasks per thread, so that a busy core does not hold up the
/// others, while per-task scratch buffers stay few.
fn items_per_task(batch: usize) -> usize {
    batch.div_ceil(4 * rayon::current_num_threads()).max(1)
}

/// Runs `f` on `len` f32s of scratch space (holding whatever the last user left there) owned by the
/// calling thread and kept between calls. A fresh buffer of this size would be mapped and
/// page-faulted anew by the allocator on every call, which costs more than filling it.
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    thread_local! {
        static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut buffer) => {
            if buffer.len() < len {
                buffer.resize(len, 0.0);
            }
            f(&mut buffer[..len])
        }
        // Only a kernel nested inside another on the same thread gets here.
        Err(_) => f(&mut vec![0.0; len]),
    })
}
