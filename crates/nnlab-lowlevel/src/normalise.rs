//! Normalisation within each feature map to mean 0 and standard deviation 1.

use ndarray::{Array3, ArrayView2};

/// Rescales every map of `stack` (C × H × W) on its own to mean 0 and standard deviation 1:
/// x ↦ (x − mean) / std, with the mean and std of that map alone.
///
/// The std is the population one, √(Σ(x − mean)² / N) with N = H·W, because the map is all the
/// data there is rather than a sample of something larger; this is also what candle's and
/// Keras' normalisation layers use.
///
/// A constant map (every value equal, which includes a 1 × 1 map) has std 0, and x − mean is 0
/// for every value. Such a map is defined to normalise to all zeros, as if its std were 1: it
/// is centred like any other map, and there is no spread to scale. This keeps NaN out of the
/// result. Means and stds are accumulated in f64 so that a map whose values differ only slightly
/// is still scaled accurately.
pub fn normalise_maps(stack: &Array3<f32>) -> Array3<f32> {
    let mut output = stack.clone();
    for (mut out_map, map) in output.outer_iter_mut().zip(stack.outer_iter()) {
        let (mean, std) = mean_and_std(map);
        let scale = if std == 0.0 { 1.0 } else { std };
        out_map.mapv_inplace(|value| ((f64::from(value) - mean) / scale) as f32);
    }
    output
}

/// The mean and population std of one map. A constant map is recognised from its values and
/// given std exactly 0: a mean computed in floating point may differ from the constant by a
/// rounding error, which would otherwise look like a tiny spread and be blown up to ±1.
pub(crate) fn mean_and_std(map: ArrayView2<'_, f32>) -> (f64, f64) {
    let first = map.iter().next().copied().unwrap_or(0.0);
    if map.iter().all(|&value| value == first) {
        return (f64::from(first), 0.0);
    }
    let count = map.len() as f64;
    let mean = map.iter().map(|&value| f64::from(value)).sum::<f64>() / count;
    let variance = map.iter().map(|&value| (f64::from(value) - mean).powi(2)).sum::<f64>() / count;
    (mean, variance.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::candle_reference::{self, assert_close, random_array, random_size};
    use ndarray::{array, Axis};

    #[test]
    fn each_map_gets_mean_zero_and_population_std_one() {
        let stack = array![[[1.0, 2.0], [3.0, 4.0]], [[10.0, 10.0], [30.0, 30.0]]];
        let normalised = normalise_maps(&stack);
        for map in normalised.axis_iter(Axis(0)) {
            let (mean, std) = mean_and_std(map);
            assert!(mean.abs() < 1e-6 && (std - 1.0).abs() < 1e-6);
        }
        // Mean 20, population std 10 (a sample std would be 11.5).
        assert_eq!(normalised.index_axis(Axis(0), 1), array![[-1.0, -1.0], [1.0, 1.0]]);
    }

    #[test]
    fn constant_maps_become_zeros_not_nan() {
        let stack = array![[[0.1, 0.1, 0.1], [0.1, 0.1, 0.1]], [[-3.0, -3.0, -3.0], [-3.0, -3.0, -3.0]]];
        assert_eq!(normalise_maps(&stack), Array3::<f32>::zeros((2, 2, 3)));
        assert_eq!(normalise_maps(&array![[[7.0]]]), array![[[0.0]]]);
    }

    #[test]
    fn agrees_with_candle_reductions_on_random_cases() {
        let mut rng = candle_reference::rng(23);
        for _ in 0..candle_reference::CASES {
            // At least two values per map: a random map of one value is constant, where candle
            // gives 0 / 0.
            let height = random_size(&mut rng, 1, 10);
            let shape = (random_size(&mut rng, 1, 4), height, random_size(&mut rng, 2, 10));
            let stack = random_array(&mut rng, shape);
            let ours = normalise_maps(&stack);
            assert_close(&ours, &candle_reference::normalise_maps(&stack), "normalise_maps");
        }
    }
}
