//! The hand-written convolution against candle's at about the size of a1.cnn's second layer
//! (which sees 32 × 26 × 26): a 32 × 28 × 28 input and 64 filters of 3 × 3, valid, stride 1.
//! Prints a Markdown row and a CSV line with the median time of each, after one warm-up call.
//!
//! The hand-written loop runs on one core and visits every product one by one; candle lowers
//! the convolution to matrix products (im2col + gemm) spread over its threads, so a large ratio
//! is expected. The thread count is printed beside the table for that reason.
//!
//! `cargo run --example conv_bench -p nnlab-lowlevel`

use std::time::Instant;

use candle_core::{Device, Tensor};
use ndarray::{Array3, Array4};
use nnlab_lowlevel::{conv2d, ConvOptions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const RUNS: usize = 7;

/// Median wall time of `RUNS` calls after one warm-up call, in milliseconds.
fn median_ms(mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[RUNS / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (channels, side, filters, k) = (32, 28, 64, 3);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let input: Vec<f32> = (0..channels * side * side).map(|_| rng.random_range(-1.0..1.0)).collect();
    let kernel: Vec<f32> = (0..filters * channels * k * k).map(|_| rng.random_range(-1.0..1.0)).collect();

    let input_array = Array3::from_shape_vec((channels, side, side), input.clone())?;
    let kernel_array = Array4::from_shape_vec((filters, channels, k, k), kernel.clone())?;
    let input_tensor = Tensor::from_vec(input, (1, channels, side, side), &Device::Cpu)?;
    let kernel_tensor = Tensor::from_vec(kernel, (filters, channels, k, k), &Device::Cpu)?;

    let hand = median_ms(|| {
        conv2d(&input_array, &kernel_array, None, ConvOptions::default()).expect("valid shapes");
    });
    let candle = median_ms(|| {
        input_tensor.conv2d(&kernel_tensor, 0, 1, 1, 1).expect("valid shapes");
    });
    let shape = format!("{channels}×{side}×{side} * {filters}×{channels}×{k}×{k}");
    let ratio = hand / candle;
    println!(
        "conv2d, hand-written (1 thread) vs candle ({} threads), median of {RUNS} runs:",
        candle_core::utils::get_num_threads()
    );
    println!();
    println!("| op | shape | hand-written ms | candle ms | hand-written / candle |");
    println!("|---|---|---:|---:|---:|");
    println!("| conv2d | {shape} | {hand:.2} | {candle:.2} | {ratio:.1}× |");
    println!();
    println!("op,shape,hand_written_ms,candle_ms,ratio");
    println!("conv2d,{shape},{hand:.3},{candle:.3},{ratio:.2}");
    Ok(())
}
