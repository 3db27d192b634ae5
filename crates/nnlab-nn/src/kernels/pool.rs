//! 2-D max-pooling of NCHW f32 batches ("valid": windows that would overrun the image are dropped),
//! multi-threaded over channel planes, with a backward pass that routes each window's gradient to
//! its maximum, the first one in row-major order on ties, as TensorFlow's does.

use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{contiguous_f32, items_per_task};

/// Max-pooling of `x` `(batch, channels, height, width)` over `pool` = (rows, columns) windows
/// placed every `strides` = (rows, columns); the result is
/// `(batch, channels, (height - pool[0]) / strides[0] + 1, (width - pool[1]) / strides[1] + 1)`.
///
/// f32 tensors on the CPU go through this module's kernel; anything else through candle's
/// `max_pool2d_with_stride`.
pub fn max_pool2d(x: &Tensor, pool: [usize; 2], strides: [usize; 2]) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 {
        return x.contiguous()?.apply_op1(MaxPool2d { pool, strides });
    }
    x.max_pool2d_with_stride((pool[0], pool[1]), (strides[0], strides[1]))
}

/// Sizes of one pooling: planes of `height × width` in, planes of `oh × ow` out.
#[derive(Debug, Clone, Copy)]
pub(super) struct PoolGeometry {
    pub planes: usize,
    height: usize,
    width: usize,
    pub pool: [usize; 2],
    pub strides: [usize; 2],
    pub oh: usize,
    pub ow: usize,
}

impl PoolGeometry {
    pub(super) fn new(input: (usize, usize, usize, usize), pool: [usize; 2], strides: [usize; 2]) -> Result<Self> {
        let (batch, channels, height, width) = input;
        if pool.contains(&0) || strides.contains(&0) || pool[0] > height || pool[1] > width {
            bail!("max_pool2d: pool {pool:?} with strides {strides:?} does not fit input {input:?}");
        }
        let (oh, ow) = ((height - pool[0]) / strides[0] + 1, (width - pool[1]) / strides[1] + 1);
        Ok(PoolGeometry { planes: batch * channels, height, width, pool, strides, oh, ow })
    }

    fn input_plane(&self) -> usize {
        self.height * self.width
    }

    pub(super) fn output_plane(&self) -> usize {
        self.oh * self.ow
    }

    /// The largest value of every window of output row `y` of `plane`. Windows are swept row by
    /// row so that the inner loop runs along contiguous memory; `v > max` keeps the first of equal
    /// values, and NaN only where a window starts with it, as candle's max-pool does.
    fn row_max(&self, plane: &[f32], y: usize, values: &mut [f32]) {
        let ([ph, pw], [sh, sw]) = (self.pool, self.strides);
        let top = y * sh * self.width;
        for (x, value) in values.iter_mut().enumerate() {
            *value = plane[top + x * sw];
        }
        for start in (top..top + ph * self.width).step_by(self.width) {
            let row = &plane[start..start + self.width];
            for (x, value) in values.iter_mut().enumerate() {
                for &v in &row[x * sw..x * sw + pw] {
                    *value = if v > *value { v } else { *value };
                }
            }
        }
    }

    /// [`Self::row_max`] with, in `at`, where in the plane each maximum lies: the first one met in
    /// row-major order, as [`Self::argmax`] finds it.
    pub(super) fn row_max_at(&self, plane: &[f32], y: usize, values: &mut [f32], at: &mut [u32]) {
        let ([ph, pw], [sh, sw]) = (self.pool, self.strides);
        if [ph, pw, sh, sw] == [2; 4] {
            return self.row_max_at_2x2(plane, y, values, at);
        }
        let top = y * sh * self.width;
        for (x, (value, at)) in values.iter_mut().zip(at.iter_mut()).enumerate() {
            (*value, *at) = (plane[top + x * sw], (top + x * sw) as u32);
        }
        for start in (top..top + ph * self.width).step_by(self.width) {
            let row = &plane[start..start + self.width];
            for (x, (value, at)) in values.iter_mut().zip(at.iter_mut()).enumerate() {
                for (k, &v) in row[x * sw..x * sw + pw].iter().enumerate() {
                    let wins = v > *value;
                    *value = if wins { v } else { *value };
                    *at = if wins { (start + x * sw + k) as u32 } else { *at };
                }
            }
        }
    }

    /// [`Self::row_max_at`] for the common 2×2 windows at a stride of 2, as one branch-free pass
    /// over the two input rows.
    fn row_max_at_2x2(&self, plane: &[f32], y: usize, values: &mut [f32], at: &mut [u32]) {
        let (top, width) = (2 * y * self.width, self.width);
        let (upper, lower) = (&plane[top..top + width], &plane[top + width..top + 2 * width]);
        let windows = upper.chunks_exact(2).zip(lower.chunks_exact(2));
        for (x, ((value, at), (upper, lower))) in values.iter_mut().zip(at.iter_mut()).zip(windows).enumerate() {
            // Row-major order, strictly greater: the first of equal values wins.
            let (mut best, mut offset) = (upper[0], 0);
            for (v, candidate) in [(upper[1], 1), (lower[0], width), (lower[1], width + 1)] {
                offset = if v > best { candidate } else { offset };
                best = if v > best { v } else { best };
            }
            (*value, *at) = (best, (top + 2 * x + offset) as u32);
        }
    }

    /// Where the largest value of output `(y, x)`'s window lies in the plane: the first one met in
    /// row-major order, so that a tie (e.g. zeros after a ReLU) has a single winner. The update is
    /// branch-free, because on real data which element wins is unpredictable.
    fn argmax(&self, plane: &[f32], y: usize, x: usize) -> usize {
        let ([ph, pw], [sh, sw]) = (self.pool, self.strides);
        let first = y * sh * self.width + x * sw;
        let (mut best, mut at) = (plane[first], first);
        for start in (first..first + ph * self.width).step_by(self.width) {
            for (i, &v) in (start..).zip(&plane[start..start + pw]) {
                // All ones where v wins: a mask, which the compiler cannot turn into a branch.
                let wins = 0usize.wrapping_sub((v > best) as usize);
                at ^= (at ^ i) & wins;
                best = if v > best { v } else { best };
            }
        }
        at
    }
}

/// The forward op, `x → pooled`.
struct MaxPool2d {
    pool: [usize; 2],
    strides: [usize; 2],
}

impl CustomOp1 for MaxPool2d {
    fn name(&self) -> &'static str {
        "nnlab-max-pool2d"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (batch, channels, _, _) = layout.shape().dims4()?;
        let g = PoolGeometry::new(layout.shape().dims4()?, self.pool, self.strides)?;
        let x = contiguous_f32(storage, layout, "max_pool2d input")?;
        let mut out = vec![0.0f32; g.planes * g.output_plane()];
        let chunk = items_per_task(g.planes);
        out.par_chunks_mut(chunk * g.output_plane()).zip(x.par_chunks(chunk * g.input_plane())).for_each(|(out, x)| {
            for (out, plane) in out.chunks_exact_mut(g.output_plane()).zip(x.chunks_exact(g.input_plane())) {
                for (y, out_row) in out.chunks_exact_mut(g.ow).enumerate() {
                    g.row_max(plane, y, out_row);
                }
            }
        });
        Ok((CpuStorage::F32(out), (batch, channels, g.oh, g.ow).into()))
    }

    fn bwd(&self, x: &Tensor, _pooled: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x.apply_op2_no_bwd(&grad.contiguous()?, &MaxPool2dGrad { pool: self.pool, strides: self.strides })?))
    }
}

/// `(x, grad_pooled) → grad_x`: each window's maximum is found again in `x` (cheaper than keeping
/// indices alive from the forward pass) and receives the window's gradient.
struct MaxPool2dGrad {
    pool: [usize; 2],
    strides: [usize; 2],
}

impl CustomOp2 for MaxPool2dGrad {
    fn name(&self) -> &'static str {
        "nnlab-max-pool2d-grad"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, gs: &CpuStorage, gl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (batch, channels, _, _) = xl.shape().dims4()?;
        let g = PoolGeometry::new(xl.shape().dims4()?, self.pool, self.strides)?;
        if gl.shape().dims4()? != (batch, channels, g.oh, g.ow) {
            bail!("max_pool2d gradient: gradient {:?} does not match input {:?}", gl.shape(), xl.shape());
        }
        let x = contiguous_f32(xs, xl, "max_pool2d input")?;
        let grad = contiguous_f32(gs, gl, "max_pool2d output gradient")?;
        let mut grad_x = vec![0.0f32; x.len()];
        let chunk = items_per_task(g.planes);
        // Windows never span two planes, so planes are independent and each is summed in order.
        grad_x
            .par_chunks_mut(chunk * g.input_plane())
            .zip(x.par_chunks(chunk * g.input_plane()))
            .zip(grad.par_chunks(chunk * g.output_plane()))
            .for_each(|((grad_x, x), grad)| {
                let planes = grad_x.chunks_exact_mut(g.input_plane()).zip(x.chunks_exact(g.input_plane()));
                for ((grad_x, plane), grad) in planes.zip(grad.chunks_exact(g.output_plane())) {
                    for (y, grad_row) in grad.chunks_exact(g.ow).enumerate() {
                        for (x, v) in grad_row.iter().enumerate() {
                            grad_x[g.argmax(plane, y, x)] += v;
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(grad_x), xl.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(rng: &mut ChaCha8Rng, dims: &[usize]) -> Tensor {
        let values: Vec<f32> = (0..dims.iter().product()).map(|_| rng.random_range(-1.0..1.0)).collect();
        Tensor::from_vec(values, dims, &Device::Cpu).unwrap()
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    /// The pooled output and the gradient of `sum(pooled * weights)` with respect to `x`, by `pool`.
    fn output_and_grad(pool: impl Fn(&Tensor) -> Tensor, x: &Tensor, weights: &Tensor) -> (Vec<f32>, Vec<f32>) {
        let x = Var::from_tensor(x).unwrap();
        let out = pool(x.as_tensor());
        let grads = (&out * weights).unwrap().sum_all().unwrap().backward().unwrap();
        (values(&out), values(grads.get(&x).unwrap()))
    }

    /// The gradient of `sum(pooled * weights)` by definition: each window's weight goes to the
    /// position of its maximum. (candle 0.11's own max-pool gradient cannot serve as the reference:
    /// it scales each window's gradient by (number of maxima) / (window area), 1/4 for a 2×2 pool.)
    fn reference_grad(x: &Tensor, weights: &Tensor, pool: [usize; 2], strides: [usize; 2]) -> Vec<f32> {
        let (b, c, h, w) = x.dims4().unwrap();
        let (_, _, oh, ow) = weights.dims4().unwrap();
        let (xs, ws) = (values(x), values(weights));
        let mut grad = vec![0.0f32; xs.len()];
        for (plane, y, x) in (0..b * c).flat_map(|p| (0..oh).flat_map(move |y| (0..ow).map(move |x| (p, y, x)))) {
            let window =
                (0..pool[0] * pool[1]).map(|k| plane * h * w + (y * strides[0] + k / pool[1]) * w + x * strides[1] + k % pool[1]);
            let at = window.reduce(|best, i| if xs[i] > xs[best] { i } else { best }).unwrap();
            grad[at] += ws[(plane * oh + y) * ow + x];
        }
        grad
    }

    #[test]
    fn output_matches_candles_and_gradient_its_definition() {
        // (batch, channels, height, width, pool, strides): odd sizes drop a trailing row or column,
        // strides below the pool overlap the windows.
        let cases = [
            (2, 3, 8, 6, [2, 2], [2, 2]),
            (1, 2, 7, 9, [2, 2], [2, 2]),
            (3, 1, 9, 9, [3, 3], [3, 3]),
            (2, 4, 5, 8, [1, 2], [1, 2]),
            (4, 2, 6, 7, [3, 2], [3, 2]),
            (2, 3, 7, 8, [3, 3], [2, 2]),
            (1, 2, 6, 9, [2, 3], [1, 2]),
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(17);
        for (b, c, h, w, pool, strides) in cases {
            let what = format!("x ({b}, {c}, {h}, {w}), pool {pool:?}, strides {strides:?}");
            let x = random(&mut rng, &[b, c, h, w]);
            let (oh, ow) = ((h - pool[0]) / strides[0] + 1, (w - pool[1]) / strides[1] + 1);
            let weights = random(&mut rng, &[b, c, oh, ow]);
            let (out, grad) = output_and_grad(|x| max_pool2d(x, pool, strides).unwrap(), &x, &weights);
            let want = x.max_pool2d_with_stride((pool[0], pool[1]), (strides[0], strides[1])).unwrap();
            assert_eq!(out, values(&want), "output, {what}");
            assert_eq!(grad, reference_grad(&x, &weights, pool, strides), "gradient, {what}");
        }
    }

    #[test]
    fn row_sweep_finds_the_same_maxima_as_the_window_search() {
        // Values from {0, 1, 2}: most windows hold ties, which both must settle the same way.
        let mut rng = ChaCha8Rng::seed_from_u64(31);
        for (h, w, pool, strides) in
            [(8, 6, [2, 2], [2, 2]), (7, 9, [2, 2], [2, 2]), (7, 9, [3, 2], [2, 3]), (5, 5, [2, 3], [1, 1])]
        {
            let g = PoolGeometry::new((1, 1, h, w), pool, strides).unwrap();
            let plane: Vec<f32> = (0..h * w).map(|_| rng.random_range(0..3) as f32).collect();
            for y in 0..g.oh {
                let (mut values, mut at) = (vec![f32::NAN; g.ow], vec![u32::MAX; g.ow]);
                g.row_max_at(&plane, y, &mut values, &mut at);
                let want: Vec<u32> = (0..g.ow).map(|x| g.argmax(&plane, y, x) as u32).collect();
                assert_eq!(at, want, "{h}×{w}, pool {pool:?}/{strides:?}, row {y}");
                assert!(values.iter().zip(&at).all(|(&v, &i)| v == plane[i as usize]));
            }
        }
    }

    #[test]
    fn a_tie_sends_the_gradient_to_the_first_maximum() {
        let x = Tensor::from_vec(vec![0.0f32, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0], (1, 1, 2, 4), &Device::Cpu).unwrap();
        let weights = Tensor::from_vec(vec![2.0f32, 3.0], (1, 1, 1, 2), &Device::Cpu).unwrap();
        let (out, grad) = output_and_grad(|x| max_pool2d(x, [2, 2], [2, 2]).unwrap(), &x, &weights);
        assert_eq!(out, [0.0, 1.0]);
        assert_eq!(grad, [2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.0]);
    }

    #[test]
    fn strided_inputs_other_dtypes_and_impossible_shapes() {
        let mut rng = ChaCha8Rng::seed_from_u64(29);
        let x = random(&mut rng, &[2, 6, 4, 3]).permute((0, 3, 1, 2)).unwrap();
        let want = x.max_pool2d(2).unwrap();
        assert_eq!(values(&max_pool2d(&x, [2, 2], [2, 2]).unwrap()), values(&want));
        let wide = max_pool2d(&x.to_dtype(DType::F64).unwrap(), [2, 2], [2, 2]).unwrap();
        assert_eq!(values(&wide.to_dtype(DType::F32).unwrap()), values(&want));
        assert!(max_pool2d(&x, [7, 2], [7, 2]).is_err());
        assert!(max_pool2d(&x, [2, 2], [0, 2]).is_err());
    }
}
