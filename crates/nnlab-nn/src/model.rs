//! A [`ModelSpec`] built into candle variables, with a forward pass.

use candle_core::{DType, Device, Tensor, Var, D};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::error::{NnError, Result};
use crate::init::glorot_uniform;
use crate::kernels::activation::Pointwise;
use crate::kernels::conv::conv2d_bias_act;
use crate::kernels::conv_pool::conv2d_bias_act_max_pool;
use crate::kernels::dense::{dense_affine, dense_affine_relu};
use crate::spec::{Activation, LayerSpec, ModelSpec, Padding};

/// Whether layers that only act in training (dropout, noise) are active; in training they draw from
/// the job's seeded RNG so that a replicate is reproducible bit for bit.
pub enum Mode<'a> {
    Train(&'a mut ChaCha8Rng),
    Eval,
}

enum Layer {
    Flatten,
    Dense {
        kernel: Var,
        bias: Var,
        activation: Activation,
        l2: Option<f64>,
    },
    /// Kernel `(filters, channels, kh, kw)`, candle's layout; `pad` is (top, bottom, left, right).
    Conv2d {
        kernel: Var,
        bias: Var,
        activation: Activation,
        l2: Option<f64>,
        pad: [usize; 4],
    },
    MaxPool2d {
        pool: [usize; 2],
        strides: [usize; 2],
    },
    Dropout {
        rate: f64,
    },
    GaussianNoise {
        stddev: f64,
    },
    SaltAndPepper {
        level: f64,
    },
}

/// The network's output before its final activation, so that losses can use the numerically stable
/// log-softmax / log-sigmoid forms.
pub struct Output {
    pub pre_activation: Tensor,
    pub activation: Activation,
}

impl Output {
    /// The model's actual output (probabilities for a softmax head).
    pub fn activated(&self) -> Result<Tensor> {
        apply_activation(&self.pre_activation, self.activation)
    }
}

pub struct Model {
    spec: ModelSpec,
    layers: Vec<Layer>,
    device: Device,
    /// Inputs arrive as `(batch, height, width, channels)` like Keras; candle's convolution and
    /// pooling want channels first, so a model with such layers transposes its input once.
    channels_first: bool,
}

impl Model {
    /// Builds the model with Glorot-uniform kernels and zero biases drawn from `rng`, layer by layer.
    pub fn build(spec: &ModelSpec, rng: &mut ChaCha8Rng, device: &Device) -> Result<Self> {
        let plan = spec.plan()?;
        let last = spec.layers.len() - 1;
        if !matches!(spec.layers[last], LayerSpec::Dense { .. }) {
            return Err(NnError::spec(format!("layers[{last}]"), "the last layer must be dense"));
        }
        let mut layers = Vec::with_capacity(spec.layers.len());
        for (layer, planned) in spec.layers.iter().zip(&plan) {
            layers.push(match *layer {
                LayerSpec::Flatten => Layer::Flatten,
                LayerSpec::Dense { units, activation, l2 } => {
                    let fan_in = planned.input_shape[0];
                    let kernel = glorot_uniform(rng, fan_in, units, fan_in * units);
                    Layer::Dense {
                        kernel: Var::from_vec(kernel, (fan_in, units), device)?,
                        bias: Var::zeros(units, DType::F32, device)?,
                        activation,
                        l2,
                    }
                }
                LayerSpec::Conv2d { filters, kernel: [kh, kw], padding, activation, l2 } => {
                    let channels = planned.input_shape[2];
                    let weights = glorot_uniform(rng, kh * kw * channels, kh * kw * filters, filters * channels * kh * kw);
                    Layer::Conv2d {
                        kernel: Var::from_vec(weights, (filters, channels, kh, kw), device)?,
                        bias: Var::zeros(filters, DType::F32, device)?,
                        activation,
                        l2,
                        pad: same_padding(padding, kh, kw),
                    }
                }
                LayerSpec::MaxPool2d { pool, strides } => Layer::MaxPool2d { pool, strides: strides.unwrap_or(pool) },
                LayerSpec::Dropout { rate } => Layer::Dropout { rate },
                LayerSpec::GaussianNoise { stddev } => Layer::GaussianNoise { stddev },
                LayerSpec::SaltAndPepper { level } => Layer::SaltAndPepper { level },
            });
        }
        let channels_first = layers.iter().any(|l| matches!(l, Layer::Conv2d { .. } | Layer::MaxPool2d { .. }));
        Ok(Model { spec: spec.clone(), layers, device: device.clone(), channels_first })
    }

    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Trainable variables in layer order (kernel before bias): optimisers keep their state by index,
    /// so this order must be stable.
    pub fn vars(&self) -> Vec<&Var> {
        self.layers
            .iter()
            .flat_map(|l| match l {
                Layer::Dense { kernel, bias, .. } | Layer::Conv2d { kernel, bias, .. } => vec![kernel, bias],
                _ => vec![],
            })
            .collect()
    }

    /// The trainable variables under their Keras-style names: `dense.kernel`, `dense.bias`, `conv2d_1.kernel`, …
    pub fn named_vars(&self) -> Result<Vec<(String, &Var)>> {
        let plan = self.spec.plan()?;
        Ok(self
            .layers
            .iter()
            .zip(plan)
            .flat_map(|(layer, planned)| match layer {
                Layer::Dense { kernel, bias, .. } | Layer::Conv2d { kernel, bias, .. } => {
                    vec![(format!("{}.kernel", planned.name), kernel), (format!("{}.bias", planned.name), bias)]
                }
                _ => vec![],
            })
            .collect())
    }

    /// Writes the weights as safetensors (candle's layout: dense kernels `(in, out)`, conv kernels
    /// `(filters, channels, kh, kw)`).
    pub fn save_weights(&self, path: &std::path::Path) -> Result<()> {
        let tensors: std::collections::HashMap<String, Tensor> =
            self.named_vars()?.into_iter().map(|(name, var)| (name, var.as_tensor().clone())).collect();
        candle_core::safetensors::save(&tensors, path)?;
        Ok(())
    }

    /// Replaces the weights with those of a safetensors file written by [`Model::save_weights`] for
    /// the same spec; a missing, extra or misshapen tensor is an error naming it.
    pub fn load_weights(&self, path: &std::path::Path) -> Result<()> {
        let origin = path.display().to_string();
        let mut tensors = candle_core::safetensors::load(path, &self.device)
            .map_err(|e| NnError::spec(origin.clone(), format!("cannot read the weights: {e}")))?;
        for (name, var) in self.named_vars()? {
            let tensor = tensors.remove(&name).ok_or_else(|| NnError::spec(origin.clone(), format!("no tensor {name}")))?;
            if tensor.dims() != var.as_tensor().dims() {
                return Err(NnError::spec(
                    origin.clone(),
                    format!("{name} has shape {:?}, the model needs {:?}", tensor.dims(), var.as_tensor().dims()),
                ));
            }
            var.set(&tensor.to_dtype(DType::F32)?)?;
        }
        if let Some(extra) = tensors.keys().next() {
            return Err(NnError::spec(origin, format!("tensor {extra} belongs to no layer of the model")));
        }
        Ok(())
    }

    /// Runs the model on a batch shaped `(batch, input...)`; the last layer's activation is left to the loss.
    pub fn forward(&self, x: &Tensor, mode: Mode<'_>) -> Result<Output> {
        let last = self.layers.len() - 1;
        let pre_activation = self.run_through(x, mode, last)?;
        let activation = match self.layers[last] {
            Layer::Dense { activation, .. } => activation,
            _ => unreachable!("Model::build guarantees that the last layer is dense"),
        };
        Ok(Output { pre_activation, activation })
    }

    /// The activated output of layer `index` (0-based, as in the spec) in evaluation mode: the learned
    /// representation the separability analysis projects. Convolutional maps come back as
    /// `(batch, height, width, channels)`, the layout of the input.
    pub fn layer_output(&self, x: &Tensor, index: usize) -> Result<Tensor> {
        let last = self.layers.len() - 1;
        if index > last {
            return Err(NnError::spec(format!("layers[{index}]"), format!("the model has {} layers", last + 1)));
        }
        let h = self.run_through(x, Mode::Eval, index)?;
        let h = if index == last { self.forward(x, Mode::Eval)?.activated()? } else { h };
        Ok(if self.channels_first && h.rank() == 4 { h.permute((0, 2, 3, 1))?.contiguous()? } else { h })
    }

    /// Runs the layers after `index` on `h`, the activated output of layer `index` (e.g. a code of an
    /// autoencoder), in evaluation mode; returns the model's activated output. Only dense tails
    /// (with flatten, dropout or noise layers, which inference passes through) can be run this way.
    pub fn decode_from(&self, h: &Tensor, index: usize) -> Result<Tensor> {
        let last = self.layers.len() - 1;
        if index >= last {
            return Err(NnError::spec(
                format!("layers[{index}]"),
                format!("no layer follows it in a model of {} layers", last + 1),
            ));
        }
        let mut h = h.clone();
        for (i, layer) in self.layers.iter().enumerate().skip(index + 1) {
            h = match layer {
                Layer::Flatten => h.flatten_from(1)?,
                Layer::Dense { kernel, bias, activation, .. } => dense(&h, kernel, bias, *activation)?,
                Layer::Dropout { .. } | Layer::GaussianNoise { .. } | Layer::SaltAndPepper { .. } => h,
                Layer::Conv2d { .. } | Layer::MaxPool2d { .. } => {
                    return Err(NnError::spec(format!("layers[{i}]"), "decoding from a layer runs dense layers only"))
                }
            };
        }
        Ok(h)
    }

    /// Runs layers `0..=stop`; the output of layer `stop` is returned activated, except for the model's
    /// last layer, whose activation is left to the loss.
    fn run_through(&self, x: &Tensor, mut mode: Mode<'_>, stop: usize) -> Result<Tensor> {
        let mut h = if self.channels_first { x.permute((0, 3, 1, 2))?.contiguous()? } else { x.clone() };
        let last = self.layers.len() - 1;
        let mut layers = self.layers.iter().enumerate().take(stop + 1).peekable();
        while let Some((index, layer)) = layers.next() {
            h = match layer {
                Layer::Flatten => h.flatten_from(1)?,
                Layer::Dense { kernel, bias, activation, .. } => {
                    if index == last {
                        return Ok(dense_affine(&h, kernel.as_tensor(), bias.as_tensor())?);
                    }
                    dense(&h, kernel, bias, *activation)?
                }
                Layer::Conv2d { kernel, bias, activation, pad, .. } => {
                    let (kernel, bias) = (kernel.as_tensor(), bias.as_tensor());
                    match (pointwise(*activation), layers.peek()) {
                        // A max-pooling right after is computed in the same pass, unless the
                        // convolution's own output is asked for (`stop`).
                        (Some(act), Some(&(_, &Layer::MaxPool2d { pool, strides }))) => {
                            layers.next();
                            conv2d_bias_act_max_pool(&h, kernel, bias, *pad, act, pool, strides)?
                        }
                        (Some(act), _) => conv2d_bias_act(&h, kernel, bias, *pad, act)?,
                        (None, _) => apply_activation(&conv2d_bias_act(&h, kernel, bias, *pad, Pointwise::Linear)?, *activation)?,
                    }
                }
                Layer::MaxPool2d { pool, strides } => crate::kernels::pool::max_pool2d(&h, *pool, *strides)?,
                Layer::Dropout { rate } => match &mut mode {
                    Mode::Train(rng) if *rate > 0.0 => dropout(&h, *rate, rng)?,
                    _ => h,
                },
                Layer::GaussianNoise { stddev } => match &mut mode {
                    Mode::Train(rng) if *stddev > 0.0 => gaussian_noise(&h, *stddev, rng)?,
                    _ => h,
                },
                Layer::SaltAndPepper { level } => match &mut mode {
                    Mode::Train(rng) if *level > 0.0 => salt_and_pepper(&h, *level, rng)?,
                    _ => h,
                },
            };
        }
        Ok(h)
    }

    /// The weight penalty `sum over layers of l2 * sum(kernel²)`, or `None` if no layer is regularised.
    pub fn l2_penalty(&self) -> Result<Option<Tensor>> {
        let mut total: Option<Tensor> = None;
        for layer in &self.layers {
            if let Layer::Dense { kernel, l2: Some(l2), .. } | Layer::Conv2d { kernel, l2: Some(l2), .. } = layer {
                let term = crate::kernels::l2::l2_penalty(kernel.as_tensor(), *l2)?;
                total = Some(match total {
                    Some(t) => (t + term)?,
                    None => term,
                });
            }
        }
        Ok(total)
    }
}

/// TensorFlow's padding: `same` with stride 1 pads k - 1 zeros, the odd one at the bottom/right.
fn same_padding(padding: Padding, kh: usize, kw: usize) -> [usize; 4] {
    match padding {
        Padding::Valid => [0; 4],
        Padding::Same => [(kh - 1) / 2, kh / 2, (kw - 1) / 2, kw / 2],
    }
}

/// The activations the fused layer kernels apply themselves; softmax, which couples a row's
/// elements, is applied after them.
fn pointwise(activation: Activation) -> Option<Pointwise> {
    match activation {
        Activation::Linear => Some(Pointwise::Linear),
        Activation::Relu => Some(Pointwise::Relu),
        Activation::Sigmoid => Some(Pointwise::Sigmoid),
        Activation::Softmax => None,
    }
}

/// A dense layer's activated output; a ReLU is applied in the affine map's own pass.
fn dense(h: &Tensor, kernel: &Var, bias: &Var, activation: Activation) -> Result<Tensor> {
    let (kernel, bias) = (kernel.as_tensor(), bias.as_tensor());
    Ok(match activation {
        Activation::Relu => dense_affine_relu(h, kernel, bias)?,
        _ => apply_activation(&dense_affine(h, kernel, bias)?, activation)?,
    })
}

fn apply_activation(z: &Tensor, activation: Activation) -> Result<Tensor> {
    Ok(match activation {
        Activation::Linear => z.clone(),
        Activation::Relu => z.relu()?,
        Activation::Sigmoid => candle_nn::ops::sigmoid(z)?,
        Activation::Softmax => candle_nn::ops::softmax(z, D::Minus1)?,
    })
}

/// Inverted dropout with a host-drawn mask, so the mask comes from the job's seed.
fn dropout(h: &Tensor, rate: f64, rng: &mut ChaCha8Rng) -> Result<Tensor> {
    let scale = (1.0 / (1.0 - rate)) as f32;
    // A unit is dropped with probability threshold / 2³², `rate` to 32 bits.
    let threshold = (rate * 4_294_967_296.0) as u64;
    let mask = draw_per_element(h.elem_count(), rng, |stream| if u64::from(stream.next_u32()) < threshold { 0.0 } else { scale });
    Ok(h.mul(&Tensor::from_vec(mask, h.shape(), h.device())?)?)
}

fn gaussian_noise(h: &Tensor, stddev: f64, rng: &mut ChaCha8Rng) -> Result<Tensor> {
    let noise = draw_per_element(h.elem_count(), rng, |stream| (standard_normal(stream) * stddev) as f32);
    Ok(h.add(&Tensor::from_vec(noise, h.shape(), h.device())?)?)
}

/// Each value set to 0 (pepper) with probability level/2 and to 1 (salt) with probability level/2:
/// one 32-bit draw per value decides both, against thresholds of `level` to 32 bits.
fn salt_and_pepper(h: &Tensor, level: f64, rng: &mut ChaCha8Rng) -> Result<Tensor> {
    let codes = salt_and_pepper_codes(h.elem_count(), level, rng);
    let keep: Vec<f32> = codes.iter().map(|&c| if c < 0.0 { 1.0 } else { 0.0 }).collect();
    let salt: Vec<f32> = codes.iter().map(|&c| c.max(0.0)).collect();
    let keep = Tensor::from_vec(keep, h.shape(), h.device())?;
    let salt = Tensor::from_vec(salt, h.shape(), h.device())?;
    Ok(h.mul(&keep)?.add(&salt)?)
}

/// Per value: −1 to keep it, 0 for pepper, 1 for salt.
pub fn salt_and_pepper_codes(len: usize, level: f64, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let salt_from = (level / 2.0 * 4_294_967_296.0) as u64;
    let keep_from = (level * 4_294_967_296.0) as u64;
    draw_per_element(len, rng, |stream| {
        let u = u64::from(stream.next_u32());
        if u >= keep_from {
            -1.0
        } else if u >= salt_from {
            1.0
        } else {
            0.0
        }
    })
}

/// Values per random stream of [`draw_per_element`]; a constant, so that what is drawn does not
/// depend on the thread count.
const VALUES_PER_STREAM: usize = 1 << 14;

/// `len` values, each drawn by `draw` from a seeded stream: one seed taken from the job's RNG, and
/// for each run of [`VALUES_PER_STREAM`] values the ChaCha stream of that number, so the runs are
/// filled in parallel (a batch's dropout mask is a million values, too many for one stream).
fn draw_per_element(len: usize, rng: &mut ChaCha8Rng, draw: impl Fn(&mut ChaCha8Rng) -> f32 + Sync) -> Vec<f32> {
    let seed: u64 = rng.random();
    let mut values = vec![0.0f32; len];
    values.par_chunks_mut(VALUES_PER_STREAM).enumerate().for_each(|(run, values)| {
        let mut stream = ChaCha8Rng::seed_from_u64(seed);
        stream.set_stream(run as u64);
        values.iter_mut().for_each(|value| *value = draw(&mut stream));
    });
    values
}

/// One N(0, 1) draw by the Box–Muller transform (keeps the dependency list short).
pub fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // in (0, 1], so ln is finite
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn spec(text: &str) -> ModelSpec {
        ModelSpec::from_toml(text, "test").unwrap()
    }

    #[test]
    fn forward_shapes_and_softmax_rows_sum_to_one() {
        let spec = spec("input = [6, 2]\nlayers = [{ type = \"flatten\" }, { type = \"dense\", units = 5, activation = \"relu\" }, { type = \"dense\", units = 3, activation = \"softmax\" }]");
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let model = Model::build(&spec, &mut rng, &Device::Cpu).unwrap();
        assert_eq!(model.vars().len(), 4);
        let x = Tensor::ones((4, 6, 2), DType::F32, &Device::Cpu).unwrap();
        let out = model.forward(&x, Mode::Eval).unwrap();
        assert_eq!(out.pre_activation.dims(), &[4, 3]);
        let sums = out.activated().unwrap().sum(1).unwrap().to_vec1::<f32>().unwrap();
        assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-6), "{sums:?}");
    }

    #[test]
    fn layer_output_is_the_activated_hidden_layer_and_the_head_gives_probabilities() {
        let spec = spec("input = [3]\nlayers = [{ type = \"dense\", units = 4, activation = \"relu\" }, { type = \"dense\", units = 2, activation = \"softmax\" }]");
        let model = Model::build(&spec, &mut ChaCha8Rng::seed_from_u64(3), &Device::Cpu).unwrap();
        let x = Tensor::new(&[[1.0f32, -2.0, 0.5], [-1.0, 2.0, 3.0]], &Device::Cpu).unwrap();
        let hidden = model.layer_output(&x, 0).unwrap();
        let vars = model.vars();
        let expected = x.matmul(vars[0].as_tensor()).unwrap().broadcast_add(vars[1].as_tensor()).unwrap().relu().unwrap();
        assert_eq!(hidden.to_vec2::<f32>().unwrap(), expected.to_vec2::<f32>().unwrap());
        let head = model.layer_output(&x, 1).unwrap();
        let probabilities = model.forward(&x, Mode::Eval).unwrap().activated().unwrap();
        assert_eq!(head.to_vec2::<f32>().unwrap(), probabilities.to_vec2::<f32>().unwrap());
        assert!(model.layer_output(&x, 2).unwrap_err().to_string().contains("layers[2]"));
    }

    #[test]
    fn layer_output_of_a_convolution_is_channels_last() {
        let spec = spec(
            r#"input = [5, 5, 1]
            layers = [{ type = "conv2d", filters = 4, kernel = [3, 3], activation = "relu" }, { type = "flatten" },
                      { type = "dense", units = 2, activation = "softmax" }]"#,
        );
        let model = Model::build(&spec, &mut ChaCha8Rng::seed_from_u64(1), &Device::Cpu).unwrap();
        let x = Tensor::ones((2, 5, 5, 1), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(model.layer_output(&x, 0).unwrap().dims(), &[2, 3, 3, 4]);
    }

    #[test]
    fn a_convolution_before_a_pooling_keeps_its_own_output_for_analysis() {
        let spec = spec(
            r#"input = [6, 6, 2]
            layers = [{ type = "conv2d", filters = 3, kernel = [3, 3], activation = "relu" },
                      { type = "max_pool2d", pool = [2, 2] }, { type = "flatten" },
                      { type = "dense", units = 2, activation = "softmax" }]"#,
        );
        let model = Model::build(&spec, &mut ChaCha8Rng::seed_from_u64(4), &Device::Cpu).unwrap();
        let values: Vec<f32> = (0..2 * 6 * 6 * 2).map(|i| (i as f32 * 0.7).sin()).collect();
        let x = Tensor::from_vec(values, (2, 6, 6, 2), &Device::Cpu).unwrap();
        let map = model.layer_output(&x, 0).unwrap();
        assert_eq!(map.dims(), &[2, 4, 4, 3]);
        // The fused convolution + pooling gives the pooling of the convolution's own output.
        let pooled = model.layer_output(&x, 1).unwrap();
        let want = map.permute((0, 3, 1, 2)).unwrap().max_pool2d(2).unwrap().permute((0, 2, 3, 1)).unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(flat(&pooled), flat(&want));
    }

    #[test]
    fn conv_shapes_follow_the_plan_with_tf_same_padding() {
        let spec = spec(
            r#"input = [7, 6, 2]
            layers = [{ type = "conv2d", filters = 3, kernel = [2, 2], padding = "same", activation = "relu" },
                      { type = "conv2d", filters = 4, kernel = [3, 3] },
                      { type = "max_pool2d", pool = [2, 2] }, { type = "flatten" },
                      { type = "dense", units = 2, activation = "softmax" }]"#,
        );
        let model = Model::build(&spec, &mut ChaCha8Rng::seed_from_u64(1), &Device::Cpu).unwrap();
        assert_eq!(model.vars()[0].as_tensor().dims(), &[3, 2, 2, 2]);
        let x = Tensor::ones((5, 7, 6, 2), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(model.forward(&x, Mode::Eval).unwrap().pre_activation.dims(), &[5, 2]);
        assert_eq!(same_padding(Padding::Same, 2, 5), [0, 1, 2, 2]);
    }

    #[test]
    fn even_same_padding_puts_the_extra_zeros_bottom_right() {
        // A 2×2 all-ones kernel over a 2×2 image of ones, TF `same`: outputs 4 2 / 2 1.
        let x = Tensor::ones((1, 1, 2, 2), DType::F32, &Device::Cpu).unwrap();
        let k = Tensor::ones((1, 1, 2, 2), DType::F32, &Device::Cpu).unwrap();
        let y = crate::kernels::conv::conv2d(&x, &k, same_padding(Padding::Same, 2, 2)).unwrap();
        assert_eq!(y.flatten_all().unwrap().to_vec1::<f32>().unwrap(), vec![4.0, 2.0, 2.0, 1.0]);
    }

    #[test]
    fn same_seed_same_weights() {
        let spec = spec("input = [8]\nlayers = [{ type = \"dense\", units = 3, activation = \"softmax\" }]");
        let weights = |seed| {
            let model = Model::build(&spec, &mut ChaCha8Rng::seed_from_u64(seed), &Device::Cpu).unwrap();
            model.vars()[0].as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()
        };
        assert_eq!(weights(3), weights(3));
        assert_ne!(weights(3), weights(4));
    }

    #[test]
    fn dropout_scales_kept_units_and_is_off_in_eval() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let h = Tensor::ones((100, 100), DType::F32, &Device::Cpu).unwrap();
        let out = dropout(&h, 0.25, &mut rng).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let kept = out.iter().filter(|&&v| v != 0.0).count() as f64 / out.len() as f64;
        assert!((kept - 0.75).abs() < 0.02, "kept {kept}");
        assert!(out.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-6));

        let spec = spec("input = [4]\nlayers = [{ type = \"dropout\", rate = 0.5 }, { type = \"dense\", units = 2 }]");
        let model = Model::build(&spec, &mut rng, &Device::Cpu).unwrap();
        let x = Tensor::ones((3, 4), DType::F32, &Device::Cpu).unwrap();
        let a = model.forward(&x, Mode::Eval).unwrap().pre_activation.to_vec2::<f32>().unwrap();
        let b = model.forward(&x, Mode::Eval).unwrap().pre_activation.to_vec2::<f32>().unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn training_noise_does_not_depend_on_the_thread_count() {
        // Several random streams' worth of values.
        let h = Tensor::ones((3, 20_000), DType::F32, &Device::Cpu).unwrap();
        let draw = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(3);
            pool.install(|| {
                let dropped = dropout(&h, 0.3, &mut rng).unwrap();
                let noisy = gaussian_noise(&h, 0.5, &mut rng).unwrap();
                [dropped, noisy].map(|t| t.flatten_all().unwrap().to_vec1::<f32>().unwrap())
            })
        };
        let one = draw(1);
        assert_ne!(one[0][..VALUES_PER_STREAM], one[0][VALUES_PER_STREAM..2 * VALUES_PER_STREAM], "streams differ");
        assert_eq!(one, draw(3));
    }

    #[test]
    fn dropout_masks_are_independent_across_steps_items_streams_and_neighbours() {
        // a1.cifar_cnn's first dropout: a batch of 32 pooled maps of 15 × 15 × 32, 14 streams' worth.
        let (items, per_item) = (32, 15 * 15 * 32);
        let h = Tensor::ones((items, per_item), DType::F32, &Device::Cpu).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut step = || dropout(&h, 0.25, &mut rng).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let (first, second) = (step(), step());
        let kept = |xs: &[f32]| xs.iter().filter(|&&x| x != 0.0).count() as f64 / xs.len() as f64;
        let agreement = |xs: &[f32], ys: &[f32]| {
            xs.iter().zip(ys).filter(|(x, y)| (**x == 0.0) == (**y == 0.0)).count() as f64 / xs.len() as f64
        };
        // Two independent keep/drop decisions at rate 0.25 agree with probability 0.75² + 0.25².
        let independent = 0.625;
        // Five standard errors of a share of n decisions.
        let tolerance = |share: f64, n: usize| 5.0 * (share * (1.0 - share) / n as f64).sqrt();
        for (run, values) in first.chunks(VALUES_PER_STREAM).enumerate() {
            assert!((kept(values) - 0.75).abs() < tolerance(0.75, values.len()), "stream {run} keeps {}", kept(values));
        }
        let n = first.len();
        let steps = agreement(&first, &second);
        assert!((steps - independent).abs() < tolerance(independent, n), "two steps agree on {steps}");
        let items_apart = agreement(&first[..n - per_item], &first[per_item..]);
        assert!((items_apart - independent).abs() < tolerance(independent, n), "neighbouring items agree on {items_apart}");
        let streams_apart = agreement(&first[..n - VALUES_PER_STREAM], &first[VALUES_PER_STREAM..]);
        assert!((streams_apart - independent).abs() < tolerance(independent, n), "neighbouring streams agree on {streams_apart}");
        let neighbours = agreement(&first[..n - 1], &first[1..]);
        assert!((neighbours - independent).abs() < tolerance(independent, n), "neighbouring units agree on {neighbours}");
    }

    #[test]
    fn gaussian_noise_has_the_requested_spread() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let h = Tensor::zeros(20_000, DType::F32, &Device::Cpu).unwrap();
        let xs = gaussian_noise(&h, 2.0, &mut rng).unwrap().to_vec1::<f32>().unwrap();
        let mean = xs.iter().map(|&x| x as f64).sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.05 && (var.sqrt() - 2.0).abs() < 0.05, "mean {mean} std {}", var.sqrt());
    }

    #[test]
    fn salt_and_pepper_sets_the_requested_share_to_zero_and_one_and_keeps_the_rest() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let h = Tensor::full(0.5f32, 40_000, &Device::Cpu).unwrap();
        let xs = salt_and_pepper(&h, 0.3, &mut rng).unwrap().to_vec1::<f32>().unwrap();
        let share = |v: f32| xs.iter().filter(|&&x| x == v).count() as f64 / xs.len() as f64;
        assert!((share(0.0) - 0.15).abs() < 0.01 && (share(1.0) - 0.15).abs() < 0.01, "{} {}", share(0.0), share(1.0));
        assert!((share(0.5) - 0.7).abs() < 0.01);
        // Level 1 leaves nothing of the input; the same seed draws the same noise.
        let all = salt_and_pepper(&h, 1.0, &mut ChaCha8Rng::seed_from_u64(4)).unwrap().to_vec1::<f32>().unwrap();
        assert!(all.iter().all(|&x| x == 0.0 || x == 1.0));
        let again = salt_and_pepper(&h, 0.3, &mut ChaCha8Rng::seed_from_u64(4)).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(xs, again);
        // Inference leaves the input alone.
        let spec = spec("input = [4]\nlayers = [{ type = \"salt_and_pepper\", level = 0.5 }, { type = \"dense\", units = 4, activation = \"sigmoid\" }]");
        let model = Model::build(&spec, &mut ChaCha8Rng::seed_from_u64(2), &Device::Cpu).unwrap();
        let x = Tensor::new(&[[0.5f32, 0.5, 0.5, 0.5]], &Device::Cpu).unwrap();
        let twice = |x: &Tensor| model.forward(x, Mode::Eval).unwrap().pre_activation.to_vec2::<f32>().unwrap();
        assert_eq!(twice(&x), twice(&x));
    }

    #[test]
    fn decoding_a_layer_output_finishes_the_forward_pass() {
        let spec = spec(
            "input = [4]\nlayers = [{ type = \"dense\", units = 3, activation = \"relu\" }, { type = \"dropout\", rate = 0.5 }, { type = \"dense\", units = 4, activation = \"sigmoid\" }]",
        );
        let model = Model::build(&spec, &mut ChaCha8Rng::seed_from_u64(3), &Device::Cpu).unwrap();
        let x = Tensor::new(&[[0.1f32, 0.9, 0.4, 0.0], [1.0, 0.0, 0.2, 0.3]], &Device::Cpu).unwrap();
        let code = model.layer_output(&x, 0).unwrap();
        let decoded = model.decode_from(&code, 0).unwrap().to_vec2::<f32>().unwrap();
        let direct = model.forward(&x, Mode::Eval).unwrap().activated().unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(decoded, direct);
        assert!(model.decode_from(&code, 2).is_err(), "nothing follows the last layer");
    }

    #[test]
    fn l2_penalty_is_factor_times_sum_of_squares() {
        let spec = spec("input = [3]\nlayers = [{ type = \"dense\", units = 2, l2 = 0.5 }, { type = \"dense\", units = 2 }]");
        let model = Model::build(&spec, &mut ChaCha8Rng::seed_from_u64(2), &Device::Cpu).unwrap();
        let kernel = model.vars()[0].as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let expected: f32 = 0.5 * kernel.iter().map(|w| w * w).sum::<f32>();
        let got = model.l2_penalty().unwrap().unwrap().to_scalar::<f32>().unwrap();
        assert!((got - expected).abs() < 1e-6);
    }

    #[test]
    fn weights_round_trip_through_safetensors_and_mismatches_are_named() {
        let spec: ModelSpec = toml::from_str(
            "input = [6, 6, 1]\nlayers = [{ type = \"conv2d\", filters = 2, kernel = [3, 3] }, { type = \"flatten\" }, { type = \"dense\", units = 3, activation = \"softmax\" }]",
        )
        .unwrap();
        use crate::init::rng_stream;
        let trained = Model::build(&spec, &mut rng_stream(1, 0), &Device::Cpu).unwrap();
        let fresh = Model::build(&spec, &mut rng_stream(2, 0), &Device::Cpu).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        trained.save_weights(&path).unwrap();
        fresh.load_weights(&path).unwrap();
        let values = |m: &Model| -> Vec<Vec<f32>> {
            m.vars().iter().map(|v| v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect()
        };
        assert_eq!(values(&trained), values(&fresh));
        let names: Vec<String> = trained.named_vars().unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["conv2d.kernel", "conv2d.bias", "dense.kernel", "dense.bias"]);

        let wider: ModelSpec = toml::from_str(&toml::to_string(&spec).unwrap().replace("units = 3", "units = 4")).unwrap();
        let err = Model::build(&wider, &mut rng_stream(1, 0), &Device::Cpu).unwrap().load_weights(&path).unwrap_err().to_string();
        assert!(err.contains("dense.kernel") && err.contains("w.safetensors"), "{err}");
    }
}
