//! A dense layer's affine map `x · W + b` as one op, bit-identical to candle's `matmul` followed by
//! `broadcast_add` (and to their gradients), with less around the arithmetic:
//!
//! - candle's graph gives the product and the broadcast bias a node each, and every node a zeroed
//!   gradient accumulator and an addition per step; here there is one node;
//! - candle computes a product's gradient for both operands, also for a network's input, which takes
//!   no part in autograd; here the input gradient is computed only when the input is tracked. For a
//!   first layer that is the largest product of the backward pass (a7a.weight_decay's 784 × 500).
//!
//! Same bits, because the same floating-point operations run in the same order: the products are
//! the same `gemm` calls on the same strides and thread counts ([`matmul_as_candle`]), the bias is
//! added once per value, and the gradient goes through the same `0 + g` accumulation and the same
//! row-by-row bias sum candle's backward pass takes (that addition only ever turns a −0 into +0,
//! but a product over a row of zeros keeps its sign, so it is kept).
//!
//! [`dense_affine_relu`] applies a ReLU in the same pass, bit-identical to candle's `relu` after
//! the affine map: `max(z, 0)` forward, and backward candle's gradient, which passes where `z ≥ 0`
//! (so also at `z = 0`, where the output cannot tell a zero from a negative: the op keeps that
//! mask from its forward pass). On a7a's autoencoder, three ReLU layers, that saves candle's
//! comparison, conversion, product and accumulator tensors of every layer and step.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor};

use super::gemm::{matmul_as_candle, Matrix};
use super::{contiguous_f32, with_host_f32};

/// `x · kernel + bias` for `x` `(batch, inputs)`, `kernel` `(inputs, units)` and `bias` `(units,)`.
/// f32 tensors on the CPU go through the op; anything else through candle's `matmul` and
/// `broadcast_add`.
pub fn dense_affine(x: &Tensor, kernel: &Tensor, bias: &Tensor) -> Result<Tensor> {
    if runs_on_the_op(x, kernel, bias) {
        return x.contiguous()?.apply_op3(&kernel.contiguous()?, &bias.contiguous()?, DenseAffine::default());
    }
    x.matmul(kernel)?.broadcast_add(bias)
}

/// `relu(x · kernel + bias)`, as [`dense_affine`] followed by candle's `relu`.
pub fn dense_affine_relu(x: &Tensor, kernel: &Tensor, bias: &Tensor) -> Result<Tensor> {
    if runs_on_the_op(x, kernel, bias) {
        let op = DenseAffine { relu: Some(Mutex::new(Vec::new())) };
        return x.contiguous()?.apply_op3(&kernel.contiguous()?, &bias.contiguous()?, op);
    }
    x.matmul(kernel)?.broadcast_add(bias)?.relu()
}

fn runs_on_the_op(x: &Tensor, kernel: &Tensor, bias: &Tensor) -> bool {
    x.device().is_cpu() && x.rank() == 2 && [x, kernel, bias].iter().all(|t| t.dtype() == DType::F32)
}

#[derive(Default)]
struct DenseAffine {
    /// With a ReLU: where `z ≥ 0`, one flag per output value, from the last forward pass.
    relu: Option<Mutex<Vec<bool>>>,
}

/// `(batch, inputs, units)` of the operands, checked against each other.
fn dims(x: &Shape, kernel: &Shape, bias: &Shape) -> Result<(usize, usize, usize)> {
    let (batch, inputs) = x.dims2()?;
    let (kernel_inputs, units) = kernel.dims2()?;
    if kernel_inputs != inputs || bias.dims() != [units] {
        candle_core::bail!("dense: input {x:?}, kernel {kernel:?} and bias {bias:?} do not fit together");
    }
    Ok((batch, inputs, units))
}

impl CustomOp3 for DenseAffine {
    fn name(&self) -> &'static str {
        "nnlab-dense-affine"
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
        let (batch, inputs, units) = dims(xl.shape(), kl.shape(), bl.shape())?;
        let x = contiguous_f32(xs, xl, "dense input")?;
        let kernel = contiguous_f32(ks, kl, "dense kernel")?;
        let bias = contiguous_f32(bs, bl, "dense bias")?;
        let mut out = vec![0.0f32; batch * units];
        matmul_as_candle(&mut out, Matrix::row_major(x, batch, inputs), Matrix::row_major(kernel, inputs, units));
        for row in out.chunks_exact_mut(units) {
            row.iter_mut().zip(bias).for_each(|(z, &b)| *z += b);
        }
        if let Some(passes) = &self.relu {
            let mut passes = passes.lock().unwrap();
            passes.clear();
            passes.extend(out.iter().map(|&z| z >= 0.0));
            out.iter_mut().for_each(|z| *z = z.max(0.0));
        }
        Ok((CpuStorage::F32(out), (batch, units).into()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        kernel: &Tensor,
        bias: &Tensor,
        _out: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (batch, inputs, units) = dims(x.shape(), kernel.shape(), bias.shape())?;
        let grad = grad.contiguous()?;
        let passes = self.relu.as_ref().map(|passes| passes.lock().unwrap());
        if passes.as_ref().is_some_and(|passes| passes.len() != batch * units) {
            candle_core::bail!("dense: a backward pass without its forward pass");
        }
        let (grad_x, grad_k, grad_b) = with_host_f32([x, kernel, &grad], |[xs, ks, grads]| {
            // The gradient as candle's graph hands it to the product and to the broadcast bias,
            // after the ReLU's node (its own accumulator included) where there is one.
            let grad: Vec<f32> = match &passes {
                None => grads.iter().map(|&g| 0.0 + g).collect(),
                Some(passes) => {
                    grads.iter().zip(passes.iter()).map(|(&g, &pass)| 0.0 + (0.0 + g * if pass { 1.0 } else { 0.0 })).collect()
                }
            };
            let grad_view = Matrix::row_major(&grad, batch, units);
            let mut grad_b = vec![0.0f32; units];
            for row in grad.chunks_exact(units) {
                grad_b.iter_mut().zip(row).for_each(|(sum, &g)| *sum += g);
            }
            let grad_k = kernel.track_op().then(|| {
                let mut grad_k = vec![0.0f32; inputs * units];
                matmul_as_candle(&mut grad_k, Matrix::row_major(xs, batch, inputs).t(), grad_view);
                grad_k
            });
            let grad_x = x.track_op().then(|| {
                let mut grad_x = vec![0.0f32; batch * inputs];
                matmul_as_candle(&mut grad_x, grad_view, Matrix::row_major(ks, inputs, units).t());
                grad_x
            });
            Ok((grad_x, grad_k, grad_b))
        })?;
        let device = x.device();
        Ok((
            grad_x.map(|v| Tensor::from_vec(v, x.shape(), device)).transpose()?,
            grad_k.map(|v| Tensor::from_vec(v, kernel.shape(), device)).transpose()?,
            bias.track_op().then(|| Tensor::from_vec(grad_b, bias.shape(), device)).transpose()?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn random(rng: &mut ChaCha8Rng, shape: &[usize]) -> Tensor {
        let values: Vec<f32> = (0..shape.iter().product()).map(|_| rng.random_range(-1.0..1.0)).collect();
        Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
    }

    /// The bits of `shown` and of every variable's gradient of `sum(out · weights)`.
    fn bits_of(shown: &Tensor, out: &Tensor, weights: &Tensor, vars: &[Var]) -> Vec<Vec<u32>> {
        let bits = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|v| v.to_bits()).collect();
        let grads = out.mul(weights).unwrap().sum_all().unwrap().backward().unwrap();
        let mut all = vec![bits(shown)];
        all.extend(vars.iter().map(|var| bits(grads.get(var.as_tensor()).expect("a gradient for every variable"))));
        all
    }

    /// Two stacked layers (so the second one's input is tracked), a ReLU between them and a loss
    /// that weighs every output differently: the op and candle's ops give the same bits, forward and
    /// for every gradient.
    #[test]
    fn same_bits_as_matmul_and_broadcast_add() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let x = random(&mut rng, &[37, 23]);
        let vars: Vec<Var> =
            [&[23, 17][..], &[17], &[17, 5], &[5]].iter().map(|s| Var::from_tensor(&random(&mut rng, s)).unwrap()).collect();
        let weights = random(&mut rng, &[37, 5]);
        let run = |affine: &dyn Fn(&Tensor, &Tensor, &Tensor) -> Result<Tensor>| {
            let h = affine(&x, vars[0].as_tensor(), vars[1].as_tensor()).unwrap().relu().unwrap();
            let out = affine(&h, vars[2].as_tensor(), vars[3].as_tensor()).unwrap();
            bits_of(&out, &out, &weights, &vars)
        };
        let fused = run(&|x, k, b| dense_affine(x, k, b));
        let candle = run(&|x, k, b| x.matmul(k)?.broadcast_add(b));
        assert_eq!(fused, candle);
    }

    /// Three layers, two of them with a ReLU fused; an input row of zeros and zero biases make
    /// pre-activations of exactly ±0, where candle's ReLU gradient passes although the output is 0.
    #[test]
    fn same_bits_as_candle_with_the_relu_fused() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut x: Vec<f32> = (0..29 * 11).map(|_| rng.random_range(-1.0..1.0)).collect();
        x[..11].fill(0.0);
        let x = Tensor::from_vec(x, (29, 11), &Device::Cpu).unwrap();
        let mut vars: Vec<Var> = [&[11, 13][..], &[13], &[13, 7], &[7], &[7, 3], &[3]]
            .iter()
            .map(|s| Var::from_tensor(&random(&mut rng, s)).unwrap())
            .collect();
        vars[1] = Var::from_vec([[0.0f32, -0.0].as_slice(), &[0.1; 11]].concat(), 13, &Device::Cpu).unwrap();
        vars[3] = Var::zeros(7, DType::F32, &Device::Cpu).unwrap();
        let weights = random(&mut rng, &[29, 3]);
        let run = |relu_layer: &dyn Fn(&Tensor, &Tensor, &Tensor) -> Result<Tensor>| {
            let h = relu_layer(&x, vars[0].as_tensor(), vars[1].as_tensor()).unwrap();
            let h = relu_layer(&h, vars[2].as_tensor(), vars[3].as_tensor()).unwrap();
            let out = dense_affine(&h, vars[4].as_tensor(), vars[5].as_tensor()).unwrap();
            bits_of(&h, &out, &weights, &vars)
        };
        let fused = run(&|x, k, b| dense_affine_relu(x, k, b));
        let candle = run(&|x, k, b| x.matmul(k)?.broadcast_add(b)?.relu());
        // (With the gradient passed where the output is > 0 instead, the biases' gradients differ.)
        assert_eq!(fused, candle);
    }

    #[test]
    fn the_input_gradient_only_where_the_input_is_tracked() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (x, k, b) =
            (random(&mut rng, &[4, 3]), Var::from_tensor(&random(&mut rng, &[3, 2])).unwrap(), random(&mut rng, &[2]));
        let grads = dense_affine(&x, k.as_tensor(), &b).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&x).is_none(), "no gradient for an untracked input");
        assert!(grads.get(k.as_tensor()).is_some());
    }

    #[test]
    fn mismatched_operands_are_refused() {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let (x, k, b) = (random(&mut rng, &[4, 3]), random(&mut rng, &[2, 2]), random(&mut rng, &[2]));
        let message = dense_affine(&x, &k, &b).unwrap_err().to_string();
        assert!(message.contains("do not fit together"), "{message}");
    }
}
