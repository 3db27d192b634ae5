//! Keras-like model specifications, as written in the experiment catalogue:
//!
//! ```toml
//! input = [28, 28, 1]
//! layers = [
//!   { type = "flatten" },
//!   { type = "dense", units = 256, activation = "relu" },
//!   { type = "dense", units = 10, activation = "softmax" },
//! ]
//! ```
//!
//! A spec is checked before anything is built: [`ModelSpec::plan`] walks the layers, computes every
//! output shape and parameter count, and rejects impossible combinations with an error naming the layer.

use serde::{Deserialize, Serialize};

use crate::error::{NnError, Result};

/// A sequential model: an input shape (without the batch dimension) and a list of layers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub input: Vec<usize>,
    pub layers: Vec<LayerSpec>,
}

/// One layer, tagged by `type` as in the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerSpec {
    /// Collapses all non-batch dimensions into one.
    Flatten,
    /// Fully connected layer; Glorot-uniform kernel, zero bias. `l2` adds `l2 * sum(kernel²)` to the loss.
    Dense {
        units: usize,
        #[serde(default)]
        activation: Activation,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        l2: Option<f64>,
    },
    /// 2-D convolution over an `[height, width, channels]` input, stride 1; Glorot-uniform kernel,
    /// zero bias. `same` padding follows TensorFlow: with an even kernel the extra row and column
    /// of zeros go at the bottom and right.
    Conv2d {
        filters: usize,
        kernel: [usize; 2],
        #[serde(default)]
        padding: Padding,
        #[serde(default)]
        activation: Activation,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        l2: Option<f64>,
    },
    /// Max pooling with `valid` padding: a trailing row or column that does not fill a window is dropped.
    /// The stride defaults to the pool size, as in Keras.
    MaxPool2d {
        pool: [usize; 2],
        #[serde(default, skip_serializing_if = "Option::is_none")]
        strides: Option<[usize; 2]>,
    },
    /// Inverted dropout, active in training only.
    Dropout { rate: f64 },
    /// Additive N(0, stddev²) noise, active in training only.
    GaussianNoise { stddev: f64 },
    /// Salt-and-pepper noise, active in training only: each value independently set to 0 or to 1
    /// with probability `level` (half each). Before the first layer of a reconstruction model it
    /// makes a denoising autoencoder: the loss compares the output with the clean input.
    SaltAndPepper { level: f64 },
}

/// Activation functions, named as in Keras. The default (no `activation` given) is linear, as in Keras.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    #[default]
    Linear,
    Relu,
    Sigmoid,
    Softmax,
}

/// Convolution padding, as in Keras.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Padding {
    #[default]
    Valid,
    Same,
}

/// A layer with its Keras-style name, output shape and parameter count, as computed from a spec.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedLayer {
    /// Keras-style unique name: `dense`, `dense_1`, `flatten`, …
    pub name: String,
    /// Keras class name: `Dense`, `Flatten`, …
    pub kind: &'static str,
    pub input_shape: Vec<usize>,
    pub output_shape: Vec<usize>,
    pub params: usize,
    /// Multiply-adds of one forward pass of one sample, times two (the usual FLOP convention).
    pub flops: usize,
}

impl LayerSpec {
    fn kind(&self) -> &'static str {
        match self {
            LayerSpec::Flatten => "Flatten",
            LayerSpec::Dense { .. } => "Dense",
            LayerSpec::Conv2d { .. } => "Conv2D",
            LayerSpec::MaxPool2d { .. } => "MaxPooling2D",
            LayerSpec::Dropout { .. } => "Dropout",
            LayerSpec::GaussianNoise { .. } => "GaussianNoise",
            LayerSpec::SaltAndPepper { .. } => "SaltAndPepper",
        }
    }

    fn base_name(&self) -> &'static str {
        match self {
            LayerSpec::Flatten => "flatten",
            LayerSpec::Dense { .. } => "dense",
            LayerSpec::Conv2d { .. } => "conv2d",
            LayerSpec::MaxPool2d { .. } => "max_pooling2d",
            LayerSpec::Dropout { .. } => "dropout",
            LayerSpec::GaussianNoise { .. } => "gaussian_noise",
            LayerSpec::SaltAndPepper { .. } => "salt_and_pepper",
        }
    }
}

impl ModelSpec {
    /// Parses a spec from TOML text; `origin` names the file in error messages.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        let spec: ModelSpec = toml::from_str(text).map_err(|e| NnError::spec(origin, e.to_string().replace('\n', " ")))?;
        spec.plan()?;
        Ok(spec)
    }

    /// Validates the spec and computes each layer's name, output shape and parameter count.
    pub fn plan(&self) -> Result<Vec<PlannedLayer>> {
        if self.input.is_empty() || self.input.contains(&0) {
            return Err(NnError::spec("input", format!("shape {:?} must have at least one dimension, none zero", self.input)));
        }
        if self.layers.is_empty() {
            return Err(NnError::spec("layers", "a model needs at least one layer"));
        }
        let mut shape = self.input.clone();
        let mut seen = std::collections::HashMap::<&str, usize>::new();
        let mut planned = Vec::with_capacity(self.layers.len());
        for (index, layer) in self.layers.iter().enumerate() {
            let field = format!("layers[{index}] ({})", layer.base_name());
            let (output_shape, params, flops) = layer_output(layer, &shape, &field)?;
            let count = seen.entry(layer.base_name()).or_insert(0);
            let name = match *count {
                0 => layer.base_name().to_string(),
                n => format!("{}_{n}", layer.base_name()),
            };
            *count += 1;
            planned.push(PlannedLayer {
                name,
                kind: layer.kind(),
                input_shape: shape.clone(),
                output_shape: output_shape.clone(),
                params,
                flops,
            });
            shape = output_shape;
        }
        Ok(planned)
    }

    /// Total trainable parameters.
    pub fn param_count(&self) -> Result<usize> {
        Ok(self.plan()?.iter().map(|l| l.params).sum())
    }

    /// The activation of the last layer, which decides which losses are valid.
    pub fn output_activation(&self) -> Option<Activation> {
        self.layers.iter().rev().find_map(|l| match l {
            LayerSpec::Dense { activation, .. } => Some(*activation),
            _ => None,
        })
    }

    /// Number of values per sample that the model expects.
    pub fn input_len(&self) -> usize {
        self.input.iter().product()
    }
}

fn layer_output(layer: &LayerSpec, input: &[usize], field: &str) -> Result<(Vec<usize>, usize, usize)> {
    match layer {
        LayerSpec::Flatten => Ok((vec![input.iter().product()], 0, 0)),
        LayerSpec::Dense { units, l2, .. } => {
            if *units == 0 {
                return Err(NnError::spec(format!("{field}.units"), "must be at least 1"));
            }
            check_l2(*l2, field)?;
            let [fan_in] = input else {
                return Err(NnError::spec(
                    field,
                    format!("expects a flat input but gets shape {input:?}; put a flatten layer before it"),
                ));
            };
            Ok((vec![*units], fan_in * units + units, 2 * fan_in * units))
        }
        LayerSpec::Conv2d { filters, kernel, padding, l2, .. } => {
            check_l2(*l2, field)?;
            let [h, w, c] = image_shape(input, field)?;
            let [kh, kw] = *kernel;
            if *filters == 0 || kh == 0 || kw == 0 {
                return Err(NnError::spec(field, "filters and both kernel sizes must be at least 1"));
            }
            let (oh, ow) = match padding {
                Padding::Same => (h, w),
                Padding::Valid if kh <= h && kw <= w => (h - kh + 1, w - kw + 1),
                Padding::Valid => {
                    return Err(NnError::spec(
                        field,
                        format!("a {kh}×{kw} kernel does not fit a {h}×{w} input with valid padding"),
                    ))
                }
            };
            let params = kh * kw * c * filters + filters;
            Ok((vec![oh, ow, *filters], params, 2 * kh * kw * c * filters * oh * ow))
        }
        LayerSpec::MaxPool2d { pool, strides } => {
            let [h, w, c] = image_shape(input, field)?;
            let [ph, pw] = *pool;
            let [sh, sw] = strides.unwrap_or(*pool);
            if ph == 0 || pw == 0 || sh == 0 || sw == 0 {
                return Err(NnError::spec(field, "pool sizes and strides must be at least 1"));
            }
            if ph > h || pw > w {
                return Err(NnError::spec(field, format!("a {ph}×{pw} pool does not fit a {h}×{w} input")));
            }
            Ok((vec![(h - ph) / sh + 1, (w - pw) / sw + 1, c], 0, 0))
        }
        LayerSpec::Dropout { rate } => {
            if !(0.0..1.0).contains(rate) {
                return Err(NnError::spec(format!("{field}.rate"), format!("must be in [0, 1), got {rate}")));
            }
            Ok((input.to_vec(), 0, 0))
        }
        LayerSpec::GaussianNoise { stddev } => {
            if !(stddev.is_finite() && *stddev >= 0.0) {
                return Err(NnError::spec(format!("{field}.stddev"), format!("must be finite and ≥ 0, got {stddev}")));
            }
            Ok((input.to_vec(), 0, 0))
        }
        LayerSpec::SaltAndPepper { level } => {
            if !(0.0..=1.0).contains(level) {
                return Err(NnError::spec(format!("{field}.level"), format!("must be in [0, 1], got {level}")));
            }
            Ok((input.to_vec(), 0, 0))
        }
    }
}

fn check_l2(l2: Option<f64>, field: &str) -> Result<()> {
    match l2 {
        Some(l2) if !(l2.is_finite() && l2 >= 0.0) => {
            Err(NnError::spec(format!("{field}.l2"), format!("must be a finite factor ≥ 0, got {l2}")))
        }
        _ => Ok(()),
    }
}

/// Convolution and pooling need an image: `[height, width, channels]`.
fn image_shape(input: &[usize], field: &str) -> Result<[usize; 3]> {
    match *input {
        [h, w, c] => Ok([h, w, c]),
        _ => Err(NnError::spec(field, format!("expects an image input [height, width, channels] but gets shape {input:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DENSE_LINEAR: &str = r#"
        input = [784]
        layers = [
          { type = "dense", units = 256 },
          { type = "dense", units = 10, activation = "softmax" },
        ]"#;

    #[test]
    fn a1_dense_linear_has_keras_param_count() {
        let spec = ModelSpec::from_toml(DENSE_LINEAR, "test").unwrap();
        let plan = spec.plan().unwrap();
        assert_eq!(plan[0].params, 200_960);
        assert_eq!(plan[1].params, 2_570);
        assert_eq!(spec.param_count().unwrap(), 203_530);
        assert_eq!(plan[1].name, "dense_1");
        assert_eq!(spec.output_activation(), Some(Activation::Softmax));
    }

    #[test]
    fn a7_base_and_a7b_param_counts() {
        let dense = |u: usize, a: &str| format!(r#"{{ type = "dense", units = {u}, activation = "{a}" }}"#);
        let text = format!(
            "input = [28, 28, 1]\nlayers = [{{ type = \"flatten\" }}, {}, {}, {}]",
            dense(64, "relu"),
            dense(64, "relu"),
            dense(10, "softmax")
        );
        assert_eq!(ModelSpec::from_toml(&text, "t").unwrap().param_count().unwrap(), 55_050);
        let text = format!(
            "input = [28, 28, 1]\nlayers = [{{ type = \"flatten\" }}, {}, {}, {}, {}]",
            dense(125, "relu"),
            dense(100, "relu"),
            dense(50, "relu"),
            dense(10, "softmax")
        );
        assert_eq!(ModelSpec::from_toml(&text, "t").unwrap().param_count().unwrap(), 116_285);
    }

    fn conv_spec(layers: &str, input: &str) -> ModelSpec {
        ModelSpec::from_toml(&format!("input = {input}\nlayers = [{layers}]"), "t").unwrap()
    }

    #[test]
    fn assignment_cnns_have_keras_param_counts() {
        // a1.cnn: 1,199,882 parameters.
        let a1_cnn = conv_spec(
            r#"{ type = "conv2d", filters = 32, kernel = [3, 3], activation = "relu" },
               { type = "conv2d", filters = 64, kernel = [3, 3], activation = "relu" },
               { type = "max_pool2d", pool = [2, 2] }, { type = "flatten" },
               { type = "dense", units = 128, activation = "relu" },
               { type = "dense", units = 10, activation = "softmax" }"#,
            "[28, 28, 1]",
        );
        let plan = a1_cnn.plan().unwrap();
        assert_eq!(plan[0].output_shape, vec![26, 26, 32]);
        assert_eq!(plan[2].output_shape, vec![12, 12, 64]);
        assert_eq!(plan[2].name, "max_pooling2d");
        assert_eq!(plan[1].name, "conv2d_1");
        assert_eq!(a1_cnn.param_count().unwrap(), 1_199_882);

        // a1.cifar_cnn: 624,106 parameters; `same` keeps 32×32, the odd 15 is pooled down to 6.
        let cifar = conv_spec(
            r#"{ type = "conv2d", filters = 32, kernel = [3, 3], padding = "same", activation = "relu" },
               { type = "conv2d", filters = 32, kernel = [3, 3], activation = "relu" },
               { type = "max_pool2d", pool = [2, 2] }, { type = "dropout", rate = 0.25 },
               { type = "conv2d", filters = 32, kernel = [3, 3], padding = "same", activation = "relu" },
               { type = "conv2d", filters = 32, kernel = [3, 3], activation = "relu" },
               { type = "max_pool2d", pool = [2, 2] }, { type = "dropout", rate = 0.25 },
               { type = "flatten" }, { type = "dense", units = 512, activation = "relu" },
               { type = "dropout", rate = 0.5 }, { type = "dense", units = 10, activation = "softmax" }"#,
            "[32, 32, 3]",
        );
        assert_eq!(cifar.plan().unwrap()[6].output_shape, vec![6, 6, 32]);
        assert_eq!(cifar.param_count().unwrap(), 624_106);

        // tp.cnn: 5×5 same sigmoid convolutions, 366,806 parameters.
        let tp = conv_spec(
            r#"{ type = "conv2d", filters = 32, kernel = [5, 5], padding = "same", activation = "sigmoid" },
               { type = "max_pool2d", pool = [2, 2] },
               { type = "conv2d", filters = 64, kernel = [5, 5], padding = "same", activation = "sigmoid" },
               { type = "max_pool2d", pool = [2, 2] }, { type = "flatten" },
               { type = "dense", units = 100, activation = "sigmoid" },
               { type = "dense", units = 10, activation = "softmax" }"#,
            "[28, 28, 1]",
        );
        assert_eq!(tp.param_count().unwrap(), 366_806);
    }

    #[test]
    fn impossible_convolutions_are_rejected() {
        let err = ModelSpec::from_toml("input = [784]\nlayers = [{ type = \"conv2d\", filters = 2, kernel = [3, 3] }]", "m")
            .unwrap_err();
        assert!(err.to_string().contains("image input"), "{err}");
        let err = ModelSpec::from_toml("input = [2, 2, 1]\nlayers = [{ type = \"conv2d\", filters = 2, kernel = [3, 3] }]", "m")
            .unwrap_err();
        assert!(err.to_string().contains("does not fit"), "{err}");
        let err =
            ModelSpec::from_toml("input = [4, 4, 1]\nlayers = [{ type = \"max_pool2d\", pool = [5, 5] }]", "m").unwrap_err();
        assert!(err.to_string().contains("layers[0] (max_pooling2d)"), "{err}");
    }

    #[test]
    fn unknown_layer_is_named_in_the_error() {
        let err =
            ModelSpec::from_toml("input = [4]\nlayers = [{ type = \"dense3d\", units = 2 }]", "m.toml").unwrap_err().to_string();
        assert!(err.contains("m.toml") && err.contains("dense3d"), "{err}");
    }

    #[test]
    fn unknown_field_and_bad_activation_are_rejected() {
        let err = ModelSpec::from_toml("input = [4]\nlayers = [{ type = \"dense\", unitz = 2 }]", "m.toml").unwrap_err();
        assert!(err.to_string().contains("unitz"), "{err}");
        let err =
            ModelSpec::from_toml("input = [4]\nlayers = [{ type = \"dense\", units = 2, activation = \"tanhh\" }]", "m.toml")
                .unwrap_err();
        assert!(err.to_string().contains("tanhh"), "{err}");
    }

    #[test]
    fn dense_on_an_image_needs_flatten() {
        let err =
            ModelSpec::from_toml("input = [28, 28, 1]\nlayers = [{ type = \"dense\", units = 2 }]", "m").unwrap_err().to_string();
        assert!(err.contains("layers[0] (dense)") && err.contains("flatten"), "{err}");
    }

    #[test]
    fn bad_sizes_name_the_field() {
        let err = ModelSpec::from_toml("input = [4]\nlayers = [{ type = \"dense\", units = 0 }]", "m").unwrap_err();
        assert!(err.to_string().contains("layers[0] (dense).units"), "{err}");
        let err = ModelSpec::from_toml("input = [4]\nlayers = [{ type = \"dropout\", rate = 1.5 }]", "m").unwrap_err();
        assert!(err.to_string().contains("rate"), "{err}");
        let err = ModelSpec::from_toml("input = [0]\nlayers = [{ type = \"flatten\" }]", "m").unwrap_err();
        assert!(err.to_string().contains("input"), "{err}");
    }
}
