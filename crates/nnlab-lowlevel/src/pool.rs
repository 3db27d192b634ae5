//! Max pooling: each map is cut into windows and every window is replaced by its largest value.

use ndarray::Array3;

use crate::error::LowLevelError;
use crate::printing::shape_text;

const FUNCTION: &str = "max_pool2d";

/// Window size and step of a max pooling, each as (rows, columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolOptions {
    /// Rows and columns covered by one window.
    pub extent: (usize, usize),
    /// Rows and columns between the starts of neighbouring windows.
    pub stride: (usize, usize),
}

impl PoolOptions {
    /// A square window of side `size` moved by its own size, so windows tile the map without
    /// overlap: Keras' `MaxPooling2D(pool_size = size)` with its default stride.
    pub fn square(size: usize) -> Self {
        Self { extent: (size, size), stride: (size, size) }
    }
}

/// Max pooling of every map of `stack` (C × H × W) → C × H' × W'.
///
/// The output size is H' = (H − extent) / stride + 1 (integer division), and likewise W'. Only
/// windows that lie entirely inside the map are used: rows or columns left over at the bottom or
/// right, too few to fill another window, are dropped, as in Keras' `padding = "valid"`. A 7 × 7
/// map pooled 2 × 2 is therefore 3 × 3, and its last row and column are not looked at.
///
/// # Errors
/// The extent or stride is 0 along an axis, or the window is larger than the maps.
pub fn max_pool2d(stack: &Array3<f32>, options: PoolOptions) -> Result<Array3<f32>, LowLevelError> {
    let (maps, height, width) = stack.dim();
    let (window_height, window_width) = options.extent;
    let (stride_rows, stride_cols) = options.stride;
    if window_height == 0 || window_width == 0 {
        return Err(LowLevelError::ZeroParameter { function: FUNCTION, parameter: "each side of the window" });
    }
    if stride_rows == 0 || stride_cols == 0 {
        return Err(LowLevelError::ZeroParameter { function: FUNCTION, parameter: "the stride along each axis" });
    }
    if window_height > height || window_width > width {
        return Err(LowLevelError::WindowTooLarge {
            function: FUNCTION,
            window: shape_text(&[window_height, window_width]),
            input: shape_text(&[height, width]),
        });
    }
    let output_height = (height - window_height) / stride_rows + 1;
    let output_width = (width - window_width) / stride_cols + 1;

    let mut output = Array3::zeros((maps, output_height, output_width));
    for map in 0..maps {
        for out_row in 0..output_height {
            for out_col in 0..output_width {
                let top = out_row * stride_rows;
                let left = out_col * stride_cols;
                let mut max = f32::NEG_INFINITY;
                for row in top..top + window_height {
                    for col in left..left + window_width {
                        max = max.max(stack[[map, row, col]]);
                    }
                }
                output[[map, out_row, out_col]] = max;
            }
        }
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::candle_reference::{self, assert_close, random_array, random_size};
    use ndarray::array;
    use rand::Rng;

    #[test]
    fn trailing_partial_window_is_dropped() {
        let stack = Array3::from_shape_fn((1, 5, 5), |(_, row, col)| (row * 5 + col) as f32);
        let pooled = max_pool2d(&stack, PoolOptions::square(2)).unwrap();
        // Row 4 and column 4 would only half fill a window, so they are not used.
        assert_eq!(pooled, array![[[6.0, 8.0], [16.0, 18.0]]]);
    }

    #[test]
    fn overlapping_windows_follow_the_stride() {
        let stack = array![[[1.0, 5.0, 2.0, 0.0]]];
        let options = PoolOptions { extent: (1, 2), stride: (1, 1) };
        assert_eq!(max_pool2d(&stack, options).unwrap(), array![[[5.0, 5.0, 2.0]]]);
    }

    #[test]
    fn bad_windows_are_errors() {
        let stack = Array3::zeros((2, 2, 5));
        assert_eq!(
            max_pool2d(&stack, PoolOptions::square(3)).unwrap_err().to_string(),
            "max_pool2d: window 3 × 3 does not fit in the input maps 2 × 5"
        );
        assert_eq!(
            max_pool2d(&stack, PoolOptions::square(0)).unwrap_err().to_string(),
            "max_pool2d: each side of the window must be at least 1"
        );
        let options = PoolOptions { extent: (2, 2), stride: (1, 0) };
        assert_eq!(
            max_pool2d(&stack, options).unwrap_err().to_string(),
            "max_pool2d: the stride along each axis must be at least 1"
        );
    }

    #[test]
    fn agrees_with_candle_on_random_cases() {
        let mut rng = candle_reference::rng(22);
        for _ in 0..candle_reference::CASES {
            let options = PoolOptions {
                extent: (rng.random_range(1..=4), rng.random_range(1..=4)),
                stride: (rng.random_range(1..=4), rng.random_range(1..=4)),
            };
            let shape = (
                random_size(&mut rng, 1, 4),
                random_size(&mut rng, options.extent.0, 9),
                random_size(&mut rng, options.extent.1, 9),
            );
            let stack = random_array(&mut rng, shape);
            let ours = max_pool2d(&stack, options).unwrap();
            assert_close(&ours, &candle_reference::max_pool2d(&stack, options), "max_pool2d");
        }
    }
}
