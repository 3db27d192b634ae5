//! A borrowed, row-major feature matrix.

use crate::{AnalysisError, Result};

/// Row-major `rows × cols` feature matrix (e.g. 10,000 MNIST test images × 784 pixels in
/// [0, 1], or hidden activations).
#[derive(Clone, Copy, Debug)]
pub struct Features<'a> {
    pub rows: usize,
    pub cols: usize,
    pub values: &'a [f32],
}

impl<'a> Features<'a> {
    /// Wraps `values` as `rows × cols`; see [`Features::check`] for what is verified.
    pub fn new(rows: usize, cols: usize, values: &'a [f32]) -> Result<Self> {
        let features = Features { rows, cols, values };
        features.check()?;
        Ok(features)
    }

    /// Verifies that `values` holds exactly `rows × cols` finite numbers.
    pub fn check(&self) -> Result<()> {
        let expected = self.rows.checked_mul(self.cols);
        if expected != Some(self.values.len()) {
            return Err(AnalysisError::Shape {
                rows: self.rows,
                cols: self.cols,
                expected: expected.unwrap_or(usize::MAX),
                actual: self.values.len(),
            });
        }
        if let Some(at) = self.values.iter().position(|v| !v.is_finite()) {
            return Err(AnalysisError::NonFiniteFeature { row: at / self.cols, col: at % self.cols, value: self.values[at] });
        }
        Ok(())
    }

    /// Row `index` as a slice.
    pub fn row(&self, index: usize) -> &'a [f32] {
        &self.values[index * self.cols..(index + 1) * self.cols]
    }

    /// The matrix as `f64`, the element type linfa's PCA works in.
    pub(crate) fn to_array(self) -> ndarray::Array2<f64> {
        ndarray::Array2::from_shape_fn((self.rows, self.cols), |(r, c)| f64::from(self.values[r * self.cols + c]))
    }
}
