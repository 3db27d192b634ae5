//! Stride-1 2-D convolution of NCHW f32 batches as im2col + gemm, with its backward pass:
//!
//! - forward, per item: `out_b (F × OH·OW) = W (F × C·kh·kw) · cols_b`;
//! - input gradient, per item: `grad_x_b = col2im(Wᵀ · grad_b)`;
//! - kernel gradient: `grad_W = Σ_b grad_b · cols_bᵀ`, summed over fixed chunks of items and then
//!   over the chunks in order, so that it is bit-identical whatever the thread count.
//!
//! See [`super::im2col`] for the layout of `cols`.

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::gemm::{matmul, Matrix};
use super::im2col::{col2im, im2col, ConvGeometry};
use super::{contiguous_f32, items_per_task, with_scratch};

/// Stride-1 convolution of `x` `(batch, channels, height, width)` with `kernel`
/// `(filters, channels, kh, kw)`, zero-padded by `pad` = (top, bottom, left, right); the result is
/// `(batch, filters, height + top + bottom - kh + 1, width + left + right - kw + 1)`.
///
/// f32 tensors on the CPU go through this module's kernels; anything else through candle's
/// `conv2d` (after explicit padding where it is uneven, which candle's op cannot express).
pub fn conv2d(x: &Tensor, kernel: &Tensor, pad: [usize; 4]) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 && kernel.dtype() == DType::F32 {
        return x.contiguous()?.apply_op2(&kernel.contiguous()?, Conv2d { pad });
    }
    let [top, bottom, left, right] = pad;
    if top == bottom && left == right && top == left {
        return x.conv2d(kernel, top, 1, 1, 1);
    }
    x.pad_with_zeros(2, top, bottom)?.pad_with_zeros(3, left, right)?.conv2d(kernel, 0, 1, 1, 1)
}

/// The forward op, `(x, kernel) → out`.
struct Conv2d {
    pad: [usize; 4],
}

impl CustomOp2 for Conv2d {
    fn name(&self) -> &'static str {
        "nnlab-conv2d"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, ks: &CpuStorage, kl: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = ConvGeometry::new(xl.shape().dims4()?, kl.shape().dims4()?, self.pad)?;
        let x = contiguous_f32(xs, xl, "conv2d input")?;
        let kernel = Matrix::row_major(contiguous_f32(ks, kl, "conv2d kernel")?, g.filters, g.taps());
        let mut out = vec![0.0f32; g.batch * g.output_item()];
        let chunk = items_per_task(g.batch);
        out.par_chunks_mut(chunk * g.output_item()).zip(x.par_chunks(chunk * g.input_item())).for_each(|(out, x)| {
            with_scratch(g.taps() * g.out_positions(), |cols| {
                for (out, x) in out.chunks_exact_mut(g.output_item()).zip(x.chunks_exact(g.input_item())) {
                    im2col(&g, x, cols);
                    matmul(out, kernel, Matrix::row_major(cols, g.taps(), g.out_positions()), false);
                }
            })
        });
        Ok((CpuStorage::F32(out), (g.batch, g.filters, g.oh, g.ow).into()))
    }

    /// Gradients for the arguments that take part in autograd; a network's input does not, so the
    /// first layer skips its (unused) input gradient.
    fn bwd(&self, x: &Tensor, kernel: &Tensor, _out: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let grad_x = if x.track_op() { Some(grad.apply_op2_no_bwd(kernel, &Conv2dInputGrad { pad: self.pad })?) } else { None };
        let grad_kernel =
            if kernel.track_op() { Some(x.apply_op2_no_bwd(&grad, &Conv2dKernelGrad { pad: self.pad })?) } else { None };
        Ok((grad_x, grad_kernel))
    }
}

/// `(grad_out, kernel) → grad_x`.
struct Conv2dInputGrad {
    pad: [usize; 4],
}

impl CustomOp2 for Conv2dInputGrad {
    fn name(&self) -> &'static str {
        "nnlab-conv2d-input-grad"
    }

    fn cpu_fwd(&self, gs: &CpuStorage, gl: &Layout, ks: &CpuStorage, kl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (batch, _, oh, ow) = gl.shape().dims4()?;
        let (filters, channels, kh, kw) = kl.shape().dims4()?;
        let [top, bottom, left, right] = self.pad;
        // Stride 1: oh = height + top + bottom - kh + 1, and likewise for the width.
        let (height, width) = ((oh + kh - 1).checked_sub(top + bottom), (ow + kw - 1).checked_sub(left + right));
        let (Some(height), Some(width)) = (height, width) else {
            candle_core::bail!("conv2d input gradient: output {oh}×{ow} is too small for kernel {kh}×{kw} and padding {:?}", self.pad)
        };
        let g = ConvGeometry::new((batch, channels, height, width), (filters, channels, kh, kw), self.pad)?;
        if gl.shape().dims4()? != (batch, filters, g.oh, g.ow) {
            candle_core::bail!("conv2d input gradient: gradient {:?} does not match kernel {:?}", gl.shape(), kl.shape());
        }
        let grad = contiguous_f32(gs, gl, "conv2d output gradient")?;
        let kernel_t = Matrix::row_major(contiguous_f32(ks, kl, "conv2d kernel")?, g.filters, g.taps()).t();
        let mut grad_x = vec![0.0f32; g.batch * g.input_item()];
        let chunk = items_per_task(g.batch);
        grad_x.par_chunks_mut(chunk * g.input_item()).zip(grad.par_chunks(chunk * g.output_item())).for_each(
            |(grad_x, grad)| {
                with_scratch(g.taps() * g.out_positions(), |cols| {
                    for (grad_x, grad) in grad_x.chunks_exact_mut(g.input_item()).zip(grad.chunks_exact(g.output_item())) {
                        matmul(cols, kernel_t, Matrix::row_major(grad, g.filters, g.out_positions()), false);
                        col2im(&g, cols, grad_x);
                    }
                })
            },
        );
        Ok((CpuStorage::F32(grad_x), (g.batch, g.channels, g.height, g.width).into()))
    }
}

/// Batch items whose kernel gradients are summed together before the per-chunk sums are added up.
/// A constant, not a function of the thread count, so the summation order is always the same.
const KERNEL_GRAD_CHUNK: usize = 8;

/// `(x, grad_out) → grad_kernel`.
struct Conv2dKernelGrad {
    pad: [usize; 4],
}

impl CustomOp2 for Conv2dKernelGrad {
    fn name(&self) -> &'static str {
        "nnlab-conv2d-kernel-grad"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, gs: &CpuStorage, gl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (batch, channels, height, width) = xl.shape().dims4()?;
        let (_, filters, oh, ow) = gl.shape().dims4()?;
        let [top, bottom, left, right] = self.pad;
        // Stride 1: kh = height + top + bottom - oh + 1, and likewise for the width.
        let (kh, kw) = ((height + top + bottom + 1).checked_sub(oh), (width + left + right + 1).checked_sub(ow));
        let (Some(kh), Some(kw)) = (kh, kw) else {
            candle_core::bail!("conv2d kernel gradient: output {oh}×{ow} is larger than the padded input")
        };
        let g = ConvGeometry::new((batch, channels, height, width), (filters, channels, kh, kw), self.pad)?;
        if gl.shape().dims4()? != (batch, filters, g.oh, g.ow) {
            candle_core::bail!("conv2d kernel gradient: gradient {:?} does not match input {:?}", gl.shape(), xl.shape());
        }
        let x = contiguous_f32(xs, xl, "conv2d input")?;
        let grad = contiguous_f32(gs, gl, "conv2d output gradient")?;
        let kernel_len = g.filters * g.taps();
        let partials: Vec<Vec<f32>> = x
            .par_chunks(KERNEL_GRAD_CHUNK * g.input_item())
            .zip(grad.par_chunks(KERNEL_GRAD_CHUNK * g.output_item()))
            .map(|(x, grad)| {
                let mut partial = vec![0.0f32; kernel_len];
                with_scratch(g.taps() * g.out_positions(), |cols| {
                    let items = x.chunks_exact(g.input_item()).zip(grad.chunks_exact(g.output_item()));
                    for (item, (x, grad)) in items.enumerate() {
                        im2col(&g, x, cols);
                        let grad = Matrix::row_major(grad, g.filters, g.out_positions());
                        matmul(&mut partial, grad, Matrix::row_major(cols, g.taps(), g.out_positions()).t(), item > 0);
                    }
                });
                partial
            })
            .collect();
        let mut grad_kernel = vec![0.0f32; kernel_len];
        for partial in &partials {
            for (acc, v) in grad_kernel.iter_mut().zip(partial) {
                *acc += v;
            }
        }
        Ok((CpuStorage::F32(grad_kernel), (g.filters, g.channels, g.kh, g.kw).into()))
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

    /// candle's own convolution, explicitly padded: the reference.
    fn reference(x: &Tensor, kernel: &Tensor, [top, bottom, left, right]: [usize; 4]) -> Tensor {
        let padded = x.pad_with_zeros(2, top, bottom).unwrap().pad_with_zeros(3, left, right).unwrap();
        padded.conv2d(kernel, 0, 1, 1, 1).unwrap()
    }

    /// Largest difference relative to the reference's largest magnitude.
    fn assert_close(got: &Tensor, want: &Tensor, what: &str) {
        assert_eq!(got.dims(), want.dims(), "{what}: shapes");
        let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let want = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let scale = want.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        let worst = got.iter().zip(&want).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(worst <= 1e-4 * scale, "{what}: off by {worst} at scale {scale}");
    }

    /// Output and both gradients of `loss = sum(conv(x, k) * weights)`, by `conv`.
    fn output_and_grads(
        conv: impl Fn(&Tensor, &Tensor) -> Tensor,
        x: &Tensor,
        kernel: &Tensor,
        weights: &Tensor,
    ) -> (Tensor, Tensor, Tensor) {
        let (x, kernel) = (Var::from_tensor(x).unwrap(), Var::from_tensor(kernel).unwrap());
        let out = conv(x.as_tensor(), kernel.as_tensor());
        let grads = (&out * weights).unwrap().sum_all().unwrap().backward().unwrap();
        (out, grads.get(&x).unwrap().clone(), grads.get(&kernel).unwrap().clone())
    }

    #[test]
    fn output_and_gradients_match_candles_convolution() {
        // (batch, channels, height, width, filters, kh, kw, padding)
        let cases: [(usize, usize, usize, usize, usize, usize, usize, [usize; 4]); 10] = [
            (1, 1, 5, 5, 1, 1, 1, [0; 4]),
            (2, 3, 7, 9, 4, 3, 3, [0; 4]),
            (3, 2, 6, 6, 5, 3, 3, [1; 4]),
            (2, 4, 9, 7, 3, 5, 5, [2; 4]),
            (1, 3, 8, 11, 2, 5, 3, [2, 2, 1, 1]),
            (4, 2, 5, 6, 3, 2, 2, [0, 1, 0, 1]),
            (2, 5, 7, 7, 6, 2, 2, [0; 4]),
            (1, 2, 4, 3, 2, 3, 2, [1, 2, 2, 0]),
            (3, 1, 1, 2, 2, 5, 5, [4, 0, 3, 1]),
            (5, 32, 13, 12, 16, 3, 3, [0; 4]),
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        for (b, c, h, w, f, kh, kw, pad) in cases {
            let what = format!("x ({b}, {c}, {h}, {w}), kernel ({f}, {c}, {kh}, {kw}), pad {pad:?}");
            let x = random(&mut rng, &[b, c, h, w]);
            let kernel = random(&mut rng, &[f, c, kh, kw]);
            let (oh, ow) = (h + pad[0] + pad[1] - kh + 1, w + pad[2] + pad[3] - kw + 1);
            let weights = random(&mut rng, &[b, f, oh, ow]);
            let (out, grad_x, grad_k) = output_and_grads(|x, k| conv2d(x, k, pad).unwrap(), &x, &kernel, &weights);
            let (want_out, want_x, want_k) = output_and_grads(|x, k| reference(x, k, pad), &x, &kernel, &weights);
            assert_close(&out, &want_out, &format!("output, {what}"));
            assert_close(&grad_x, &want_x, &format!("input gradient, {what}"));
            assert_close(&grad_k, &want_k, &format!("kernel gradient, {what}"));
        }
    }

    #[test]
    fn strided_inputs_are_read_by_their_layout() {
        // NHWC images permuted to NCHW, as a model's first layer receives them.
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let x = random(&mut rng, &[3, 6, 5, 2]).permute((0, 3, 1, 2)).unwrap();
        let kernel = random(&mut rng, &[4, 3, 3, 2]).narrow(1, 1, 2).unwrap();
        assert!(!x.is_contiguous() && !kernel.is_contiguous());
        assert_close(&conv2d(&x, &kernel, [1, 1, 0, 1]).unwrap(), &reference(&x, &kernel, [1, 1, 0, 1]), "strided");
    }

    #[test]
    fn an_input_outside_autograd_gets_no_gradient() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let x = random(&mut rng, &[2, 3, 6, 6]);
        let kernel = Var::from_tensor(&random(&mut rng, &[4, 3, 3, 3])).unwrap();
        let weights = random(&mut rng, &[2, 4, 4, 4]);
        let grads = (conv2d(&x, kernel.as_tensor(), [0; 4]).unwrap() * &weights).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&x).is_none());
        let (_, _, want_k) = output_and_grads(|x, k| reference(x, k, [0; 4]), &x, kernel.as_tensor(), &weights);
        assert_close(grads.get(&kernel).unwrap(), &want_k, "kernel gradient of a first layer");
    }

    #[test]
    fn results_are_bit_identical_for_any_thread_count() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let x = random(&mut rng, &[37, 3, 9, 8]);
        let kernel = random(&mut rng, &[5, 3, 3, 3]);
        let weights = random(&mut rng, &[37, 5, 9, 8]);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let (out, grad_x, grad_k) =
                pool.install(|| output_and_grads(|x, k| conv2d(x, k, [1; 4]).unwrap(), &x, &kernel, &weights));
            [out, grad_x, grad_k].map(|t| t.flatten_all().unwrap().to_vec1::<f32>().unwrap())
        };
        let one = run(1);
        assert_eq!(one, run(1));
        assert_eq!(one, run(3));
    }

    #[test]
    fn other_dtypes_fall_back_to_candle() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let x = random(&mut rng, &[2, 2, 5, 4]);
        let kernel = random(&mut rng, &[3, 2, 2, 2]);
        let pad = [0, 1, 0, 1];
        let got = conv2d(&x.to_dtype(DType::F64).unwrap(), &kernel.to_dtype(DType::F64).unwrap(), pad).unwrap();
        assert_eq!(got.dtype(), DType::F64);
        assert_close(&got.to_dtype(DType::F32).unwrap(), &reference(&x, &kernel, pad), "f64");
    }

    #[test]
    fn impossible_shapes_are_errors() {
        let x = Tensor::zeros((1, 2, 4, 4), DType::F32, &Device::Cpu).unwrap();
        assert!(conv2d(&x, &Tensor::zeros((3, 1, 3, 3), DType::F32, &Device::Cpu).unwrap(), [0; 4]).is_err());
        assert!(conv2d(&x, &Tensor::zeros((3, 2, 5, 5), DType::F32, &Device::Cpu).unwrap(), [0; 4]).is_err());
    }
}
