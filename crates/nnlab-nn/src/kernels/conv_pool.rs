//! A convolution (with its bias and activation, as in [`super::conv`]) fused with the max-pooling
//! that follows it: `max_pool(act(conv(x, W) + b))`.
//!
//! Fusing keeps the full-resolution map out of memory and out of candle's graph: each item's map
//! is computed into scratch, pooled while it is in cache, and only the pooled values and the
//! position of each window's maximum are kept. Unfused, the map (19 MB for a batch of `a1.cnn`'s
//! second layer) is written, read by the pooling, and given a gradient of the same size that
//! candle allocates, zeroes and accumulates. The backward pass works from the maxima alone, the
//! only places where the map's gradient is not zero ([`super::pooled_backward`]).
//!
//! The output is that of the two layers one after the other, bit for bit: the window's maximum is
//! taken after the activation, the first one in row-major order on ties, as [`super::pool`] does.
//! The gradients are the same sums taken in another order, so they agree up to rounding.

use std::sync::Mutex;

use candle_core::{bail, CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::activation::Pointwise;
use super::conv::{conv2d_bias_act, conv_operands, item_forward};
use super::im2col::ConvGeometry;
use super::pool::{max_pool2d, PoolGeometry};
use super::pooled_backward::{backward_from_maxima, PooledMaxima};
use super::{items_per_task, with_host_f32, with_scratch};

/// `max_pool2d(conv2d_bias_act(x, kernel, bias, pad, act), pool, strides)`, in one op for f32
/// tensors on the CPU; anything else goes through the two functions.
pub fn conv2d_bias_act_max_pool(
    x: &Tensor,
    kernel: &Tensor,
    bias: &Tensor,
    pad: [usize; 4],
    act: Pointwise,
    pool: [usize; 2],
    strides: [usize; 2],
) -> Result<Tensor> {
    if x.device().is_cpu() && [x, kernel, bias].iter().all(|t| t.dtype() == DType::F32) {
        let op = ConvPool { pad, act, pool, strides, argmax: Mutex::new(Vec::new()) };
        return x.contiguous()?.apply_op3(&kernel.contiguous()?, &bias.contiguous()?, op);
    }
    max_pool2d(&conv2d_bias_act(x, kernel, bias, pad, act)?, pool, strides)
}

/// The fused op, `(x, kernel, bias) → pooled`. The forward pass records, for every pooled value,
/// where in its map plane the maximum lay, for the backward pass of the same graph node.
struct ConvPool {
    pad: [usize; 4],
    act: Pointwise,
    pool: [usize; 2],
    strides: [usize; 2],
    argmax: Mutex<Vec<u32>>,
}

impl ConvPool {
    /// The pooling of a convolution's map `g`; the maxima's positions must fit their u32s.
    fn pool_geometry(&self, g: &ConvGeometry) -> Result<PoolGeometry> {
        if g.out_positions() > u32::MAX as usize {
            bail!("conv2d + max_pool2d: a map of {} positions", g.out_positions());
        }
        PoolGeometry::new((g.batch, g.filters, g.oh, g.ow), self.pool, self.strides)
    }
}

impl CustomOp3 for ConvPool {
    fn name(&self) -> &'static str {
        "nnlab-conv2d-bias-act-max-pool2d"
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
        let p = self.pool_geometry(&g)?;
        let pooled_item = g.filters * p.output_plane();
        let mut out = vec![0.0f32; g.batch * pooled_item];
        let mut argmax = vec![0u32; out.len()];
        let chunk = items_per_task(g.batch);
        let tasks = out.par_chunks_mut(chunk * pooled_item).zip(argmax.par_chunks_mut(chunk * pooled_item));
        tasks.zip(x.par_chunks(chunk * g.input_item())).for_each(|((out, argmax), x)| {
            let cols_len = g.taps() * g.out_positions();
            with_scratch(cols_len + g.output_item(), |scratch| {
                let (cols, map) = scratch.split_at_mut(cols_len);
                let items = out.chunks_exact_mut(pooled_item).zip(argmax.chunks_exact_mut(pooled_item));
                for ((out, argmax), x) in items.zip(x.chunks_exact(g.input_item())) {
                    item_forward(&g, self.act, [kernel, bias], x, cols, map);
                    let planes = out.chunks_exact_mut(p.output_plane()).zip(argmax.chunks_exact_mut(p.output_plane()));
                    for ((out, argmax), plane) in planes.zip(map.chunks_exact(g.out_positions())) {
                        let rows = out.chunks_exact_mut(p.ow).zip(argmax.chunks_exact_mut(p.ow));
                        for (y, (values, at)) in rows.enumerate() {
                            p.row_max_at(plane, y, values, at);
                        }
                    }
                }
            })
        });
        *self.argmax.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = argmax;
        Ok((CpuStorage::F32(out), (g.batch, g.filters, p.oh, p.ow).into()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        kernel: &Tensor,
        bias: &Tensor,
        pooled: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = ConvGeometry::new(x.dims4()?, kernel.dims4()?, self.pad)?;
        let p = self.pool_geometry(&g)?;
        let argmax = self.argmax.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if argmax.len() != pooled.elem_count() {
            bail!("conv2d + max_pool2d: backward without the forward pass's maxima");
        }
        let grad = grad.contiguous()?;
        let grads = with_host_f32([x, kernel, pooled, &grad], |[xs, ks, pooled, grad]| {
            let maxima = PooledMaxima { pooled, grad, argmax: &argmax };
            Ok(backward_from_maxima(&g, &p, self.act, [xs, ks], &maxima, x.track_op()))
        })?;
        grads.into_tensors([x, kernel, bias])
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

    /// Output and the gradients of `sum(layer(x, k, b) * weights)`, as vectors; no input gradient
    /// unless `x_tracked`.
    fn output_and_grads(
        layer: impl Fn(&Tensor, &Tensor, &Tensor) -> Tensor,
        [x, kernel, bias]: [&Tensor; 3],
        weights: &Tensor,
        x_tracked: bool,
    ) -> Vec<Vec<f32>> {
        let x = if x_tracked { Var::from_tensor(x).unwrap().as_tensor().clone() } else { x.clone() };
        let (kernel, bias) = (Var::from_tensor(kernel).unwrap(), Var::from_tensor(bias).unwrap());
        let out = layer(&x, kernel.as_tensor(), bias.as_tensor());
        let grads = (&out * weights).unwrap().sum_all().unwrap().backward().unwrap();
        let mut results = vec![out];
        results.extend(grads.get(&x).cloned());
        results.extend([kernel.as_tensor(), bias.as_tensor()].map(|v| grads.get(v).unwrap().clone()));
        results.iter().map(|t| t.flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect()
    }

    /// Largest difference within 1e-5 of the reference's largest magnitude.
    fn assert_close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: sizes");
        let scale = want.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        let worst = got.iter().zip(want).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(worst <= 1e-5 * scale, "{what}: off by {worst} at scale {scale}");
    }

    #[test]
    fn fused_equals_convolution_then_pooling() {
        // (batch, channels, height, width, filters, kernel, padding, pool, strides, activation)
        type Case = (usize, usize, usize, usize, usize, usize, [usize; 4], [usize; 2], [usize; 2], Pointwise);
        let cases: [Case; 8] = [
            (2, 1, 8, 8, 3, 3, [0; 4], [2, 2], [2, 2], Pointwise::Relu),
            (11, 3, 9, 7, 4, 3, [1; 4], [2, 2], [2, 2], Pointwise::Relu),
            (3, 2, 10, 9, 5, 5, [2; 4], [2, 2], [2, 2], Pointwise::Sigmoid),
            (4, 2, 7, 8, 3, 3, [1, 1, 0, 1], [3, 2], [3, 2], Pointwise::Linear),
            (9, 4, 6, 6, 2, 1, [0; 4], [2, 3], [2, 3], Pointwise::Relu),
            (3, 2, 7, 7, 3, 2, [0; 4], [3, 3], [2, 2], Pointwise::Relu),
            // Kernel rows of 3·32 and 5·8 values: whole blocks of the backward pass, and a rest.
            (5, 32, 9, 8, 6, 3, [0; 4], [2, 2], [2, 2], Pointwise::Relu),
            (2, 8, 8, 9, 7, 5, [2, 2, 1, 3], [2, 2], [2, 2], Pointwise::Sigmoid),
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(23);
        for (b, c, h, w, f, k, pad, pool, strides, act) in cases {
            let what = format!("x ({b}, {c}, {h}, {w}), {f} filters {k}×{k}, pad {pad:?}, pool {pool:?}/{strides:?}, {act:?}");
            let (x, kernel, bias) = (random(&mut rng, &[b, c, h, w]), random(&mut rng, &[f, c, k, k]), random(&mut rng, &[f]));
            let (oh, ow) = (h + pad[0] + pad[1] - k + 1, w + pad[2] + pad[3] - k + 1);
            let (ph, pw) = ((oh - pool[0]) / strides[0] + 1, (ow - pool[1]) / strides[1] + 1);
            let weights = random(&mut rng, &[b, f, ph, pw]);
            let fused = |x: &Tensor, k: &Tensor, b: &Tensor| conv2d_bias_act_max_pool(x, k, b, pad, act, pool, strides).unwrap();
            let apart = |x: &Tensor, k: &Tensor, b: &Tensor| {
                max_pool2d(&conv2d_bias_act(x, k, b, pad, act).unwrap(), pool, strides).unwrap()
            };
            for x_tracked in [true, false] {
                let got = output_and_grads(fused, [&x, &kernel, &bias], &weights, x_tracked);
                let want = output_and_grads(apart, [&x, &kernel, &bias], &weights, x_tracked);
                assert_eq!(got.len(), want.len(), "{what}");
                // The output bit for bit (the same map, the same maxima); the gradients up to the
                // rounding of sums taken in another order.
                assert_eq!(got[0], want[0], "output, {what}");
                for (got, want) in got.iter().zip(&want).skip(1) {
                    assert_close(got, want, &format!("{what}, input tracked: {x_tracked}"));
                }
            }
        }
    }

    #[test]
    fn results_are_bit_identical_for_any_thread_count() {
        let mut rng = ChaCha8Rng::seed_from_u64(17);
        let (x, kernel, bias) = (random(&mut rng, &[37, 4, 10, 9]), random(&mut rng, &[6, 4, 3, 3]), random(&mut rng, &[6]));
        let weights = random(&mut rng, &[37, 6, 5, 4]);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let layer = |x: &Tensor, k: &Tensor, b: &Tensor| {
                conv2d_bias_act_max_pool(x, k, b, [1; 4], Pointwise::Relu, [2, 2], [2, 2]).unwrap()
            };
            pool.install(|| output_and_grads(layer, [&x, &kernel, &bias], &weights, true))
        };
        let one = run(1);
        assert_eq!(one, run(1));
        assert_eq!(one, run(3));
    }

    #[test]
    fn other_dtypes_fall_back_to_the_two_layers() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let (x, kernel, bias) = (random(&mut rng, &[2, 2, 6, 6]), random(&mut rng, &[3, 2, 3, 3]), random(&mut rng, &[3]));
        let want = conv2d_bias_act_max_pool(&x, &kernel, &bias, [0; 4], Pointwise::Relu, [2, 2], [2, 2]).unwrap();
        let [x64, k64, b64] = [&x, &kernel, &bias].map(|t| t.to_dtype(DType::F64).unwrap());
        let got = conv2d_bias_act_max_pool(&x64, &k64, &b64, [0; 4], Pointwise::Relu, [2, 2], [2, 2]).unwrap();
        assert_eq!(got.dtype(), DType::F64);
        let (got, want) = (got.to_dtype(DType::F32).unwrap(), want);
        let worst = (got - want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(worst < 1e-5, "off by {worst}");
    }

    #[test]
    fn a_pool_larger_than_the_map_is_an_error() {
        let zeros = |dims: &[usize]| Tensor::zeros(dims, DType::F32, &Device::Cpu).unwrap();
        let result = conv2d_bias_act_max_pool(
            &zeros(&[1, 1, 4, 4]),
            &zeros(&[2, 1, 3, 3]),
            &zeros(&[2]),
            [0; 4],
            Pointwise::Relu,
            [3, 3],
            [3, 3],
        );
        assert!(result.is_err());
    }
}
