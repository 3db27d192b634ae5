//! The activations that the fused layer kernels apply in the same pass as their bias, and their
//! derivatives written in terms of the activated output, which the backward pass already holds.

use candle_core::{Result, Tensor};

/// An activation a fused kernel can apply elementwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pointwise {
    Linear,
    Relu,
    Sigmoid,
}

impl Pointwise {
    #[inline]
    fn apply(self, z: f32) -> f32 {
        match self {
            Pointwise::Linear => z,
            Pointwise::Relu => z.max(0.0),
            Pointwise::Sigmoid => 1.0 / (1.0 + (-z).exp()),
        }
    }

    /// `values ← act(values + bias)`, one bias for the whole slice (a channel plane).
    pub(super) fn add_bias_and_apply(self, values: &mut [f32], bias: f32) {
        values.iter_mut().for_each(|v| *v = self.apply(*v + bias));
    }

    /// `grad · act'(z)` from the activated output `out = act(z)`. ReLU passes the gradient where
    /// `out > 0`, as TensorFlow's does (candle's passes it at `z = 0` too).
    #[inline]
    pub(super) fn grad_z(self, out: f32, grad: f32) -> f32 {
        match self {
            Pointwise::Linear => grad,
            Pointwise::Relu => {
                if out > 0.0 {
                    grad
                } else {
                    0.0
                }
            }
            Pointwise::Sigmoid => grad * out * (1.0 - out),
        }
    }

    /// [`Self::grad_z`] elementwise, `grad_z = grad · act'(z)`.
    pub(super) fn backprop(self, out: &[f32], grad: &[f32], grad_z: &mut [f32]) {
        let values = grad_z.iter_mut().zip(out.iter().zip(grad));
        // One loop per activation, each vectorised with its constant activation inlined.
        match self {
            Pointwise::Linear => grad_z.copy_from_slice(grad),
            Pointwise::Relu => values.for_each(|(gz, (&o, &g))| *gz = Pointwise::Relu.grad_z(o, g)),
            Pointwise::Sigmoid => values.for_each(|(gz, (&o, &g))| *gz = Pointwise::Sigmoid.grad_z(o, g)),
        }
    }

    /// The same activation by candle's ops, for the devices and dtypes the kernels do not serve.
    pub(super) fn apply_tensor(self, z: &Tensor) -> Result<Tensor> {
        match self {
            Pointwise::Linear => Ok(z.clone()),
            Pointwise::Relu => z.relu(),
            Pointwise::Sigmoid => candle_nn::ops::sigmoid(z),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivatives_from_the_output_match_finite_differences() {
        let h = 1e-3f32;
        for act in [Pointwise::Linear, Pointwise::Relu, Pointwise::Sigmoid] {
            for z in [-2.5f32, -0.3, 0.4, 1.7] {
                let mut gz = [0.0];
                act.backprop(&[act.apply(z)], &[2.0], &mut gz);
                let numeric = 2.0 * (act.apply(z + h) - act.apply(z - h)) / (2.0 * h);
                assert!((gz[0] - numeric).abs() < 1e-2, "{act:?} at {z}: {} vs {numeric}", gz[0]);
            }
        }
        let mut gz = [1.0];
        Pointwise::Relu.backprop(&[0.0], &[3.0], &mut gz);
        assert_eq!(gz, [0.0], "no gradient through a ReLU that outputs 0");
    }
}
