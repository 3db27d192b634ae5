//! The worked example of the a1 report: a small test image taken through every function of the
//! crate in turn, each intermediate result kept, with its shape and a printable rendering.
//!
//! The path is convolution (with a 2-D and a 3-D input) → ReLU → max pooling (2 × 2, and 3 × 3
//! beside it) → normalisation → dense layer → softmax, plus softmax on extreme inputs to show
//! why it subtracts the maximum.

use ndarray::{array, s, Array1, Array2, Array3, Array4, Axis};
use serde::Serialize;

use crate::activation::{relu, softmax};
use crate::conv::{as_stack, conv2d, ConvOptions};
use crate::dense::{glorot_limit, Dense};
use crate::error::LowLevelError;
use crate::normalise::{mean_and_std, normalise_maps};
use crate::pool::{max_pool2d, PoolOptions};
use crate::printing::{number_text, shape_text, PrintedMatrix, PrintedStack, PrintedVector};

/// Side of the square test image.
const IMAGE_SIZE: usize = 10;
/// Brightness of the cross in each channel; different per channel so the 3-D convolution has
/// something to mix.
const CROSS_INTENSITIES: [f32; 3] = [1.0, 0.5, 0.25];
/// Output nodes of the dense layer, as many as the classes of a digit classifier.
const DENSE_OUTPUTS: usize = 10;
/// Names of the two filters, in the order of the output maps.
const FILTER_NAMES: [&str; 2] = ["sharpen", "blur"];
/// Activations whose exponentials overflow (1000) or underflow (−1000) in f32: the same spacing
/// as 0, 1, 2 shifted far up and far down, and a mix of both extremes in one vector.
const SOFTMAX_EXTREMES: [[f32; 3]; 3] = [[1000.0, 1001.0, 1002.0], [-1000.0, -1001.0, -1002.0], [1000.0, 999.0, -1000.0]];

/// Every step of the worked example. Each array is carried as numbers and as a fixed-width text
/// block with its shape (see [`crate::printing`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkedExample {
    /// Seed of the dense layer's weights.
    pub seed: u64,
    /// Brightness of the cross in each channel, two decimals.
    pub cross_intensities: Vec<String>,
    /// The test image, a cross drawn in each of the channels (C × H × W).
    pub input: PrintedStack,
    /// The 3 × 3 sharpen kernel: the centre weighted up, its four neighbours subtracted.
    pub sharpen: PrintedMatrix,
    /// The 3 × 3 blur kernel: the mean of the 9 values under it.
    pub blur: PrintedMatrix,
    /// Names of the filters, in the order of the maps every convolution produces.
    pub filter_names: Vec<String>,
    /// A 2-D input (the first channel alone) convolved with the sharpen and blur kernels.
    pub conv_2d: ConvStep,
    /// The full 3-channel input convolved with 3-D sharpen and blur filters.
    pub conv_3d: ConvStep,
    /// ReLU of the 3-D convolution's output.
    pub relu: ReluStep,
    /// Max pooling 2 × 2 (stride 2) of the ReLU output: the path the example continues on.
    pub pool_2x2: PoolStep,
    /// Max pooling 3 × 3 (stride 3) of the same ReLU output, for comparison.
    pub pool_3x3: PoolStep,
    /// Normalisation of each map of the 2 × 2 pooling's output.
    pub normalise: NormaliseStep,
    /// The dense layer on the normalised maps.
    pub dense: DenseStep,
    /// Softmax of the dense layer's outputs.
    pub softmax: SoftmaxStep,
    /// Softmax on inputs whose exponentials overflow or underflow, computed stably and naively.
    pub softmax_stability: Vec<StabilityCase>,
}

/// One convolution of the example.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConvStep {
    /// Shape of the input as given: H × W for the 2-D case, C × H × W for the 3-D one.
    pub input_shape: String,
    /// Shape of the filter bank, F × C × kh × kw.
    pub filters_shape: String,
    /// Channels every filter spans.
    pub channels: usize,
    /// Weight of every entry of the blur filter, as a fraction ("1/9", "1/27").
    pub blur_weight: String,
    /// Stride of the convolution.
    pub stride: usize,
    /// Zero padding on each side.
    pub padding: usize,
    /// One map per filter, F × H' × W'.
    pub output: PrintedStack,
}

/// The ReLU step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReluStep {
    /// The input with negative values set to 0.
    pub output: PrintedStack,
    /// How many values were negative and became 0.
    pub negatives_zeroed: usize,
    /// How many values there are in all.
    pub total_values: usize,
}

/// One max pooling of the example.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolStep {
    /// Window size, rows × columns.
    pub extent: String,
    /// Stride, rows × columns.
    pub stride: String,
    /// Shape of the pooled stack.
    pub input_shape: String,
    /// The pooled stack.
    pub output: PrintedStack,
    /// Rows of each input map that some window covers.
    pub rows_used: usize,
    /// Rows left over at the bottom, too few for another window, and so dropped.
    pub rows_dropped: usize,
    /// Columns of each input map that some window covers.
    pub cols_used: usize,
    /// Columns left over at the right, and so dropped.
    pub cols_dropped: usize,
}

/// The normalisation step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NormaliseStep {
    /// Each map rescaled to mean 0 and std 1.
    pub output: PrintedStack,
    /// Mean and std of each map before and after.
    pub maps: Vec<MapStats>,
}

/// Mean and population std of one map before and after normalisation, two decimals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MapStats {
    /// Which map, by the filter that made it.
    pub name: String,
    /// Mean before normalisation.
    pub mean_before: String,
    /// Std before normalisation.
    pub std_before: String,
    /// Mean after normalisation.
    pub mean_after: String,
    /// Std after normalisation.
    pub std_after: String,
}

/// The dense layer step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DenseStep {
    /// Shape of the stack that is flattened.
    pub input_shape: String,
    /// Values after flattening, the layer's inputs.
    pub inputs: usize,
    /// Output nodes.
    pub outputs: usize,
    /// Shape of the weight matrix, outputs × inputs.
    pub weights_shape: String,
    /// Bound of the Glorot-uniform weights, three decimals.
    pub glorot_limit: String,
    /// Seed of the weights.
    pub seed: u64,
    /// The layer's outputs.
    pub output: PrintedVector,
}

/// The softmax step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SoftmaxStep {
    /// One probability per output node.
    pub probabilities: PrintedVector,
    /// Their sum, six decimals.
    pub sum: String,
    /// Index of the largest probability.
    pub most_likely: usize,
    /// The largest probability, two decimals.
    pub most_likely_probability: String,
}

/// Softmax of one extreme input, stably and by the textbook formula.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StabilityCase {
    /// The activations.
    pub input: PrintedVector,
    /// [`softmax`], which subtracts the maximum first.
    pub stable: PrintedVector,
    /// Sum of the stable probabilities, six decimals.
    pub stable_sum: String,
    /// exp(xᵢ) / Σⱼ exp(xⱼ) as written, in f32: NaN once the exponentials overflow or underflow.
    pub naive: PrintedVector,
}

/// Runs the worked example; `seed` fixes the dense layer's weights.
///
/// # Errors
/// None in practice, since every shape here is fixed; the steps' errors are passed on rather
/// than unwrapped.
pub fn worked_example(seed: u64) -> Result<WorkedExample, LowLevelError> {
    let image = cross_image();
    let sharpen = sharpen_kernel();
    let blur = blur_kernel();
    let valid = ConvOptions::default();

    let first_channel = image.index_axis(Axis(0), 0).to_owned();
    let filters_2d = filter_bank(&sharpen, &blur, 1);
    let conv_2d_output = conv2d(&as_stack(&first_channel), &filters_2d, None, valid)?;
    let filters_3d = filter_bank(&sharpen, &blur, image.dim().0);
    let conv_3d_output = conv2d(&image, &filters_3d, None, valid)?;

    let relu_output = relu(&conv_3d_output);
    let pool_2x2 = pool_step(&relu_output, PoolOptions::square(2))?;
    let pool_3x3 = pool_step(&relu_output, PoolOptions::square(3))?;
    let pooled = max_pool2d(&relu_output, PoolOptions::square(2))?;

    let normalised = normalise_maps(&pooled);
    let layer = Dense::glorot_uniform(normalised.len(), DENSE_OUTPUTS, seed)?;
    let dense_output = layer.forward(&normalised)?;
    let probabilities = softmax(&dense_output)?;

    Ok(WorkedExample {
        seed,
        cross_intensities: CROSS_INTENSITIES.iter().map(|&v| number_text(v)).collect(),
        input: PrintedStack::new(&image, |i| format!("channel {i}")),
        sharpen: PrintedMatrix::new(&sharpen),
        blur: PrintedMatrix::new(&blur),
        filter_names: FILTER_NAMES.iter().map(|name| name.to_string()).collect(),
        conv_2d: conv_step(first_channel.shape(), &filters_2d, &conv_2d_output),
        conv_3d: conv_step(image.shape(), &filters_3d, &conv_3d_output),
        relu: ReluStep {
            output: PrintedStack::new(&relu_output, filter_heading),
            negatives_zeroed: conv_3d_output.iter().filter(|&&v| v < 0.0).count(),
            total_values: conv_3d_output.len(),
        },
        pool_2x2,
        pool_3x3,
        normalise: NormaliseStep {
            output: PrintedStack::new(&normalised, filter_heading),
            maps: map_stats(&pooled, &normalised),
        },
        dense: DenseStep {
            input_shape: shape_text(normalised.shape()),
            inputs: normalised.len(),
            outputs: DENSE_OUTPUTS,
            weights_shape: shape_text(layer.weights().shape()),
            glorot_limit: format!("{:.3}", glorot_limit(normalised.len(), DENSE_OUTPUTS)),
            seed,
            output: PrintedVector::new(&dense_output),
        },
        softmax: softmax_step(&probabilities),
        softmax_stability: SOFTMAX_EXTREMES
            .iter()
            .map(|values| stability_case(&Array1::from(values.to_vec())))
            .collect::<Result<_, _>>()?,
    })
}

/// A plus-shaped cross two pixels thick through the middle of each channel, its arms stopping
/// one pixel short of the border so that the filters also meet its ends.
fn cross_image() -> Array3<f32> {
    let middle = IMAGE_SIZE / 2 - 1..IMAGE_SIZE / 2 + 1;
    let arm = 1..IMAGE_SIZE - 1;
    let mut image = Array3::zeros((CROSS_INTENSITIES.len(), IMAGE_SIZE, IMAGE_SIZE));
    for (mut channel, &intensity) in image.outer_iter_mut().zip(CROSS_INTENSITIES.iter()) {
        channel.slice_mut(s![middle.clone(), arm.clone()]).fill(intensity);
        channel.slice_mut(s![arm.clone(), middle.clone()]).fill(intensity);
    }
    image
}

fn sharpen_kernel() -> Array2<f32> {
    array![[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]]
}

fn blur_kernel() -> Array2<f32> {
    Array2::from_elem((3, 3), 1.0 / 9.0)
}

/// Two filters spanning `channels` channels (2 × C × 3 × 3): the sharpen kernel repeated in
/// every channel, so the channels' sharpened maps are summed, and the blur kernel divided by C,
/// so the blur filter stays the mean of every value under it.
fn filter_bank(sharpen: &Array2<f32>, blur: &Array2<f32>, channels: usize) -> Array4<f32> {
    let (rows, cols) = sharpen.dim();
    let blur_per_channel = blur / channels as f32;
    let mut filters = Array4::zeros((FILTER_NAMES.len(), channels, rows, cols));
    for channel in 0..channels {
        filters.slice_mut(s![0, channel, .., ..]).assign(sharpen);
        filters.slice_mut(s![1, channel, .., ..]).assign(&blur_per_channel);
    }
    filters
}

fn filter_heading(index: usize) -> String {
    FILTER_NAMES.get(index).map_or_else(|| format!("map {index}"), |name| name.to_string())
}

fn conv_step(input_shape: &[usize], filters: &Array4<f32>, output: &Array3<f32>) -> ConvStep {
    let (_, channels, rows, cols) = filters.dim();
    let options = ConvOptions::default();
    ConvStep {
        input_shape: shape_text(input_shape),
        filters_shape: shape_text(filters.shape()),
        channels,
        blur_weight: format!("1/{}", channels * rows * cols),
        stride: options.stride,
        padding: options.padding,
        output: PrintedStack::new(output, filter_heading),
    }
}

fn pool_step(stack: &Array3<f32>, options: PoolOptions) -> Result<PoolStep, LowLevelError> {
    let output = max_pool2d(stack, options)?;
    let (_, out_rows, out_cols) = output.dim();
    let (_, rows, cols) = stack.dim();
    let rows_used = (out_rows - 1) * options.stride.0 + options.extent.0;
    let cols_used = (out_cols - 1) * options.stride.1 + options.extent.1;
    Ok(PoolStep {
        extent: shape_text(&[options.extent.0, options.extent.1]),
        stride: shape_text(&[options.stride.0, options.stride.1]),
        input_shape: shape_text(stack.shape()),
        output: PrintedStack::new(&output, filter_heading),
        rows_used,
        rows_dropped: rows - rows_used,
        cols_used,
        cols_dropped: cols - cols_used,
    })
}

fn map_stats(before: &Array3<f32>, after: &Array3<f32>) -> Vec<MapStats> {
    before
        .outer_iter()
        .zip(after.outer_iter())
        .enumerate()
        .map(|(index, (before, after))| {
            let (mean_before, std_before) = mean_and_std(before);
            let (mean_after, std_after) = mean_and_std(after);
            MapStats {
                name: filter_heading(index),
                mean_before: number_text(mean_before as f32),
                std_before: number_text(std_before as f32),
                mean_after: number_text(mean_after as f32),
                std_after: number_text(std_after as f32),
            }
        })
        .collect()
}

fn softmax_step(probabilities: &Array1<f32>) -> SoftmaxStep {
    let (most_likely, &largest) =
        probabilities.iter().enumerate().fold((0, &f32::NEG_INFINITY), |best, item| if item.1 > best.1 { item } else { best });
    SoftmaxStep {
        probabilities: PrintedVector::new(probabilities),
        sum: format!("{:.6}", probabilities.sum()),
        most_likely,
        most_likely_probability: number_text(largest),
    }
}

fn stability_case(input: &Array1<f32>) -> Result<StabilityCase, LowLevelError> {
    let stable = softmax(input)?;
    let exponentials = input.mapv(f32::exp);
    let naive = &exponentials / exponentials.sum();
    Ok(StabilityCase {
        input: PrintedVector::new(input),
        stable_sum: format!("{:.6}", stable.sum()),
        stable: PrintedVector::new(&stable),
        naive: PrintedVector::new(&naive),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_has_the_expected_shape() {
        let example = worked_example(1).unwrap();
        assert_eq!(example.input.shape, "3 × 10 × 10");
        assert_eq!(example.conv_2d.input_shape, "10 × 10");
        assert_eq!(example.conv_2d.filters_shape, "2 × 1 × 3 × 3");
        assert_eq!(example.conv_2d.output.shape, "2 × 8 × 8");
        assert_eq!(example.conv_3d.filters_shape, "2 × 3 × 3 × 3");
        assert_eq!(example.conv_3d.blur_weight, "1/27");
        assert_eq!(example.conv_3d.output.shape, "2 × 8 × 8");
        assert_eq!(example.relu.output.shape, "2 × 8 × 8");
        assert_eq!(example.pool_2x2.output.shape, "2 × 4 × 4");
        assert_eq!(example.pool_3x3.output.shape, "2 × 2 × 2");
        assert_eq!(example.normalise.output.shape, "2 × 4 × 4");
        assert_eq!(example.dense.inputs, 32);
        assert_eq!(example.dense.weights_shape, "10 × 32");
        assert_eq!(example.softmax.probabilities.shape, "10");
    }

    #[test]
    fn pool_3x3_drops_the_trailing_rows_and_columns() {
        let example = worked_example(1).unwrap();
        assert_eq!((example.pool_2x2.rows_used, example.pool_2x2.rows_dropped), (8, 0));
        assert_eq!((example.pool_3x3.rows_used, example.pool_3x3.rows_dropped), (6, 2));
        assert_eq!((example.pool_3x3.cols_used, example.pool_3x3.cols_dropped), (6, 2));
    }

    #[test]
    fn the_cross_sits_in_every_channel_with_its_own_intensity() {
        let image = cross_image();
        for (channel, &intensity) in CROSS_INTENSITIES.iter().enumerate() {
            assert_eq!(image[[channel, 4, 1]], intensity);
            assert_eq!(image[[channel, 8, 5]], intensity);
            assert_eq!(image[[channel, 0, 4]], 0.0);
            assert_eq!(image[[channel, 1, 1]], 0.0);
        }
    }

    #[test]
    fn sharpening_the_cross_makes_negatives_for_relu() {
        let example = worked_example(1).unwrap();
        assert!(example.relu.negatives_zeroed > 0);
        assert!(example.relu.negatives_zeroed < example.relu.total_values);
    }

    #[test]
    fn normalised_maps_have_mean_zero_and_std_one() {
        let example = worked_example(1).unwrap();
        for map in &example.normalise.maps {
            assert_eq!((map.mean_after.as_str(), map.std_after.as_str()), ("0.00", "1.00"));
        }
    }

    #[test]
    fn probabilities_sum_to_one_and_the_seed_fixes_them() {
        let example = worked_example(1).unwrap();
        assert_eq!(example.softmax.sum, "1.000000");
        // The naive-softmax rows hold NaN, which never equals itself: compare everything else.
        let again = worked_example(1).unwrap();
        assert_eq!(example.dense.output, again.dense.output);
        assert_eq!(example.softmax, again.softmax);
        assert_ne!(example.dense.output, worked_example(2).unwrap().dense.output);
    }

    #[test]
    fn extreme_inputs_break_naive_softmax_only() {
        let example = worked_example(1).unwrap();
        let expected = ["0.09 0.24 0.67", "0.67 0.24 0.09", "0.73 0.27 0.00"];
        assert_eq!(example.softmax_stability.len(), expected.len());
        for (case, expected) in example.softmax_stability.iter().zip(expected) {
            assert_eq!(case.stable_sum, "1.000000");
            assert_eq!(case.stable.text, expected);
            assert!(case.naive.values.iter().any(|p| p.is_nan()));
        }
    }
}
