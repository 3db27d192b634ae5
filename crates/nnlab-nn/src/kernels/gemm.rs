//! A bounds-checked front to the `gemm` crate's f32 matrix product, the one place the kernels
//! call into unsafe code.

/// A read-only view of an `rows × cols` matrix whose element `(i, j)` is
/// `data[i * row_stride + j * col_stride]`; a transposed view just swaps the strides.
#[derive(Clone, Copy)]
pub(super) struct Matrix<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Matrix<'a> {
    /// The first `rows * cols` elements of `data`, row after row.
    pub(super) fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert!(data.len() >= rows * cols, "a {rows}×{cols} matrix needs {} elements, got {}", rows * cols, data.len());
        Matrix { data, rows, cols, row_stride: cols, col_stride: 1 }
    }

    pub(super) fn t(self) -> Self {
        Matrix { rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride, ..self }
    }
}

/// `dst = a · b`, or `dst += a · b` when `accumulate`, with `dst` row-major `a.rows × b.cols`.
/// Single-threaded: the kernels parallelise over batch items instead, which keeps each product in
/// one core's cache and makes its float summation order independent of the thread count.
pub(super) fn matmul(dst: &mut [f32], a: Matrix<'_>, b: Matrix<'_>, accumulate: bool) {
    // dst := alpha·dst + beta·a·b; alpha is only read when `accumulate` (read_dst) is set.
    product(dst, a, b, accumulate, 1.0, gemm::Parallelism::None);
}

/// `dst = a · b` exactly as candle's CPU `matmul` computes it: the same `gemm` call (a zeroed
/// destination not read, alpha 0, beta 1) on the same strides, threaded the way candle threads it,
/// so the same bits. The dense layer's op uses it to stay bit-identical to `matmul` +
/// `broadcast_add` while skipping their graph bookkeeping.
pub(super) fn matmul_as_candle(dst: &mut [f32], a: Matrix<'_>, b: Matrix<'_>) {
    let threads = candle_core::utils::get_num_threads();
    let parallelism = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    product(dst, a, b, false, 0.0, parallelism);
}

/// `dst := alpha·dst + a·b` (`dst` read only when `read_dst`), row-major `a.rows × b.cols`.
fn product(dst: &mut [f32], a: Matrix<'_>, b: Matrix<'_>, read_dst: bool, alpha: f32, parallelism: gemm::Parallelism) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "inner dimensions of a {m}×{k} · {}×{n} product", b.rows);
    assert_eq!(dst.len(), m * n, "destination of a {m}×{n} product");
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: `row_major` checked that each view's largest index, (rows-1)·row_stride +
    // (cols-1)·col_stride, lies inside its slice (`t` permutes rows and strides together, which
    // keeps that bound), and `dst` holds exactly m × n elements written with row stride n; the
    // slices are borrowed for the whole call and `dst` is borrowed mutably, so nothing aliases it.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            read_dst,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            alpha,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_of_plain_and_transposed_views() {
        // a = [[1, 2, 3], [4, 5, 6]], b = aᵀ.
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut dst = [0.0; 4];
        matmul(&mut dst, Matrix::row_major(&a, 2, 3), Matrix::row_major(&a, 2, 3).t(), false);
        assert_eq!(dst, [14.0, 32.0, 32.0, 77.0]);
        matmul(&mut dst, Matrix::row_major(&a, 2, 3), Matrix::row_major(&a, 2, 3).t(), true);
        assert_eq!(dst, [28.0, 64.0, 64.0, 154.0]);
        let mut outer = [0.0; 9];
        matmul(&mut outer, Matrix::row_major(&a, 2, 3).t(), Matrix::row_major(&a, 2, 3), false);
        assert_eq!(outer, [17.0, 22.0, 27.0, 22.0, 29.0, 36.0, 27.0, 36.0, 45.0]);
    }
}
