//! Convolution of a stack of feature maps with a bank of filters.
//!
//! As in CNN frameworks (Keras' `Conv2D`, candle's `conv2d`), "convolution" here is the
//! cross-correlation: the filter is laid on the input as it is, without being flipped, and each
//! output value is the sum of the products under it. For the symmetric kernels of the worked
//! example (sharpen, blur) the two are the same anyway.

use ndarray::{s, Array1, Array2, Array3, Array4, Axis};

use crate::error::LowLevelError;
use crate::printing::shape_text;

const FUNCTION: &str = "conv2d";

/// Stride and zero padding of a convolution. The default, stride 1 and no padding, is Keras'
/// `padding = "valid"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvOptions {
    /// Step between two neighbouring windows, the same along rows and columns.
    pub stride: usize,
    /// Rows and columns of zeros added on every side of each input map before sliding the filter.
    pub padding: usize,
}

impl Default for ConvOptions {
    fn default() -> Self {
        Self { stride: 1, padding: 0 }
    }
}

/// Turns one 2-D map into a stack of one channel (1 × H × W), the form [`conv2d`] takes, so a
/// grey image is convolved exactly like a stack with C = 1.
pub fn as_stack(map: &Array2<f32>) -> Array3<f32> {
    map.clone().insert_axis(Axis(0))
}

/// Convolves the input stack `input` (C × H × W) with the filter bank `filters` (F × C × kh × kw)
/// and returns one output map per filter, stacked (F × H' × W').
///
/// Each filter spans all C channels: an output value is the sum, over every channel and every
/// kernel position, of input × weight, plus the filter's entry of `bias` (F values) when given.
/// The output size is H' = (H + 2·padding − kh) / stride + 1 (integer division), and likewise W';
/// windows that would run past the padded input are not computed.
///
/// # Errors
/// The channel counts of input and filters differ, the bias does not have F values, the stride
/// or a kernel side is 0, or the kernel is larger than the padded input.
pub fn conv2d(
    input: &Array3<f32>,
    filters: &Array4<f32>,
    bias: Option<&Array1<f32>>,
    options: ConvOptions,
) -> Result<Array3<f32>, LowLevelError> {
    let channels = input.dim().0;
    let (filter_count, filter_channels, kernel_height, kernel_width) = filters.dim();
    if channels != filter_channels {
        return Err(LowLevelError::ChannelMismatch { input: shape_text(input.shape()), filters: shape_text(filters.shape()) });
    }
    if let Some(bias) = bias {
        if bias.len() != filter_count {
            return Err(LowLevelError::LengthMismatch {
                function: FUNCTION,
                what: "the bias",
                found: bias.len(),
                expected: filter_count,
                context: format!("filters {}", shape_text(filters.shape())),
            });
        }
    }
    if options.stride == 0 {
        return Err(LowLevelError::ZeroParameter { function: FUNCTION, parameter: "the stride" });
    }
    if kernel_height == 0 || kernel_width == 0 {
        return Err(LowLevelError::ZeroParameter { function: FUNCTION, parameter: "each kernel side" });
    }

    let padded = zero_pad(input, options.padding);
    let (_, padded_height, padded_width) = padded.dim();
    if kernel_height > padded_height || kernel_width > padded_width {
        return Err(LowLevelError::WindowTooLarge {
            function: FUNCTION,
            window: shape_text(&[kernel_height, kernel_width]),
            input: shape_text(&[padded_height, padded_width]),
        });
    }
    let output_height = (padded_height - kernel_height) / options.stride + 1;
    let output_width = (padded_width - kernel_width) / options.stride + 1;

    let mut output = Array3::zeros((filter_count, output_height, output_width));
    for filter in 0..filter_count {
        let filter_bias = bias.map_or(0.0, |bias| bias[filter]);
        for out_row in 0..output_height {
            for out_col in 0..output_width {
                let top = out_row * options.stride;
                let left = out_col * options.stride;
                let mut sum = filter_bias;
                for channel in 0..channels {
                    for k_row in 0..kernel_height {
                        for k_col in 0..kernel_width {
                            sum += padded[[channel, top + k_row, left + k_col]] * filters[[filter, channel, k_row, k_col]];
                        }
                    }
                }
                output[[filter, out_row, out_col]] = sum;
            }
        }
    }
    Ok(output)
}

/// Copies `input` into the middle of a larger array of zeros, `padding` rows and columns wider on
/// every side; padding once up front keeps the convolution loop free of bounds tests.
fn zero_pad(input: &Array3<f32>, padding: usize) -> Array3<f32> {
    let (channels, height, width) = input.dim();
    let mut padded = Array3::zeros((channels, height + 2 * padding, width + 2 * padding));
    padded.slice_mut(s![.., padding..padding + height, padding..padding + width]).assign(input);
    padded
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::candle_reference::{self, assert_close, random_array, random_bool, random_size};
    use ndarray::{array, Array4};
    use rand::Rng;

    #[test]
    fn matches_a_hand_computed_example() {
        let input = as_stack(&array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]);
        // Not symmetric, so a flipped kernel would give a different answer.
        let filters = Array4::from_shape_vec((1, 1, 2, 2), vec![1.0, 0.0, 0.0, -1.0]).unwrap();
        let output = conv2d(&input, &filters, Some(&array![10.0]), ConvOptions::default()).unwrap();
        assert_eq!(output, array![[[6.0, 6.0], [6.0, 6.0]]]);
    }

    #[test]
    fn padding_and_stride_set_the_output_size() {
        let input = Array3::ones((2, 7, 6));
        let filters = Array4::ones((4, 2, 3, 3));
        let options = ConvOptions { stride: 2, padding: 1 };
        let output = conv2d(&input, &filters, None, options).unwrap();
        assert_eq!(output.dim(), (4, 4, 3));
        // The corner window covers 2 × 2 real values in each of 2 channels; the rest is padding.
        assert_eq!(output[[0, 0, 0]], 8.0);
    }

    #[test]
    fn bad_shapes_are_errors_naming_the_shapes() {
        let input = Array3::zeros((3, 5, 5));
        let error = conv2d(&input, &Array4::zeros((2, 1, 3, 3)), None, ConvOptions::default()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "conv2d: input 3 × 5 × 5 (C × H × W) and filters 2 × 1 × 3 × 3 (F × C × kh × kw) have different channel counts"
        );

        let filters = Array4::zeros((2, 3, 3, 3));
        let error = conv2d(&input, &filters, Some(&array![1.0]), ConvOptions::default()).unwrap_err();
        assert_eq!(error.to_string(), "conv2d: the bias has 1 values but 2 are needed for filters 2 × 3 × 3 × 3");

        let error = conv2d(&input, &Array4::zeros((1, 3, 6, 3)), None, ConvOptions::default()).unwrap_err();
        assert_eq!(error.to_string(), "conv2d: window 6 × 3 does not fit in the input maps 5 × 5");

        let options = ConvOptions { stride: 0, padding: 0 };
        let error = conv2d(&input, &filters, None, options).unwrap_err();
        assert_eq!(error.to_string(), "conv2d: the stride must be at least 1");
    }

    #[test]
    fn agrees_with_candle_on_random_cases() {
        let mut rng = candle_reference::rng(20);
        for _ in 0..candle_reference::CASES {
            let channels = rng.random_range(1..=4);
            let filter_count = rng.random_range(1..=5);
            let kernel_height: usize = [1, 3, 5][rng.random_range(0..3)];
            let kernel_width: usize = [1, 3, 5][rng.random_range(0..3)];
            let options = ConvOptions { stride: rng.random_range(1..=3), padding: rng.random_range(0..=2) };
            // At least the kernel once padded, plus up to 8 more rows/columns, odd sizes included.
            let min_height = kernel_height.saturating_sub(2 * options.padding).max(1);
            let min_width = kernel_width.saturating_sub(2 * options.padding).max(1);
            let height = random_size(&mut rng, min_height, 8);
            let width = random_size(&mut rng, min_width, 8);

            let input = random_array(&mut rng, (channels, height, width));
            let filters = random_array(&mut rng, (filter_count, channels, kernel_height, kernel_width));
            let bias = random_bool(&mut rng).then(|| random_array(&mut rng, filter_count));

            let ours = conv2d(&input, &filters, bias.as_ref(), options).unwrap();
            let theirs = candle_reference::conv2d(&input, &filters, bias.as_ref(), options);
            assert_close(&ours, &theirs, "conv2d");
        }
    }
}
