//! The building blocks of a convolutional network written by hand on plain arrays (assignment a1,
//! exercise 3): convolution, ReLU, max pooling, per-map normalisation, a dense layer and softmax.
//!
//! Every function works on `f32` arrays from `ndarray` and uses nothing but loops and arithmetic,
//! so each step can be read and checked on its own. Stacks of feature maps are laid out
//! channels-first, C × H × W; filter banks are F × C × kh × kw. A bad shape is a
//! [`LowLevelError`] whose one-line message names the function and the shapes involved; no
//! function panics on its input.
//!
//! [`worked_example`] runs all of them, in order, on a small test image and keeps every
//! intermediate result for the a1 report.

mod activation;
mod conv;
mod dense;
mod error;
mod normalise;
mod pool;
pub mod printing;
mod worked_example;

pub use activation::{relu, softmax};
pub use conv::{as_stack, conv2d, ConvOptions};
pub use dense::{flatten, Dense};
pub use error::LowLevelError;
pub use normalise::normalise_maps;
pub use pool::{max_pool2d, PoolOptions};
pub use worked_example::{
    worked_example, ConvStep, DenseStep, MapStats, NormaliseStep, PoolStep, ReluStep, SoftmaxStep, StabilityCase, WorkedExample,
};

#[cfg(test)]
mod candle_reference;
