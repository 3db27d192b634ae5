//! Optimisers with Keras' update rules and defaults. candle-nn only ships SGD and AdamW, so the
//! rules are written here on plain tensor ops.

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::error::{NnError, Result};

/// An optimiser as written in the catalogue, e.g. `{ name = "rmsprop", lr = 1e-4, decay = 1e-6 }`.
/// Omitted fields take Keras' defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case", deny_unknown_fields)]
pub enum OptimizerSpec {
    Sgd {
        #[serde(default = "defaults::sgd_lr")]
        lr: f64,
        #[serde(default)]
        decay: f64,
    },
    Rmsprop {
        #[serde(default = "defaults::rmsprop_lr")]
        lr: f64,
        #[serde(default = "defaults::rmsprop_rho")]
        rho: f64,
        #[serde(default = "defaults::epsilon")]
        epsilon: f64,
        #[serde(default)]
        decay: f64,
    },
    Adadelta {
        #[serde(default = "defaults::adadelta_lr")]
        lr: f64,
        #[serde(default = "defaults::adadelta_rho")]
        rho: f64,
        #[serde(default = "defaults::epsilon")]
        epsilon: f64,
        #[serde(default)]
        decay: f64,
    },
}

mod defaults {
    pub fn sgd_lr() -> f64 {
        0.01
    }
    pub fn rmsprop_lr() -> f64 {
        0.001
    }
    pub fn rmsprop_rho() -> f64 {
        0.9
    }
    pub fn adadelta_lr() -> f64 {
        1.0
    }
    pub fn adadelta_rho() -> f64 {
        0.95
    }
    pub fn epsilon() -> f64 {
        1e-7
    }
}

impl OptimizerSpec {
    fn lr_and_decay(&self) -> (f64, f64) {
        match *self {
            OptimizerSpec::Sgd { lr, decay }
            | OptimizerSpec::Rmsprop { lr, decay, .. }
            | OptimizerSpec::Adadelta { lr, decay, .. } => (lr, decay),
        }
    }

    pub fn validate(&self) -> Result<()> {
        let (lr, decay) = self.lr_and_decay();
        if !(lr.is_finite() && lr > 0.0) {
            return Err(NnError::spec("optimizer.lr", format!("must be a positive number, got {lr}")));
        }
        if !(decay.is_finite() && decay >= 0.0) {
            return Err(NnError::spec("optimizer.decay", format!("must be ≥ 0, got {decay}")));
        }
        Ok(())
    }
}

/// An optimiser bound to a model's variables, holding one state slot per variable (by index).
pub struct Optimizer {
    spec: OptimizerSpec,
    iterations: u64,
    /// RMSprop: mean square; Adadelta: accumulated squared gradients.
    first: Vec<Option<Tensor>>,
    /// Adadelta: accumulated squared updates.
    second: Vec<Option<Tensor>>,
}

impl Optimizer {
    pub fn new(spec: OptimizerSpec, var_count: usize) -> Result<Self> {
        spec.validate()?;
        Ok(Optimizer { spec, iterations: 0, first: vec![None; var_count], second: vec![None; var_count] })
    }

    /// Keras' time-based decay: lr_t = lr / (1 + decay * iterations), iterations counted in batches.
    pub fn current_lr(&self) -> f64 {
        let (lr, decay) = self.spec.lr_and_decay();
        lr / (1.0 + decay * self.iterations as f64)
    }

    /// Applies one update to every variable that received a gradient.
    pub fn step(&mut self, vars: &[&Var], grads: &GradStore) -> Result<()> {
        let lr = self.current_lr();
        for (index, var) in vars.iter().enumerate() {
            let Some(grad) = grads.get(var.as_tensor()) else { continue };
            // Gradients still reference the forward graph; state kept across steps must not, or
            // every step's activations would stay alive through the running averages.
            let grad = &grad.detach();
            let update = match self.spec {
                OptimizerSpec::Sgd { .. } => (grad * lr)?,
                OptimizerSpec::Rmsprop { rho, epsilon, .. } => {
                    // TF/Keras: ms = rho·ms + (1-rho)·g²;  w -= lr·g / sqrt(ms + ε)
                    let ms = decayed_square(self.first[index].as_ref(), grad, rho)?;
                    let update = (grad / (&ms + epsilon)?.sqrt()?)?.affine(lr, 0.0)?;
                    self.first[index] = Some(ms);
                    update
                }
                OptimizerSpec::Adadelta { rho, epsilon, .. } => {
                    // Keras: ag = rho·ag + (1-rho)·g²;  u = g·sqrt(au + ε)/sqrt(ag + ε);
                    //        au = rho·au + (1-rho)·u²;   w -= lr·u
                    let ag = decayed_square(self.first[index].as_ref(), grad, rho)?;
                    let au_old = match &self.second[index] {
                        Some(t) => t.clone(),
                        None => grad.zeros_like()?,
                    };
                    let u = ((grad * (&au_old + epsilon)?.sqrt()?)? / (&ag + epsilon)?.sqrt()?)?;
                    let au = ((au_old * rho)? + (u.sqr()? * (1.0 - rho))?)?;
                    self.first[index] = Some(ag);
                    self.second[index] = Some(au);
                    (u * lr)?
                }
            };
            var.set(&var.as_tensor().sub(&update)?.detach())?;
        }
        self.iterations += 1;
        Ok(())
    }
}

/// rho·acc + (1-rho)·g², starting from zero.
fn decayed_square(acc: Option<&Tensor>, grad: &Tensor, rho: f64) -> Result<Tensor> {
    let g2 = (grad.sqr()? * (1.0 - rho))?;
    Ok(match acc {
        Some(acc) => ((acc * rho)? + g2)?,
        None => g2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// One step on w = [1, -2] with loss = sum(w²) (gradient 2w), checked against the rules by hand.
    fn one_step(spec: OptimizerSpec, steps: usize) -> Vec<f32> {
        let w = Var::new(&[1.0f32, -2.0], &Device::Cpu).unwrap();
        let mut opt = Optimizer::new(spec, 1).unwrap();
        for _ in 0..steps {
            let loss = w.as_tensor().sqr().unwrap().sum_all().unwrap();
            let grads = loss.backward().unwrap();
            opt.step(&[&w], &grads).unwrap();
        }
        w.as_tensor().to_vec1::<f32>().unwrap()
    }

    fn close(a: &[f32], b: &[f64]) -> bool {
        a.iter().zip(b).all(|(x, y)| (*x as f64 - y).abs() < 1e-5)
    }

    #[test]
    fn sgd_step() {
        let got = one_step(OptimizerSpec::Sgd { lr: 0.1, decay: 0.0 }, 1);
        assert!(close(&got, &[1.0 - 0.1 * 2.0, -2.0 + 0.1 * 4.0]), "{got:?}");
    }

    #[test]
    fn rmsprop_step() {
        let got = one_step(OptimizerSpec::Rmsprop { lr: 0.01, rho: 0.9, epsilon: 1e-7, decay: 0.0 }, 1);
        let expect = |w: f64| {
            let g = 2.0 * w;
            let ms = 0.1 * g * g;
            w - 0.01 * g / (ms + 1e-7).sqrt()
        };
        assert!(close(&got, &[expect(1.0), expect(-2.0)]), "{got:?}");
    }

    #[test]
    fn adadelta_two_steps() {
        let got = one_step(OptimizerSpec::Adadelta { lr: 1.0, rho: 0.95, epsilon: 1e-7, decay: 0.0 }, 2);
        let expect = |mut w: f64| {
            let (mut ag, mut au) = (0.0f64, 0.0f64);
            for _ in 0..2 {
                let g = 2.0 * w;
                ag = 0.95 * ag + 0.05 * g * g;
                let u = g * (au + 1e-7).sqrt() / (ag + 1e-7).sqrt();
                au = 0.95 * au + 0.05 * u * u;
                w -= u;
            }
            w
        };
        assert!(close(&got, &[expect(1.0), expect(-2.0)]), "{got:?}");
    }

    #[test]
    fn decay_lowers_the_rate_per_batch() {
        let w = Var::new(&[1.0f32], &Device::Cpu).unwrap();
        let mut opt = Optimizer::new(OptimizerSpec::Sgd { lr: 0.1, decay: 0.5 }, 1).unwrap();
        assert_eq!(opt.current_lr(), 0.1);
        let grads = w.as_tensor().sqr().unwrap().sum_all().unwrap().backward().unwrap();
        opt.step(&[&w], &grads).unwrap();
        assert!((opt.current_lr() - 0.1 / 1.5).abs() < 1e-12);
    }

    #[test]
    fn catalogue_syntax_and_defaults() {
        let spec: OptimizerSpec = toml::from_str("name = \"rmsprop\"").unwrap();
        assert_eq!(spec, OptimizerSpec::Rmsprop { lr: 0.001, rho: 0.9, epsilon: 1e-7, decay: 0.0 });
        let spec: OptimizerSpec = toml::from_str("name = \"rmsprop\"\nlr = 1e-4\ndecay = 1e-6").unwrap();
        assert_eq!(spec, OptimizerSpec::Rmsprop { lr: 1e-4, rho: 0.9, epsilon: 1e-7, decay: 1e-6 });
        assert!(toml::from_str::<OptimizerSpec>("name = \"adam\"").is_err());
        assert!(Optimizer::new(OptimizerSpec::Sgd { lr: -1.0, decay: 0.0 }, 1).is_err());
    }
}
