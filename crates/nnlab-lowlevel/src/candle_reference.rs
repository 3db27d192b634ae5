//! The reference side of the property tests: candle's own ops on the same data, and the seeded
//! random cases the hand-written functions are compared on.

use candle_core::{Device, Tensor};
use candle_nn::Module;
use ndarray::{Array, Array1, Array2, Array3, Array4, Dimension, ShapeBuilder};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::conv::ConvOptions;
use crate::pool::PoolOptions;

/// Random cases per function.
pub const CASES: usize = 50;

/// Largest difference accepted, relative to the reference value's size (absolute below 1).
const TOLERANCE: f32 = 1e-4;

/// A seeded generator, one seed per test so each test's cases stay fixed.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A size between `min` and `min + extra`.
pub fn random_size(rng: &mut ChaCha8Rng, min: usize, extra: usize) -> usize {
    rng.random_range(min..=min + extra)
}

pub fn random_bool(rng: &mut ChaCha8Rng) -> bool {
    rng.random_bool(0.5)
}

/// An array of the given shape filled with values uniform in [-1, 1).
pub fn random_array<Sh, D>(rng: &mut ChaCha8Rng, shape: Sh) -> Array<f32, D>
where
    Sh: ShapeBuilder<Dim = D>,
    D: Dimension,
{
    Array::from_shape_fn(shape, |_| rng.random_range(-1.0..1.0))
}

/// Asserts equal shapes and every value within [`TOLERANCE`] of the reference.
pub fn assert_close<D: Dimension>(ours: &Array<f32, D>, reference: &Array<f32, D>, op: &str) {
    assert_eq!(ours.shape(), reference.shape(), "{op}: shapes differ");
    for (index, (a, b)) in ours.iter().zip(reference.iter()).enumerate() {
        let allowed = TOLERANCE * b.abs().max(1.0);
        assert!((a - b).abs() <= allowed, "{op}: value {index} of shape {:?} is {a}, candle gives {b}", ours.shape());
    }
}

fn tensor<D: Dimension>(array: &Array<f32, D>) -> Tensor {
    let values: Vec<f32> = array.iter().copied().collect();
    Tensor::from_vec(values, array.shape(), &Device::Cpu).unwrap()
}

fn tensor_as_batch(stack: &Array3<f32>) -> Tensor {
    tensor(stack).unsqueeze(0).unwrap()
}

fn stack_from_batch(batch: &Tensor) -> Array3<f32> {
    let (_, maps, height, width) = batch.dims4().unwrap();
    let values = batch.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    Array3::from_shape_vec((maps, height, width), values).unwrap()
}

fn vector(tensor: &Tensor) -> Array1<f32> {
    Array1::from_vec(tensor.flatten_all().unwrap().to_vec1::<f32>().unwrap())
}

/// candle's `conv2d` on a batch of one, with the bias added per output map.
pub fn conv2d(input: &Array3<f32>, filters: &Array4<f32>, bias: Option<&Array1<f32>>, options: ConvOptions) -> Array3<f32> {
    let mut output = tensor_as_batch(input).conv2d(&tensor(filters), options.padding, options.stride, 1, 1).unwrap();
    if let Some(bias) = bias {
        let bias = tensor(bias).reshape((1, bias.len(), 1, 1)).unwrap();
        output = output.broadcast_add(&bias).unwrap();
    }
    stack_from_batch(&output)
}

pub fn relu(stack: &Array3<f32>) -> Array3<f32> {
    stack_from_batch(&tensor_as_batch(stack).relu().unwrap())
}

pub fn max_pool2d(stack: &Array3<f32>, options: PoolOptions) -> Array3<f32> {
    let pooled = tensor_as_batch(stack).max_pool2d_with_stride(options.extent, options.stride).unwrap();
    stack_from_batch(&pooled)
}

/// Per-map normalisation from candle's reductions: (x − mean) / sqrt(mean((x − mean)²)).
pub fn normalise_maps(stack: &Array3<f32>) -> Array3<f32> {
    let (maps, height, width) = stack.dim();
    let flat = tensor(stack).reshape((maps, height * width)).unwrap();
    let centred = flat.broadcast_sub(&flat.mean_keepdim(1).unwrap()).unwrap();
    let std = centred.sqr().unwrap().mean_keepdim(1).unwrap().sqrt().unwrap();
    let normalised = centred.broadcast_div(&std).unwrap();
    stack_from_batch(&normalised.reshape((1, maps, height, width)).unwrap())
}

/// candle_nn's `Linear` on the flattened stack as a batch of one.
pub fn linear(stack: &Array3<f32>, weights: &Array2<f32>, bias: &Array1<f32>) -> Array1<f32> {
    let layer = candle_nn::Linear::new(tensor(weights), Some(tensor(bias)));
    let input = tensor(stack).reshape((1, stack.len())).unwrap();
    vector(&layer.forward(&input).unwrap())
}

pub fn softmax(values: &Array1<f32>) -> Array1<f32> {
    vector(&candle_nn::ops::softmax_last_dim(&tensor(values)).unwrap())
}
