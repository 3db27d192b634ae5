//! A fully-connected (dense) layer: every input value is linked to every output node.

use ndarray::{Array1, Array2, Array3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::LowLevelError;
use crate::printing::shape_text;

const FUNCTION: &str = "dense";

/// Flattens a stack (C × H × W) into one vector of C·H·W values, map after map and, within a
/// map, row after row (channels-first, row-major order).
pub fn flatten(stack: &Array3<f32>) -> Array1<f32> {
    stack.iter().copied().collect()
}

/// A dense layer with n outputs: y = W·x + b, where x is the flattened input.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    /// One row per output node, one column per input value (n outputs × inputs), the layout of
    /// candle's `Linear`.
    weights: Array2<f32>,
    /// One value per output node.
    bias: Array1<f32>,
}

impl Dense {
    /// A layer with the given weights (outputs × inputs) and bias (outputs).
    ///
    /// # Errors
    /// The bias does not have one value per row of `weights`.
    pub fn new(weights: Array2<f32>, bias: Array1<f32>) -> Result<Self, LowLevelError> {
        if bias.len() != weights.nrows() {
            return Err(LowLevelError::LengthMismatch {
                function: FUNCTION,
                what: "the bias",
                found: bias.len(),
                expected: weights.nrows(),
                context: format!("weights {} (outputs × inputs)", shape_text(weights.shape())),
            });
        }
        Ok(Self { weights, bias })
    }

    /// A layer initialised as Keras' `Dense` is: Glorot-uniform weights, drawn uniformly from
    /// ±√(6 / (inputs + outputs)), and a zero bias. The weights come from a ChaCha8 generator
    /// seeded with `seed`, row by row, so a seed always gives the same layer.
    ///
    /// # Errors
    /// `inputs` or `outputs` is 0.
    pub fn glorot_uniform(inputs: usize, outputs: usize, seed: u64) -> Result<Self, LowLevelError> {
        if inputs == 0 || outputs == 0 {
            return Err(LowLevelError::ZeroParameter { function: FUNCTION, parameter: "the number of inputs and of outputs" });
        }
        let limit = glorot_limit(inputs, outputs);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let weights = Array2::from_shape_fn((outputs, inputs), |_| rng.random_range(-limit..limit));
        Self::new(weights, Array1::zeros(outputs))
    }

    /// The weights, outputs × inputs.
    pub fn weights(&self) -> &Array2<f32> {
        &self.weights
    }

    /// The bias, one value per output.
    pub fn bias(&self) -> &Array1<f32> {
        &self.bias
    }

    /// Flattens `stack` (see [`flatten`]) and maps it to the layer's outputs: output i is
    /// `bias[i] + Σⱼ weights[i, j] · x[j]`.
    ///
    /// # Errors
    /// The stack does not hold as many values as the layer has inputs.
    pub fn forward(&self, stack: &Array3<f32>) -> Result<Array1<f32>, LowLevelError> {
        let inputs = flatten(stack);
        if inputs.len() != self.weights.ncols() {
            return Err(LowLevelError::LengthMismatch {
                function: FUNCTION,
                what: "the flattened input",
                found: inputs.len(),
                expected: self.weights.ncols(),
                context: format!(
                    "weights {} (outputs × inputs); the input stack is {}",
                    shape_text(self.weights.shape()),
                    shape_text(stack.shape())
                ),
            });
        }
        let outputs = self
            .weights
            .outer_iter()
            .zip(self.bias.iter())
            .map(|(row, &bias)| {
                let weighted: f32 = row.iter().zip(inputs.iter()).map(|(w, x)| w * x).sum();
                bias + weighted
            })
            .collect();
        Ok(outputs)
    }
}

/// The bound of Glorot-uniform weights for a layer of this size.
pub(crate) fn glorot_limit(inputs: usize, outputs: usize) -> f32 {
    (6.0 / (inputs + outputs) as f32).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::candle_reference::{self, assert_close, random_array, random_bool, random_size};
    use ndarray::array;
    use rand::Rng;

    #[test]
    fn flattens_channels_first_then_rows() {
        let stack = Array3::from_shape_fn((2, 2, 2), |(c, r, col)| (c * 100 + r * 10 + col) as f32);
        assert_eq!(flatten(&stack), array![0.0, 1.0, 10.0, 11.0, 100.0, 101.0, 110.0, 111.0]);
    }

    #[test]
    fn computes_weights_times_input_plus_bias() {
        let layer = Dense::new(array![[1.0, 0.0, 2.0], [0.0, -1.0, 0.0]], array![0.5, 1.0]).unwrap();
        let output = layer.forward(&array![[[1.0, 2.0, 3.0]]]).unwrap();
        assert_eq!(output, array![7.5, -1.0]);
    }

    #[test]
    fn glorot_weights_are_seeded_and_bounded() {
        let layer = Dense::glorot_uniform(32, 10, 7).unwrap();
        assert_eq!(layer, Dense::glorot_uniform(32, 10, 7).unwrap());
        assert_ne!(layer, Dense::glorot_uniform(32, 10, 8).unwrap());
        let limit = glorot_limit(32, 10);
        assert!(layer.weights().iter().all(|w| w.abs() <= limit));
        assert_eq!(layer.weights().dim(), (10, 32));
        assert_eq!(layer.bias(), &Array1::<f32>::zeros(10));
    }

    #[test]
    fn wrong_sizes_are_errors() {
        assert_eq!(
            Dense::new(Array2::zeros((3, 4)), Array1::zeros(2)).unwrap_err().to_string(),
            "dense: the bias has 2 values but 3 are needed for weights 3 × 4 (outputs × inputs)"
        );
        let layer = Dense::glorot_uniform(8, 3, 1).unwrap();
        assert_eq!(
            layer.forward(&Array3::zeros((2, 3, 3))).unwrap_err().to_string(),
            "dense: the flattened input has 18 values but 8 are needed for weights 3 × 8 (outputs × inputs); the input stack is 2 × 3 × 3"
        );
        assert_eq!(
            Dense::glorot_uniform(0, 3, 1).unwrap_err().to_string(),
            "dense: the number of inputs and of outputs must be at least 1"
        );
    }

    #[test]
    fn agrees_with_candle_linear_on_random_cases() {
        let mut rng = candle_reference::rng(24);
        for _ in 0..candle_reference::CASES {
            let shape = (random_size(&mut rng, 1, 4), random_size(&mut rng, 1, 8), random_size(&mut rng, 1, 8));
            let stack = random_array(&mut rng, shape);
            let outputs = rng.random_range(1..=12);
            let layer = if random_bool(&mut rng) {
                Dense::glorot_uniform(stack.len(), outputs, rng.random()).unwrap()
            } else {
                let weights = random_array(&mut rng, (outputs, stack.len()));
                Dense::new(weights, random_array(&mut rng, outputs)).unwrap()
            };
            let ours = layer.forward(&stack).unwrap();
            let theirs = candle_reference::linear(&stack, layer.weights(), layer.bias());
            assert_close(&ours, &theirs, "dense");
        }
    }
}
