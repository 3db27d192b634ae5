//! Optimisers with Keras' update rules and defaults. candle-nn only ships SGD and AdamW, so the
//! rules are written here: for f32 variables on the CPU as one fused in-place pass over each
//! variable (state kept as plain vectors), elsewhere on plain tensor ops.

use std::sync::Mutex;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, DType, InplaceOp2, Layout, Tensor, Var};
use rayon::prelude::*;
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

    /// How a report states it: the name and every hyper-parameter, defaults included.
    pub fn describe(&self) -> String {
        let with_decay = |text: String, decay: f64| if decay > 0.0 { format!("{text}, decay {decay}") } else { text };
        match *self {
            OptimizerSpec::Sgd { lr, decay } => with_decay(format!("SGD (lr {lr}"), decay) + ")",
            OptimizerSpec::Rmsprop { lr, rho, epsilon, decay } => {
                with_decay(format!("RMSprop (lr {lr}, ρ {rho}, ε {epsilon:e}"), decay) + ")"
            }
            OptimizerSpec::Adadelta { lr, rho, epsilon, decay } => {
                with_decay(format!("Adadelta (lr {lr}, ρ {rho}, ε {epsilon:e}"), decay) + ")"
            }
        }
    }

    /// The optimiser's name as Keras spells it: `SGD`, `RMSprop`, `Adadelta`.
    pub fn name(&self) -> &'static str {
        match self {
            OptimizerSpec::Sgd { .. } => "SGD",
            OptimizerSpec::Rmsprop { .. } => "RMSprop",
            OptimizerSpec::Adadelta { .. } => "Adadelta",
        }
    }

    /// The base learning rate (before any decay).
    pub fn lr(&self) -> f64 {
        self.lr_and_decay().0
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
    /// The same two states for variables updated by the fused CPU pass (empty until first used).
    host_first: Vec<Vec<f32>>,
    host_second: Vec<Vec<f32>>,
}

impl Optimizer {
    pub fn new(spec: OptimizerSpec, var_count: usize) -> Result<Self> {
        spec.validate()?;
        Ok(Optimizer {
            spec,
            iterations: 0,
            first: vec![None; var_count],
            second: vec![None; var_count],
            host_first: vec![Vec::new(); var_count],
            host_second: vec![Vec::new(); var_count],
        })
    }

    /// Keras' time-based decay: lr_t = lr / (1 + decay * iterations), iterations counted in batches.
    pub fn current_lr(&self) -> f64 {
        let (lr, decay) = self.spec.lr_and_decay();
        lr / (1.0 + decay * self.iterations as f64)
    }

    /// Applies one update to every variable that received a gradient.
    pub fn step(&mut self, vars: &[&Var], grads: &GradStore) -> Result<()> {
        self.step_with(vars, grads, true)
    }

    /// [`Optimizer::step`], with the fused CPU pass allowed or not (the tensor-op path is the
    /// reference the fused one is tested against).
    fn step_with(&mut self, vars: &[&Var], grads: &GradStore, allow_fused: bool) -> Result<()> {
        let lr = self.current_lr();
        for (index, var) in vars.iter().enumerate() {
            let Some(grad) = grads.get(var.as_tensor()) else { continue };
            // Gradients still reference the forward graph; state kept across steps must not, or
            // every step's activations would stay alive through the running averages.
            let grad = &grad.detach();
            if allow_fused && fused_applies(var, grad) {
                self.step_fused(index, var, &grad.contiguous()?, lr)?;
                continue;
            }
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

impl Optimizer {
    /// One variable's update as a single pass over its elements, in place.
    fn step_fused(&mut self, index: usize, var: &Var, grad: &Tensor, lr: f64) -> Result<()> {
        let len = var.elem_count();
        let (rule, states) = match self.spec {
            OptimizerSpec::Sgd { .. } => (Rule::Sgd, 0),
            OptimizerSpec::Rmsprop { rho, epsilon, .. } => (Rule::Rmsprop { rho: rho as f32, epsilon: epsilon as f32 }, 1),
            OptimizerSpec::Adadelta { rho, epsilon, .. } => (Rule::Adadelta { rho: rho as f32, epsilon: epsilon as f32 }, 2),
        };
        for state in [&mut self.host_first[index], &mut self.host_second[index]].into_iter().take(states) {
            if state.len() != len {
                *state = vec![0.0; len];
            }
        }
        let op = FusedUpdate {
            rule,
            lr: lr as f32,
            first: Mutex::new(&mut self.host_first[index]),
            second: Mutex::new(&mut self.host_second[index]),
        };
        Ok(var.as_tensor().inplace_op2(grad, &op)?)
    }
}

/// Whether `var` and its gradient can take the fused CPU update.
fn fused_applies(var: &Var, grad: &Tensor) -> bool {
    let t = var.as_tensor();
    t.device().is_cpu() && t.dtype() == DType::F32 && grad.dtype() == DType::F32 && t.is_contiguous() && grad.shape() == t.shape()
}

/// An update rule with its constants in f32, the precision the variables are kept in.
#[derive(Clone, Copy)]
enum Rule {
    Sgd,
    Rmsprop { rho: f32, epsilon: f32 },
    Adadelta { rho: f32, epsilon: f32 },
}

/// Elements per parallel task of the fused update: large enough to amortise scheduling.
const UPDATE_CHUNK: usize = 1 << 14;

/// `w ← update(w, g, state)` elementwise, in place on the variable's storage. Each element's update
/// depends on that element alone, so the result does not depend on how the work is split.
struct FusedUpdate<'a> {
    rule: Rule,
    lr: f32,
    first: Mutex<&'a mut Vec<f32>>,
    second: Mutex<&'a mut Vec<f32>>,
}

impl InplaceOp2 for FusedUpdate<'_> {
    fn name(&self) -> &'static str {
        "nnlab-fused-update"
    }

    fn cpu_fwd(&self, dst: &mut CpuStorage, dst_l: &Layout, grad: &CpuStorage, grad_l: &Layout) -> candle_core::Result<()> {
        let (Some((w_start, w_end)), Some((g_start, g_end))) = (dst_l.contiguous_offsets(), grad_l.contiguous_offsets()) else {
            candle_core::bail!("fused update: the variable and its gradient must be contiguous")
        };
        let CpuStorage::F32(w) = dst else { candle_core::bail!("fused update: an f32 variable expected") };
        let w = &mut w[w_start..w_end];
        let g = &grad.as_slice::<f32>()?[g_start..g_end];
        if w.len() != g.len() {
            candle_core::bail!("fused update: {} weights, {} gradients", w.len(), g.len());
        }
        let (lr, mut first, mut second) = (self.lr, self.first.lock().unwrap(), self.second.lock().unwrap());
        let w = w.par_chunks_mut(UPDATE_CHUNK).zip(g.par_chunks(UPDATE_CHUNK));
        match self.rule {
            Rule::Sgd => w.for_each(|(w, g)| w.iter_mut().zip(g).for_each(|(w, g)| *w -= lr * g)),
            Rule::Rmsprop { rho, epsilon } => w.zip(first.par_chunks_mut(UPDATE_CHUNK)).for_each(|((w, g), ms)| {
                for ((w, &g), ms) in w.iter_mut().zip(g).zip(ms) {
                    *ms = rho * *ms + (1.0 - rho) * g * g;
                    *w -= lr * (g / (*ms + epsilon).sqrt());
                }
            }),
            Rule::Adadelta { rho, epsilon } => {
                let states = first.par_chunks_mut(UPDATE_CHUNK).zip(second.par_chunks_mut(UPDATE_CHUNK));
                w.zip(states).for_each(|((w, g), (ag, au))| {
                    for (((w, &g), ag), au) in w.iter_mut().zip(g).zip(ag).zip(au) {
                        *ag = rho * *ag + (1.0 - rho) * g * g;
                        let u = g * (*au + epsilon).sqrt() / (*ag + epsilon).sqrt();
                        *au = rho * *au + (1.0 - rho) * u * u;
                        *w -= lr * u;
                    }
                })
            }
        }
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
    use candle_core::{DType, Device};

    #[test]
    fn describe_states_every_hyper_parameter() {
        let rmsprop: OptimizerSpec = toml::from_str("name = \"rmsprop\"").unwrap();
        assert_eq!(rmsprop.describe(), "RMSprop (lr 0.001, ρ 0.9, ε 1e-7)");
        let sgd = OptimizerSpec::Sgd { lr: 0.1, decay: 1e-4 };
        assert_eq!(sgd.describe(), "SGD (lr 0.1, decay 0.0001)");
    }

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
    fn the_fused_update_matches_the_tensor_ops_and_ignores_the_thread_count() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        // Longer than one parallel chunk and of odd length; a 2-D kernel and a bias.
        let shapes: [&[usize]; 2] = [&[301, 137], &[37]];
        let initial: Vec<Vec<f32>> =
            shapes.iter().map(|s| (0..s.iter().product()).map(|_| rng.random_range(-1.0..1.0)).collect()).collect();
        let targets: Vec<Vec<f32>> = initial.iter().map(|v| v.iter().map(|_| rng.random_range(-1.0..1.0)).collect()).collect();
        let run = |spec: &OptimizerSpec, fused: bool, threads: usize| {
            let vars: Vec<Var> =
                initial.iter().zip(shapes).map(|(v, s)| Var::from_vec(v.clone(), s, &Device::Cpu).unwrap()).collect();
            let refs: Vec<&Var> = vars.iter().collect();
            let mut opt = Optimizer::new(spec.clone(), vars.len()).unwrap();
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            for _ in 0..4 {
                // loss = Σ (w - t)⁴, so the gradients differ in size from element to element.
                let mut loss = Tensor::zeros((), DType::F32, &Device::Cpu).unwrap();
                for (var, target) in vars.iter().zip(&targets) {
                    let t = Tensor::from_vec(target.clone(), var.shape(), &Device::Cpu).unwrap();
                    loss = (loss + (var.as_tensor() - t).unwrap().sqr().unwrap().sqr().unwrap().sum_all().unwrap()).unwrap();
                }
                let grads = loss.backward().unwrap();
                pool.install(|| opt.step_with(&refs, &grads, fused)).unwrap();
            }
            vars.iter().flat_map(|v| v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect::<Vec<f32>>()
        };
        for spec in [
            OptimizerSpec::Sgd { lr: 0.1, decay: 0.01 },
            OptimizerSpec::Rmsprop { lr: 0.01, rho: 0.9, epsilon: 1e-7, decay: 1e-3 },
            OptimizerSpec::Adadelta { lr: 1.0, rho: 0.95, epsilon: 1e-7, decay: 0.0 },
        ] {
            let fused = run(&spec, true, 1);
            let reference = run(&spec, false, 1);
            let worst = fused.iter().zip(&reference).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(worst < 1e-5, "{spec:?}: fused update off by {worst}");
            assert_eq!(fused, run(&spec, true, 3), "{spec:?}: thread count changed the result");
        }
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
