//! The shape arithmetic of a padded stride-1 convolution, and the im2col / col2im rearrangements
//! that turn it into matrix products.
//!
//! For one batch item, the column matrix `cols` is `(C·kh·kw) × (OH·OW)`, row-major: row
//! `r = (c·kh + i)·kw + j` holds, for every output position `(y, x)`, the input pixel under kernel
//! tap `(i, j)` of channel `c`, i.e. `input[c][y + i - top][x + j - left]`, or 0 in the padding.
//! Row order matches the kernel's `(F, C, kh, kw)` layout, so the kernel read row-major as an
//! `F × (C·kh·kw)` matrix multiplies `cols` directly into the item's `F × (OH·OW)` (NCHW) output.

use candle_core::{bail, Result};

/// Sizes of one convolution: input `(batch, channels, height, width)`, kernel
/// `(filters, channels, kh, kw)`, padding `(top, bottom, left, right)`, output `(batch, filters, oh, ow)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ConvGeometry {
    pub batch: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub filters: usize,
    pub kh: usize,
    pub kw: usize,
    pub pad: [usize; 4],
    pub oh: usize,
    pub ow: usize,
}

impl ConvGeometry {
    /// From the input's and the kernel's dimensions, as the forward pass sees them.
    pub fn new(input: (usize, usize, usize, usize), kernel: (usize, usize, usize, usize), pad: [usize; 4]) -> Result<Self> {
        let (batch, channels, height, width) = input;
        let (filters, kernel_channels, kh, kw) = kernel;
        let [top, bottom, left, right] = pad;
        if kernel_channels != channels {
            bail!("conv2d: the kernel {kernel:?} expects {kernel_channels} input channels, the input {input:?} has {channels}");
        }
        let (padded_h, padded_w) = (height + top + bottom, width + left + right);
        if [batch, channels, height, width, filters, kh, kw].contains(&0) || kh > padded_h || kw > padded_w {
            bail!("conv2d: kernel {kernel:?} does not fit input {input:?} padded by {pad:?}");
        }
        Ok(ConvGeometry { batch, channels, height, width, filters, kh, kw, pad, oh: padded_h - kh + 1, ow: padded_w - kw + 1 })
    }

    /// Elements of one input item, `C·H·W`.
    pub fn input_item(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Elements of one output item, `F·OH·OW`.
    pub fn output_item(&self) -> usize {
        self.filters * self.out_positions()
    }

    /// Output positions per item (columns of `cols`), `OH·OW`.
    pub fn out_positions(&self) -> usize {
        self.oh * self.ow
    }

    /// Kernel taps per filter (rows of `cols`), `C·kh·kw`.
    pub fn taps(&self) -> usize {
        self.channels * self.kh * self.kw
    }

    /// For kernel tap `(i, j)` and output row `y`: the input row `y + i - top` it reads and the
    /// non-empty range `x_lo..x_hi` of output columns whose input column `x + j - left` lies inside
    /// the image; `None` where the whole output row reads padding.
    fn tap_span(&self, i: usize, j: usize, y: usize) -> Option<(usize, usize, usize)> {
        let [top, _, left, _] = self.pad;
        let row = (y + i).checked_sub(top).filter(|&row| row < self.height)?;
        let x_lo = left.saturating_sub(j);
        let x_hi = (self.width + left).saturating_sub(j).min(self.ow);
        (x_lo < x_hi).then_some((row, x_lo, x_hi))
    }
}

/// Fills `cols` (`taps × out_positions`) from one input item (`C × H × W`).
pub(super) fn im2col(g: &ConvGeometry, input: &[f32], cols: &mut [f32]) {
    let (hw, ow) = (g.height * g.width, g.ow);
    let [_, _, left, _] = g.pad;
    for (r, col_row) in cols.chunks_exact_mut(g.out_positions()).enumerate() {
        let (c, i, j) = (r / (g.kh * g.kw), r / g.kw % g.kh, r % g.kw);
        let plane = &input[c * hw..(c + 1) * hw];
        for (y, out) in col_row.chunks_exact_mut(ow).enumerate() {
            match g.tap_span(i, j, y) {
                Some((row, x_lo, x_hi)) => {
                    out[..x_lo].fill(0.0);
                    // Output column x reads input column x + j - left.
                    let start = row * g.width + x_lo + j - left;
                    out[x_lo..x_hi].copy_from_slice(&plane[start..start + (x_hi - x_lo)]);
                    out[x_hi..].fill(0.0);
                }
                None => out.fill(0.0),
            }
        }
    }
}

/// Adds `cols` (`taps × out_positions`) back onto one input item's gradient (`C × H × W`): the
/// transpose of [`im2col`], each column entry summed into the pixel it was read from.
pub(super) fn col2im(g: &ConvGeometry, cols: &[f32], input_grad: &mut [f32]) {
    let (hw, ow) = (g.height * g.width, g.ow);
    let [_, _, left, _] = g.pad;
    for (r, col_row) in cols.chunks_exact(g.out_positions()).enumerate() {
        let (c, i, j) = (r / (g.kh * g.kw), r / g.kw % g.kh, r % g.kw);
        let plane = &mut input_grad[c * hw..(c + 1) * hw];
        for (y, out) in col_row.chunks_exact(ow).enumerate() {
            if let Some((row, x_lo, x_hi)) = g.tap_span(i, j, y) {
                let start = row * g.width + x_lo + j - left;
                for (acc, v) in plane[start..start + (x_hi - x_lo)].iter_mut().zip(&out[x_lo..x_hi]) {
                    *acc += v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_of_padded_and_valid_convolutions() {
        let g = ConvGeometry::new((2, 3, 7, 5), (4, 3, 3, 2), [0, 1, 0, 1]).unwrap();
        assert_eq!((g.oh, g.ow, g.taps(), g.out_positions()), (6, 5, 18, 30));
        assert!(ConvGeometry::new((1, 3, 4, 4), (4, 2, 3, 3), [0; 4]).is_err());
        assert!(ConvGeometry::new((1, 1, 2, 2), (1, 1, 3, 3), [0; 4]).is_err());
        assert!(ConvGeometry::new((1, 1, 2, 2), (1, 1, 3, 3), [1, 0, 0, 1]).is_ok());
    }

    #[test]
    fn im2col_reads_taps_and_zero_padding() {
        // One 2×3 channel, a 2×2 kernel, padded one row at the bottom and one column at the right:
        // output 2×3; the tap (1, 1) of output (0, 0) reads input (1, 1) = 5.
        let g = ConvGeometry::new((1, 1, 2, 3), (1, 1, 2, 2), [0, 1, 0, 1]).unwrap();
        let input = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut cols = vec![f32::NAN; g.taps() * g.out_positions()];
        im2col(&g, &input, &mut cols);
        #[rustfmt::skip]
        let expected = [
            1.0, 2.0, 3.0, 4.0, 5.0, 6.0, // tap (0, 0)
            2.0, 3.0, 0.0, 5.0, 6.0, 0.0, // tap (0, 1)
            4.0, 5.0, 6.0, 0.0, 0.0, 0.0, // tap (1, 0)
            5.0, 6.0, 0.0, 0.0, 0.0, 0.0, // tap (1, 1)
        ];
        assert_eq!(cols, expected);
    }

    #[test]
    fn col2im_is_the_transpose_of_im2col() {
        // <im2col(x), c> = <x, col2im(c)> for any x and c, with padding on every side.
        let g = ConvGeometry::new((1, 2, 4, 3), (1, 2, 3, 2), [1, 2, 2, 0]).unwrap();
        let x: Vec<f32> = (0..g.input_item()).map(|v| (v as f32 * 0.37).sin()).collect();
        let c: Vec<f32> = (0..g.taps() * g.out_positions()).map(|v| (v as f32 * 0.91).cos()).collect();
        let mut cols = vec![0.0; c.len()];
        im2col(&g, &x, &mut cols);
        let mut back = vec![0.0; x.len()];
        col2im(&g, &c, &mut back);
        let lhs: f32 = cols.iter().zip(&c).map(|(a, b)| a * b).sum();
        let rhs: f32 = x.iter().zip(&back).map(|(a, b)| a * b).sum();
        assert!((lhs - rhs).abs() < 1e-4, "{lhs} vs {rhs}");
    }
}
