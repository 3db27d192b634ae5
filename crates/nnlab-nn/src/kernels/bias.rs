//! A per-channel bias added to an NCHW f32 batch. candle's `broadcast_add` computes this bias's
//! gradient with a generic reduction over dimensions 0, 2 and 3 at once, which on a convolution's
//! output costs more than the convolution's own backward pass; here it is one parallel pass.

use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{contiguous_f32, items_per_task};

/// `z + bias` with `z` `(batch, channels, height, width)` and `bias` `(channels,)` added to every
/// pixel of its channel.
///
/// f32 tensors on the CPU go through this module's kernel; anything else through candle's
/// `broadcast_add`.
pub fn add_channel_bias(z: &Tensor, bias: &Tensor) -> Result<Tensor> {
    if z.device().is_cpu() && z.dtype() == DType::F32 && bias.dtype() == DType::F32 {
        return z.contiguous()?.apply_op2(&bias.contiguous()?, ChannelBias);
    }
    z.broadcast_add(&bias.reshape((1, (), 1, 1))?)
}

/// `(batch, channels, pixels per channel)` of an NCHW tensor.
fn planes(layout: &Layout) -> Result<(usize, usize, usize)> {
    let (batch, channels, height, width) = layout.shape().dims4()?;
    Ok((batch, channels, height * width))
}

/// The forward op, `(z, bias) → z + bias`.
struct ChannelBias;

impl CustomOp2 for ChannelBias {
    fn name(&self) -> &'static str {
        "nnlab-channel-bias"
    }

    fn cpu_fwd(&self, zs: &CpuStorage, zl: &Layout, bs: &CpuStorage, bl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (batch, channels, pixels) = planes(zl)?;
        if bl.shape().dims() != [channels] {
            bail!("channel bias: a bias {:?} for {channels} channels", bl.shape());
        }
        let z = contiguous_f32(zs, zl, "channel bias input")?;
        let bias = contiguous_f32(bs, bl, "channel bias")?;
        let mut out = vec![0.0f32; z.len()];
        // Chunks hold whole items, so their planes run through the channels in order.
        let chunk = items_per_task(batch) * channels * pixels;
        out.par_chunks_mut(chunk).zip(z.par_chunks(chunk)).for_each(|(out, z)| {
            let planes = out.chunks_exact_mut(pixels).zip(z.chunks_exact(pixels));
            for ((out, z), b) in planes.zip(bias.iter().cycle()) {
                out.iter_mut().zip(z).for_each(|(o, v)| *o = v + b);
            }
        });
        Ok((CpuStorage::F32(out), zl.shape().clone()))
    }

    /// `z`'s gradient is the output's; the bias's sums it over each channel.
    fn bwd(&self, z: &Tensor, bias: &Tensor, _out: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad_bias = if bias.track_op() { Some(grad.contiguous()?.apply_op1_no_bwd(&ChannelSum)?) } else { None };
        Ok((z.track_op().then(|| grad.clone()), grad_bias))
    }
}

/// `grad → (channels,)`, the sum of each channel over the batch and the pixels: every (item,
/// channel) plane is summed in parallel, then each channel's plane sums in batch order, so the
/// result does not depend on the thread count.
struct ChannelSum;

impl CustomOp1 for ChannelSum {
    fn name(&self) -> &'static str {
        "nnlab-channel-sum"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (batch, channels, pixels) = planes(layout)?;
        let grad = contiguous_f32(storage, layout, "channel bias gradient")?;
        let mut plane_sums = vec![0.0f32; batch * channels];
        let chunk = items_per_task(batch) * channels;
        plane_sums.par_chunks_mut(chunk).zip(grad.par_chunks(chunk * pixels)).for_each(|(sums, planes)| {
            for (sum, plane) in sums.iter_mut().zip(planes.chunks_exact(pixels)) {
                *sum = plane.iter().sum();
            }
        });
        let mut sums = vec![0.0f32; channels];
        for item in plane_sums.chunks_exact(channels) {
            sums.iter_mut().zip(item).for_each(|(acc, v)| *acc += v);
        }
        Ok((CpuStorage::F32(sums), channels.into()))
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

    /// Output and gradients of `sum((z + bias) * weights)`, by `add`.
    fn output_and_grads(add: impl Fn(&Tensor, &Tensor) -> Tensor, z: &Tensor, bias: &Tensor, weights: &Tensor) -> [Vec<f32>; 3] {
        let (z, bias) = (Var::from_tensor(z).unwrap(), Var::from_tensor(bias).unwrap());
        let out = add(z.as_tensor(), bias.as_tensor());
        let grads = (&out * weights).unwrap().sum_all().unwrap().backward().unwrap();
        [values(&out), values(grads.get(&z).unwrap()), values(grads.get(&bias).unwrap())]
    }

    #[test]
    fn output_and_gradients_match_candles_broadcast_add() {
        let mut rng = ChaCha8Rng::seed_from_u64(31);
        for dims in [[1, 1, 1, 1], [3, 4, 5, 7], [9, 2, 6, 6], [2, 64, 3, 1]] {
            let (z, bias, weights) = (random(&mut rng, &dims), random(&mut rng, &[dims[1]]), random(&mut rng, &dims));
            let [out, grad_z, grad_b] = output_and_grads(|z, b| add_channel_bias(z, b).unwrap(), &z, &bias, &weights);
            let reference = |z: &Tensor, b: &Tensor| z.broadcast_add(&b.reshape((1, (), 1, 1)).unwrap()).unwrap();
            let [want_out, want_z, want_b] = output_and_grads(reference, &z, &bias, &weights);
            assert_eq!(out, want_out, "output, {dims:?}");
            assert_eq!(grad_z, want_z, "input gradient, {dims:?}");
            let scale = want_b.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            let worst = grad_b.iter().zip(&want_b).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(worst <= 1e-5 * scale, "bias gradient off by {worst}, {dims:?}");
        }
    }

    #[test]
    fn strided_inputs_thread_counts_and_impossible_shapes() {
        let mut rng = ChaCha8Rng::seed_from_u64(37);
        let z = random(&mut rng, &[5, 4, 3, 2]).permute((0, 3, 1, 2)).unwrap();
        let (bias, weights) = (random(&mut rng, &[2]), random(&mut rng, &[5, 2, 4, 3]));
        let want = values(&z.broadcast_add(&bias.reshape((1, 2, 1, 1)).unwrap()).unwrap());
        assert_eq!(values(&add_channel_bias(&z, &bias).unwrap()), want);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| output_and_grads(|z, b| add_channel_bias(z, b).unwrap(), &z, &bias, &weights))
        };
        assert_eq!(run(1), run(3));
        assert!(add_channel_bias(&z, &random(&mut rng, &[3])).is_err());
    }
}
