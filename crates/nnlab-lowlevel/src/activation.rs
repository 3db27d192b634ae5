//! Element-wise and vector activations: ReLU over a whole stack, softmax over a vector.

use ndarray::{Array1, Array3};

use crate::error::LowLevelError;

/// Rectified linear unit over every value of a stack: negative values become 0, the rest pass
/// through unchanged. Works on any C × H × W, so it never fails.
pub fn relu(stack: &Array3<f32>) -> Array3<f32> {
    // `max(0.0)` would keep a -0.0 as it is; an explicit test maps it to +0.0 as well.
    stack.mapv(|value| if value > 0.0 { value } else { 0.0 })
}

/// Turns a vector of activations into probabilities: exp(xᵢ) / Σⱼ exp(xⱼ).
///
/// The largest value is subtracted from all of them first. That leaves the result unchanged
/// (the common factor exp(−max) cancels) but keeps every exponent ≤ 0, so inputs such as 1000
/// do not overflow to infinity and inputs such as −1000 do not all underflow to 0: the largest
/// term is always exp(0) = 1 and the sum is at least 1.
///
/// # Errors
/// The vector is empty, or holds NaN or an infinity (their probabilities are undefined).
pub fn softmax(values: &Array1<f32>) -> Result<Array1<f32>, LowLevelError> {
    const FUNCTION: &str = "softmax";
    if values.is_empty() {
        return Err(LowLevelError::Empty { function: FUNCTION, what: "the input vector" });
    }
    if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(LowLevelError::NonFinite { function: FUNCTION, index, value });
    }
    let max = values.fold(f32::NEG_INFINITY, |max, &value| max.max(value));
    let exponentials = values.mapv(|value| (value - max).exp());
    let sum = exponentials.sum();
    Ok(exponentials / sum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::candle_reference::{self, assert_close, random_array, random_size};
    use ndarray::array;
    use rand::Rng;

    #[test]
    fn relu_zeroes_negatives_only() {
        let stack = array![[[-1.0, 0.0], [2.5, -0.0]]];
        assert_eq!(relu(&stack), array![[[0.0, 0.0], [2.5, 0.0]]]);
    }

    #[test]
    fn relu_agrees_with_candle_on_random_cases() {
        let mut rng = candle_reference::rng(21);
        for _ in 0..candle_reference::CASES {
            let shape = (random_size(&mut rng, 1, 4), random_size(&mut rng, 1, 12), random_size(&mut rng, 1, 12));
            let stack = random_array(&mut rng, shape);
            assert_close(&relu(&stack), &candle_reference::relu(&stack), "relu");
        }
    }

    #[test]
    fn softmax_is_stable_for_huge_and_tiny_inputs() {
        // exp(0), exp(1), exp(2) over their sum: what any shift of 0, 1, 2 must give.
        let expected = array![0.090_030_57, 0.244_728_47, 0.665_240_96];
        for shift in [1000.0, -1000.0] {
            let probabilities = softmax(&array![shift, shift + 1.0, shift + 2.0]).unwrap();
            assert_close(&probabilities, &expected, "softmax");
            assert!((probabilities.sum() - 1.0).abs() < 1e-6);
        }
        assert_eq!(softmax(&array![1000.0, -1000.0]).unwrap(), array![1.0, 0.0]);
        // exp(0) and exp(-1) over their sum; exp(-2000) underflows to 0, which is right to f32
        // precision and does no harm since the largest term keeps the sum at least 1.
        assert_close(&softmax(&array![1000.0, 999.0, -1000.0]).unwrap(), &array![0.731_058_6, 0.268_941_43, 0.0], "softmax");
    }

    #[test]
    fn softmax_refuses_empty_and_non_finite_input() {
        let empty = Array1::<f32>::zeros(0);
        assert_eq!(softmax(&empty).unwrap_err().to_string(), "softmax: the input vector is empty");
        assert_eq!(softmax(&array![0.0, f32::INFINITY]).unwrap_err().to_string(), "softmax: value inf at index 1 is not finite");
    }

    #[test]
    fn softmax_agrees_with_candle_on_random_cases() {
        let mut rng = candle_reference::rng(25);
        for _ in 0..candle_reference::CASES {
            let scale = [1.0, 50.0, 1000.0][rng.random_range(0..3)];
            let size = random_size(&mut rng, 1, 20);
            let values = random_array(&mut rng, size) * scale;
            let probabilities = softmax(&values).unwrap();
            assert_close(&probabilities, &candle_reference::softmax(&values), "softmax");
            assert!((probabilities.sum() - 1.0).abs() < 1e-5);
        }
    }
}
