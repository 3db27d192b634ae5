//! Stride-1 2-D convolution of NCHW f32 batches fused with its per-channel bias and activation,
//! `act(conv(x, W) + b)`, as im2col + gemm, with a backward pass that computes every gradient in
//! one sweep over the batch:
//!
//! - forward, per item: `z_b (F × OH·OW) = W (F × C·kh·kw) · cols_b`, then bias and activation
//!   while the item's output is still in cache;
//! - backward, per item: `gz_b = grad_b · act'(out_b)`; `grad_W += gz_b · cols_bᵀ`,
//!   `grad_b += row sums of gz_b` and, when the input takes part in autograd,
//!   `grad_x_b = col2im(Wᵀ · gz_b)`.
//!
//! Fusing keeps the pre-activation, the biased map and their gradients (each as large as the
//! output) out of candle's graph: every graph node costs candle a fresh gradient buffer, a zeroed
//! accumulator and an addition, which on these maps cost more than the arithmetic. The kernel and
//! bias gradients are summed over fixed chunks of items and then over the chunks in order, so that
//! they are bit-identical whatever the thread count.
//!
//! See [`super::im2col`] for the layout of `cols`, and [`super::conv_pool`] for this layer fused
//! with the max-pooling that follows it.

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::activation::Pointwise;
use super::gemm::{matmul, Matrix};
use super::im2col::{col2im, im2col, ConvGeometry};
use super::{contiguous_f32, items_per_task, with_host_f32, with_scratch};

/// `act(conv(x, kernel) + bias)`: stride-1 convolution of `x` `(batch, channels, height, width)`
/// with `kernel` `(filters, channels, kh, kw)`, zero-padded by `pad` = (top, bottom, left, right),
/// plus `bias` `(filters,)` on every pixel of its channel; the result is
/// `(batch, filters, height + top + bottom - kh + 1, width + left + right - kw + 1)`.
///
/// f32 tensors on the CPU go through this module's kernels; anything else through candle's
/// `conv2d` (after explicit padding where it is uneven, which candle's op cannot express),
/// `broadcast_add` and activation.
pub fn conv2d_bias_act(x: &Tensor, kernel: &Tensor, bias: &Tensor, pad: [usize; 4], act: Pointwise) -> Result<Tensor> {
    if x.device().is_cpu() && [x, kernel, bias].iter().all(|t| t.dtype() == DType::F32) {
        return x.contiguous()?.apply_op3(&kernel.contiguous()?, &bias.contiguous()?, ConvBiasAct { pad, act });
    }
    let [top, bottom, left, right] = pad;
    let z = if top == bottom && left == right && top == left {
        x.conv2d(kernel, top, 1, 1, 1)?
    } else {
        x.pad_with_zeros(2, top, bottom)?.pad_with_zeros(3, left, right)?.conv2d(kernel, 0, 1, 1, 1)?
    };
    act.apply_tensor(&z.broadcast_add(&bias.reshape((1, (), 1, 1))?)?)
}

/// The plain convolution, `conv2d_bias_act` with no bias and no activation.
pub fn conv2d(x: &Tensor, kernel: &Tensor, pad: [usize; 4]) -> Result<Tensor> {
    let no_bias = Tensor::zeros(kernel.dim(0)?, kernel.dtype(), kernel.device())?;
    conv2d_bias_act(x, kernel, &no_bias, pad, Pointwise::Linear)
}

/// The fused op, `(x, kernel, bias) → out`.
struct ConvBiasAct {
    pad: [usize; 4],
    act: Pointwise,
}

impl CustomOp3 for ConvBiasAct {
    fn name(&self) -> &'static str {
        "nnlab-conv2d-bias-act"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ks: &CpuStorage,
        kl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (g, [x, kernel, bias]) = conv_operands(self.pad, [(xs, xl), (ks, kl), (bs, bl)])?;
        let mut out = vec![0.0f32; g.batch * g.output_item()];
        let chunk = items_per_task(g.batch);
        out.par_chunks_mut(chunk * g.output_item()).zip(x.par_chunks(chunk * g.input_item())).for_each(|(out, x)| {
            with_scratch(g.taps() * g.out_positions(), |cols| {
                for (out, x) in out.chunks_exact_mut(g.output_item()).zip(x.chunks_exact(g.input_item())) {
                    item_forward(&g, self.act, [kernel, bias], x, cols, out);
                }
            })
        });
        Ok((CpuStorage::F32(out), (g.batch, g.filters, g.oh, g.ow).into()))
    }

    /// All gradients in one sweep; a network's input takes no part in autograd, so the first
    /// layer skips its (unused) input gradient.
    fn bwd(
        &self,
        x: &Tensor,
        kernel: &Tensor,
        bias: &Tensor,
        out: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = ConvGeometry::new(x.dims4()?, kernel.dims4()?, self.pad)?;
        let grad = grad.contiguous()?;
        let grads = with_host_f32([x, kernel, out, &grad], |[xs, ks, outs, grads]| {
            let item = g.output_item();
            let grad_z_of = |i: usize, grad_z: &mut [f32]| {
                self.act.backprop(&outs[i * item..(i + 1) * item], &grads[i * item..(i + 1) * item], grad_z)
            };
            Ok(backward(&g, [xs, ks], x.track_op(), grad_z_of))
        })?;
        grads.into_tensors([x, kernel, bias])
    }
}

/// The geometry of a convolution and its input, kernel and bias values, from a custom op's
/// `(storage, layout)` operands; a bias that does not match the filters is an error.
pub(super) fn conv_operands<'a>(
    pad: [usize; 4],
    [(xs, xl), (ks, kl), (bs, bl)]: [(&'a CpuStorage, &Layout); 3],
) -> Result<(ConvGeometry, [&'a [f32]; 3])> {
    let g = ConvGeometry::new(xl.shape().dims4()?, kl.shape().dims4()?, pad)?;
    if bl.shape().dims() != [g.filters] {
        candle_core::bail!("conv2d: a bias {:?} for {} filters", bl.shape(), g.filters);
    }
    let values = [
        contiguous_f32(xs, xl, "conv2d input")?,
        contiguous_f32(ks, kl, "conv2d kernel")?,
        contiguous_f32(bs, bl, "conv2d bias")?,
    ];
    Ok((g, values))
}

/// `out = act(conv(x, kernel) + bias)` for one item, through `cols` (`taps × out_positions` of scratch).
pub(super) fn item_forward(
    g: &ConvGeometry,
    act: Pointwise,
    [kernel, bias]: [&[f32]; 2],
    x: &[f32],
    cols: &mut [f32],
    out: &mut [f32],
) {
    im2col(g, x, cols);
    let kernel = Matrix::row_major(kernel, g.filters, g.taps());
    matmul(out, kernel, Matrix::row_major(cols, g.taps(), g.out_positions()), false);
    for (plane, &b) in out.chunks_exact_mut(g.out_positions()).zip(bias) {
        act.add_bias_and_apply(plane, b);
    }
}

/// Batch items whose kernel and bias gradients are summed together before the per-chunk sums are
/// added up. A constant, not a function of the thread count, so the summation order is always the same.
const GRAD_CHUNK: usize = 8;

/// The gradients of one convolution, as host vectors.
pub(super) struct ConvGrads {
    pub input: Option<Vec<f32>>,
    pub kernel: Vec<f32>,
    pub bias: Vec<f32>,
}

impl ConvGrads {
    /// The gradients as tensors shaped like the op's operands `[x, kernel, bias]`, for those that
    /// take part in autograd.
    pub(super) fn into_tensors(
        self,
        [x, kernel, bias]: [&Tensor; 3],
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let device = x.device();
        let grad_x = self.input.map(|v| Tensor::from_vec(v, x.shape(), device)).transpose()?;
        let grad_k = kernel.track_op().then(|| Tensor::from_vec(self.kernel, kernel.shape(), device)).transpose()?;
        let grad_b = bias.track_op().then(|| Tensor::from_vec(self.bias, bias.shape(), device)).transpose()?;
        Ok((grad_x, grad_k, grad_b))
    }
}

/// The gradients of a convolution over the batch `x`, computed chunk by chunk in parallel:
/// `chunk_grads(first_item, x, grad_x)` returns one chunk's kernel gradient (`kernel_len` values,
/// in whatever layout it keeps) and bias gradient, and writes the chunk's input gradient into
/// `grad_x` when it is given (only `with_input`). The chunks' sums are added in chunk order.
pub(super) fn sum_over_chunks(
    g: &ConvGeometry,
    x: &[f32],
    with_input: bool,
    kernel_len: usize,
    chunk_grads: impl Fn(usize, &[f32], Option<&mut [f32]>) -> (Vec<f32>, Vec<f32>) + Sync,
) -> ConvGrads {
    let chunks = g.batch.div_ceil(GRAD_CHUNK);
    let mut grad_x = vec![0.0f32; if with_input { g.batch * g.input_item() } else { 0 }];
    let targets: Vec<Option<&mut [f32]>> = if with_input {
        grad_x.chunks_mut(GRAD_CHUNK * g.input_item()).map(Some).collect()
    } else {
        (0..chunks).map(|_| None).collect()
    };
    let partials: Vec<(Vec<f32>, Vec<f32>)> = targets
        .into_par_iter()
        .zip(x.par_chunks(GRAD_CHUNK * g.input_item()))
        .enumerate()
        .map(|(chunk, (grad_x, x))| chunk_grads(chunk * GRAD_CHUNK, x, grad_x))
        .collect();
    let (mut grad_k, mut grad_b) = (vec![0.0f32; kernel_len], vec![0.0f32; g.filters]);
    for (partial_k, partial_b) in &partials {
        grad_k.iter_mut().zip(partial_k).for_each(|(acc, v)| *acc += v);
        grad_b.iter_mut().zip(partial_b).for_each(|(acc, v)| *acc += v);
    }
    ConvGrads { input: with_input.then_some(grad_x), kernel: grad_k, bias: grad_b }
}

/// All gradients from the input `x` and the kernel (contiguous), given each item's gradient with
/// respect to the pre-activation map `z` (`F × OH·OW`), which `grad_z_of(item, grad_z)` writes;
/// the input gradient only `with_input`.
fn backward(
    g: &ConvGeometry,
    [x, kernel]: [&[f32]; 2],
    with_input: bool,
    grad_z_of: impl Fn(usize, &mut [f32]) + Sync,
) -> ConvGrads {
    let kernel_t = Matrix::row_major(kernel, g.filters, g.taps()).t();
    let chunk_grads =
        |first_item, x: &[f32], grad_x: Option<&mut [f32]>| chunk_backward(g, kernel_t, x, first_item, &grad_z_of, grad_x);
    let mut grads = sum_over_chunks(g, x, with_input, g.taps() * g.filters, chunk_grads);
    // The sums were kept transposed, `taps × filters`.
    let mut grad_k = vec![0.0f32; g.filters * g.taps()];
    for (tap, row) in grads.kernel.chunks_exact(g.filters).enumerate() {
        row.iter().enumerate().for_each(|(filter, &v)| grad_k[filter * g.taps() + tap] = v);
    }
    grads.kernel = grad_k;
    grads
}

/// The kernel gradient (transposed, `taps × filters`) and the bias gradient summed over one chunk
/// of items (`x`, the first being batch item `first_item`), in item order, and each item's input
/// gradient written into `grad_x` if given.
fn chunk_backward(
    g: &ConvGeometry,
    kernel_t: Matrix<'_>,
    x: &[f32],
    first_item: usize,
    grad_z_of: &(impl Fn(usize, &mut [f32]) + Sync),
    mut grad_x: Option<&mut [f32]>,
) -> (Vec<f32>, Vec<f32>) {
    let (mut grad_kt, mut grad_b) = (vec![0.0f32; g.taps() * g.filters], vec![0.0f32; g.filters]);
    let (cols_len, positions) = (g.taps() * g.out_positions(), g.out_positions());
    with_scratch(2 * cols_len + g.output_item(), |scratch| {
        let (cols, rest) = scratch.split_at_mut(cols_len);
        let (grad_cols, grad_z) = rest.split_at_mut(cols_len);
        for (item, x) in x.chunks_exact(g.input_item()).enumerate() {
            grad_z_of(first_item + item, grad_z);
            for (acc, plane) in grad_b.iter_mut().zip(grad_z.chunks_exact(positions)) {
                *acc += plane.iter().sum::<f32>();
            }
            im2col(g, x, cols);
            let gz = Matrix::row_major(grad_z, g.filters, positions);
            // Transposed, `cols · gzᵀ`: the gemm crate packs `cols` faster in this orientation.
            matmul(&mut grad_kt, Matrix::row_major(cols, g.taps(), positions), gz.t(), item > 0);
            if let Some(grad_x) = grad_x.as_deref_mut() {
                matmul(grad_cols, kernel_t, gz, false);
                col2im(g, grad_cols, &mut grad_x[item * g.input_item()..(item + 1) * g.input_item()]);
            }
        }
    });
    (grad_kt, grad_b)
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

    /// candle's own convolution, explicitly padded, plus bias and activation: the reference.
    fn reference(x: &Tensor, kernel: &Tensor, bias: &Tensor, [top, bottom, left, right]: [usize; 4], act: Pointwise) -> Tensor {
        let padded = x.pad_with_zeros(2, top, bottom).unwrap().pad_with_zeros(3, left, right).unwrap();
        let z = padded.conv2d(kernel, 0, 1, 1, 1).unwrap().broadcast_add(&bias.reshape((1, (), 1, 1)).unwrap()).unwrap();
        act.apply_tensor(&z).unwrap()
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

    /// Output and the gradients of x, kernel and bias of `loss = sum(layer(x, k, b) * weights)`.
    fn output_and_grads(
        layer: impl Fn(&Tensor, &Tensor, &Tensor) -> Tensor,
        [x, kernel, bias]: [&Tensor; 3],
        weights: &Tensor,
    ) -> [Tensor; 4] {
        let vars = [x, kernel, bias].map(|t| Var::from_tensor(t).unwrap());
        let out = layer(vars[0].as_tensor(), vars[1].as_tensor(), vars[2].as_tensor());
        let grads = (&out * weights).unwrap().sum_all().unwrap().backward().unwrap();
        let [gx, gk, gb] = vars.map(|v| grads.get(&v).unwrap().clone());
        [out, gx, gk, gb]
    }

    #[test]
    fn output_and_gradients_match_candles_convolution_bias_and_activation() {
        // (batch, channels, height, width, filters, kh, kw, padding)
        type Case = (usize, usize, usize, usize, usize, usize, usize, [usize; 4]);
        let cases: [Case; 12] = [
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
            (11, 1, 9, 10, 7, 5, 5, [2; 4]),
            (19, 6, 6, 5, 9, 1, 1, [0; 4]),
        ];
        let acts = [Pointwise::Relu, Pointwise::Sigmoid, Pointwise::Linear];
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        for (case, (b, c, h, w, f, kh, kw, pad)) in cases.into_iter().enumerate() {
            let act = acts[case % acts.len()];
            let what = format!("x ({b}, {c}, {h}, {w}), kernel ({f}, {c}, {kh}, {kw}), pad {pad:?}, {act:?}");
            let x = random(&mut rng, &[b, c, h, w]);
            let kernel = random(&mut rng, &[f, c, kh, kw]);
            let bias = random(&mut rng, &[f]);
            let (oh, ow) = (h + pad[0] + pad[1] - kh + 1, w + pad[2] + pad[3] - kw + 1);
            let weights = random(&mut rng, &[b, f, oh, ow]);
            let ours = |x: &Tensor, k: &Tensor, bias: &Tensor| conv2d_bias_act(x, k, bias, pad, act).unwrap();
            let got = output_and_grads(ours, [&x, &kernel, &bias], &weights);
            let want = output_and_grads(|x, k, bias| reference(x, k, bias, pad, act), [&x, &kernel, &bias], &weights);
            for (name, (got, want)) in
                ["output", "input gradient", "kernel gradient", "bias gradient"].iter().zip(got.iter().zip(&want))
            {
                assert_close(got, want, &format!("{name}, {what}"));
            }
        }
    }

    #[test]
    fn plain_convolution_and_strided_inputs_read_by_their_layout() {
        // NHWC images permuted to NCHW, as a model's first layer receives them.
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let x = random(&mut rng, &[3, 6, 5, 2]).permute((0, 3, 1, 2)).unwrap();
        let kernel = random(&mut rng, &[4, 3, 3, 2]).narrow(1, 1, 2).unwrap();
        assert!(!x.is_contiguous() && !kernel.is_contiguous());
        let no_bias = Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap();
        let want = reference(&x, &kernel, &no_bias, [1, 1, 0, 1], Pointwise::Linear);
        assert_close(&conv2d(&x, &kernel, [1, 1, 0, 1]).unwrap(), &want, "strided");
    }

    #[test]
    fn an_input_outside_autograd_gets_no_gradient() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (x, weights) = (random(&mut rng, &[2, 3, 6, 6]), random(&mut rng, &[2, 4, 4, 4]));
        let kernel = Var::from_tensor(&random(&mut rng, &[4, 3, 3, 3])).unwrap();
        let bias = Var::from_tensor(&random(&mut rng, &[4])).unwrap();
        let out = conv2d_bias_act(&x, kernel.as_tensor(), bias.as_tensor(), [0; 4], Pointwise::Sigmoid).unwrap();
        let grads = (out * &weights).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&x).is_none());
        let reference = |x: &Tensor, k: &Tensor, b: &Tensor| reference(x, k, b, [0; 4], Pointwise::Sigmoid);
        let [_, _, want_k, want_b] = output_and_grads(reference, [&x, kernel.as_tensor(), bias.as_tensor()], &weights);
        assert_close(grads.get(&kernel).unwrap(), &want_k, "kernel gradient of a first layer");
        assert_close(grads.get(&bias).unwrap(), &want_b, "bias gradient of a first layer");
    }

    #[test]
    fn results_are_bit_identical_for_any_thread_count() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let x = random(&mut rng, &[37, 3, 9, 8]);
        let kernel = random(&mut rng, &[5, 3, 3, 3]);
        let bias = random(&mut rng, &[5]);
        let weights = random(&mut rng, &[37, 5, 9, 8]);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let layer = |x: &Tensor, k: &Tensor, b: &Tensor| conv2d_bias_act(x, k, b, [1; 4], Pointwise::Relu).unwrap();
            let results = pool.install(|| output_and_grads(layer, [&x, &kernel, &bias], &weights));
            results.map(|t| t.flatten_all().unwrap().to_vec1::<f32>().unwrap())
        };
        let one = run(1);
        assert_eq!(one, run(1));
        assert_eq!(one, run(3));
    }

    #[test]
    fn other_dtypes_fall_back_to_candle() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (x, kernel, bias) = (random(&mut rng, &[2, 2, 5, 4]), random(&mut rng, &[3, 2, 2, 2]), random(&mut rng, &[3]));
        let pad = [0, 1, 0, 1];
        let [x64, k64, b64] = [&x, &kernel, &bias].map(|t| t.to_dtype(DType::F64).unwrap());
        let got = conv2d_bias_act(&x64, &k64, &b64, pad, Pointwise::Relu).unwrap();
        assert_eq!(got.dtype(), DType::F64);
        assert_close(&got.to_dtype(DType::F32).unwrap(), &reference(&x, &kernel, &bias, pad, Pointwise::Relu), "f64");
    }

    #[test]
    fn impossible_shapes_are_errors() {
        let zeros = |dims: &[usize]| Tensor::zeros(dims, DType::F32, &Device::Cpu).unwrap();
        let x = zeros(&[1, 2, 4, 4]);
        assert!(conv2d(&x, &zeros(&[3, 1, 3, 3]), [0; 4]).is_err());
        assert!(conv2d(&x, &zeros(&[3, 2, 5, 5]), [0; 4]).is_err());
        assert!(conv2d_bias_act(&x, &zeros(&[3, 2, 3, 3]), &zeros(&[2]), [0; 4], Pointwise::Relu).is_err());
    }
}
