//! Losses and metrics with Keras semantics.

use candle_core::{DType, Tensor, D};
use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::error::{NnError, Result};
use crate::model::Output;
use crate::spec::{Activation, ModelSpec};

/// Keras 2 clipped probabilities to [EPSILON, 1 - EPSILON] before taking the log.
const EPSILON: f64 = 1e-7;

/// How cross-entropy is computed from a softmax (or sigmoid) output. The two Keras generations differ, and the
/// difference is measurable: a clipped sample contributes no gradient at all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossConvention {
    /// Keras 3 (what the peer scripts install): from the logits whenever the output layer is a
    /// softmax or a sigmoid, as `softmax_cross_entropy_with_logits` / `sigmoid_cross_entropy_with_logits`,
    /// unclipped.
    #[default]
    Keras3,
    /// Keras 2: the probabilities clipped to [1e-7, 1 − 1e-7], then the log; a sample predicted
    /// beyond either bound has zero gradient.
    Keras2,
}

impl LossConvention {
    /// How a report states it.
    pub fn describe(self) -> &'static str {
        match self {
            LossConvention::Keras3 => "cross-entropy from the logits, unclipped (Keras 3)",
            LossConvention::Keras2 => "cross-entropy of probabilities clipped to [10⁻⁷, 1 − 10⁻⁷] (Keras 2)",
        }
    }
}

/// A loss under a convention: what a batch is scored by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Objective {
    pub loss: Loss,
    pub convention: LossConvention,
}

/// What a model is trained to do, which its loss decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// Classification: `-sum(y * log p)` on softmax outputs against integer class labels (one-hot
    /// targets). Accuracy is measured.
    CategoricalCrossentropy,
    /// Reconstruction: the model's sigmoid outputs are compared with its own clean input (before any
    /// training-only noise layer), `-mean(x log p + (1 - x) log(1 - p))` over every value. There is no
    /// accuracy.
    BinaryCrossentropy,
}

impl Objective {
    /// How a report states it, e.g. "categorical cross-entropy from the logits, unclipped (Keras 3)".
    pub fn describe(self) -> String {
        let name = match self.loss {
            Loss::CategoricalCrossentropy => "categorical",
            Loss::BinaryCrossentropy => "binary",
        };
        format!("{name} {}", self.convention.describe())
    }

    /// Mean loss over the batch (a scalar tensor) and, for a classifier, the number of correct
    /// argmax predictions against `batch.labels`.
    pub fn batch(self, output: &Output, batch: &Dataset) -> Result<(Tensor, Option<usize>)> {
        match self.loss {
            Loss::CategoricalCrossentropy => {
                let (loss, correct) = categorical_crossentropy(output, &batch.labels, self.convention)?;
                Ok((loss, Some(correct)))
            }
            Loss::BinaryCrossentropy => {
                let target = batch.x.flatten_from(1)?;
                Ok((binary_crossentropy(output, &target, self.convention)?, None))
            }
        }
    }
}

impl Loss {
    /// Whether the loss measures accuracy (a classifier) or not (a reconstruction).
    pub fn has_accuracy(self) -> bool {
        matches!(self, Loss::CategoricalCrossentropy)
    }

    /// Checks that the model suits this loss: its last activation, and for a reconstruction an
    /// output of as many values as its input.
    pub fn check_model(self, spec: &ModelSpec) -> Result<()> {
        let head = spec.output_activation();
        match (self, head) {
            (Loss::CategoricalCrossentropy, Some(Activation::Softmax)) => Ok(()),
            (Loss::CategoricalCrossentropy, other) => Err(NnError::spec(
                "loss",
                format!("categorical_crossentropy needs a softmax output layer, the model ends in {other:?}"),
            )),
            (Loss::BinaryCrossentropy, Some(Activation::Sigmoid)) => {
                let outputs: usize = spec.plan()?.last().map_or(0, |l| l.output_shape.iter().product());
                if outputs != spec.input_len() {
                    return Err(NnError::spec(
                        "loss",
                        format!(
                            "binary_crossentropy reconstructs the input: the model has {} input values but {outputs} outputs",
                            spec.input_len()
                        ),
                    ));
                }
                Ok(())
            }
            (Loss::BinaryCrossentropy, other) => Err(NnError::spec(
                "loss",
                format!("binary_crossentropy needs a sigmoid output layer, the model ends in {other:?}"),
            )),
        }
    }
}

/// Both conventions start from log-softmax of the logits. Keras 2's clipping of p to [ε, 1-ε] before
/// the log is the same as clamping log-softmax to [ln ε, ln(1-ε)], which is numerically stable and has
/// the same (zero) gradient where clipped.
fn categorical_crossentropy(output: &Output, labels: &Tensor, convention: LossConvention) -> Result<(Tensor, usize)> {
    let z = &output.pre_activation;
    let log_p = candle_nn::ops::log_softmax(z, D::Minus1)?;
    let picked = log_p.gather(&labels.unsqueeze(1)?, 1)?.squeeze(1)?;
    let picked = match convention {
        LossConvention::Keras3 => picked,
        LossConvention::Keras2 => picked.clamp(EPSILON.ln(), (1.0 - EPSILON).ln())?,
    };
    let loss = picked.mean_all()?.neg()?;
    let correct = z.argmax(D::Minus1)?.eq(labels)?.to_dtype(DType::U32)?.sum_all()?.to_scalar::<u32>()?;
    Ok((loss, correct as usize))
}

/// Keras 3: `sigmoid_cross_entropy_with_logits`, max(z, 0) − z·x + ln(1 + e^−|z|), stable for any z.
/// Keras 2: the sigmoid's probabilities clipped to [ε, 1 − ε], then the log of each side. Both are
/// averaged over every value of the batch (Keras' mean over the last axis, then over the batch).
fn binary_crossentropy(output: &Output, target: &Tensor, convention: LossConvention) -> Result<Tensor> {
    let z = &output.pre_activation;
    if z.dims() != target.dims() {
        return Err(NnError::Data(format!("binary_crossentropy: output {:?} against target {:?}", z.dims(), target.dims())));
    }
    let per_value = match convention {
        LossConvention::Keras3 => crate::kernels::bce::bce_with_logits(z, target)?,
        LossConvention::Keras2 => {
            let p = candle_nn::ops::sigmoid(z)?.clamp(EPSILON, 1.0 - EPSILON)?;
            let one_minus = |t: &Tensor| -> Result<Tensor> { Ok(t.neg()?.affine(1.0, 1.0)?) };
            (target.mul(&p.log()?)? + one_minus(target)?.mul(&one_minus(&p)?.log()?)?)?.neg()?
        }
    };
    Ok(per_value.mean_all()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn output(rows: &[[f32; 3]]) -> Output {
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        Output { pre_activation: Tensor::from_vec(flat, (rows.len(), 3), &Device::Cpu).unwrap(), activation: Activation::Softmax }
    }

    /// A batch of `labels.len()` samples of 3 zero values with these labels.
    fn batch_of(labels: &[u32]) -> Dataset {
        let n = labels.len();
        Dataset {
            x: Tensor::zeros((n, 3), DType::F32, &Device::Cpu).unwrap(),
            labels: Tensor::new(labels, &Device::Cpu).unwrap(),
        }
    }

    const KERAS3: Objective = Objective { loss: Loss::CategoricalCrossentropy, convention: LossConvention::Keras3 };
    const KERAS2: Objective = Objective { loss: Loss::CategoricalCrossentropy, convention: LossConvention::Keras2 };

    #[test]
    fn matches_hand_computed_crossentropy_under_both_conventions() {
        let out = output(&[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]);
        let labels = batch_of(&[2, 0]);
        let p2 = (3f64.exp()) / (1f64.exp() + 2f64.exp() + 3f64.exp());
        let expected = (-(p2.ln()) - (1.0f64 / 3.0).ln()) / 2.0;
        for objective in [KERAS3, KERAS2] {
            let (loss, correct) = objective.batch(&out, &labels).unwrap();
            assert!((loss.to_scalar::<f32>().unwrap() as f64 - expected).abs() < 1e-6, "{objective:?}");
            // Row 0 is right; row 1 is a three-way tie, and argmax takes the first index (class 0): right too.
            assert_eq!(correct, Some(2));
        }
    }

    /// The gradient of the mean loss with respect to the logits.
    fn logit_gradient(objective: Objective, rows: &[[f32; 3]], labels: &[u32]) -> Vec<Vec<f32>> {
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        let z = candle_core::Var::from_vec(flat, (rows.len(), 3), &Device::Cpu).unwrap();
        let out = Output { pre_activation: z.as_tensor().clone(), activation: Activation::Softmax };
        let (loss, _) = objective.batch(&out, &batch_of(labels)).unwrap();
        loss.backward().unwrap().get(z.as_tensor()).unwrap().to_vec2().unwrap()
    }

    #[test]
    fn keras2_clips_confident_answers_keras3_keeps_their_gradient() {
        // Confidently wrong: Keras 2 clips the loss at -ln ε and passes no gradient; Keras 3 does neither.
        let out = output(&[[100.0, 0.0, 0.0]]);
        let labels = batch_of(&[1]);
        let (clipped, correct) = KERAS2.batch(&out, &labels).unwrap();
        assert!((clipped.to_scalar::<f32>().unwrap() as f64 + EPSILON.ln()).abs() < 1e-4);
        assert_eq!(correct, Some(0));
        let (unclipped, _) = KERAS3.batch(&out, &labels).unwrap();
        assert!((unclipped.to_scalar::<f32>().unwrap() - 100.0).abs() < 1e-3);
        assert_eq!(logit_gradient(KERAS2, &[[100.0, 0.0, 0.0]], &[1]), vec![vec![0.0; 3]]);
        // softmax - one-hot: (1, -1, 0) up to e^-100.
        let g = logit_gradient(KERAS3, &[[100.0, 0.0, 0.0]], &[1]);
        assert!((g[0][0] - 1.0).abs() < 1e-6 && (g[0][1] + 1.0).abs() < 1e-6, "{g:?}");
        // An unsure sample has the same gradient under both.
        let (a, b) = (logit_gradient(KERAS2, &[[0.5, 0.0, -0.5]], &[1]), logit_gradient(KERAS3, &[[0.5, 0.0, -0.5]], &[1]));
        assert_eq!(a, b);
    }

    fn spec(text: &str) -> ModelSpec {
        ModelSpec::from_toml(text, "t").unwrap()
    }

    #[test]
    fn each_loss_checks_its_head() {
        let classifier = spec("input = [4]\nlayers = [{ type = \"dense\", units = 3, activation = \"softmax\" }]");
        let relu = spec("input = [4]\nlayers = [{ type = \"dense\", units = 3, activation = \"relu\" }]");
        let autoencoder = spec(
            "input = [2, 2, 1]\nlayers = [{ type = \"flatten\" }, { type = \"dense\", units = 4, activation = \"sigmoid\" }]",
        );
        let too_small = spec("input = [4]\nlayers = [{ type = \"dense\", units = 3, activation = \"sigmoid\" }]");
        assert!(Loss::CategoricalCrossentropy.check_model(&classifier).is_ok());
        assert!(Loss::CategoricalCrossentropy.check_model(&relu).is_err());
        assert!(Loss::BinaryCrossentropy.check_model(&autoencoder).is_ok());
        assert!(Loss::BinaryCrossentropy.check_model(&classifier).unwrap_err().to_string().contains("sigmoid"));
        assert!(Loss::BinaryCrossentropy
            .check_model(&too_small)
            .unwrap_err()
            .to_string()
            .contains("4 input values but 3 outputs"));
    }

    const BCE3: Objective = Objective { loss: Loss::BinaryCrossentropy, convention: LossConvention::Keras3 };
    const BCE2: Objective = Objective { loss: Loss::BinaryCrossentropy, convention: LossConvention::Keras2 };

    /// The batch's clean inputs are the targets: one sample, 3 values.
    fn reconstruction(logits: [f32; 3], clean: [f32; 3]) -> (Output, Dataset) {
        let device = Device::Cpu;
        let z = Tensor::new(&[logits], &device).unwrap();
        let batch = Dataset { x: Tensor::new(&[clean], &device).unwrap(), labels: Tensor::new(&[0u32], &device).unwrap() };
        (Output { pre_activation: z, activation: Activation::Sigmoid }, batch)
    }

    #[test]
    fn binary_crossentropy_matches_the_formula_and_has_no_accuracy() {
        let (out, batch) = reconstruction([2.0, -1.0, 0.0], [1.0, 0.25, 0.0]);
        let sigmoid = |z: f64| 1.0 / (1.0 + (-z).exp());
        let bce = |z: f64, x: f64| -(x * sigmoid(z).ln() + (1.0 - x) * (1.0 - sigmoid(z)).ln());
        let expected = (bce(2.0, 1.0) + bce(-1.0, 0.25) + bce(0.0, 0.0)) / 3.0;
        for objective in [BCE3, BCE2] {
            let (loss, correct) = objective.batch(&out, &batch).unwrap();
            assert!((loss.to_scalar::<f32>().unwrap() as f64 - expected).abs() < 1e-6, "{objective:?}");
            assert_eq!(correct, None);
        }
        // A confident, wrong value: Keras 3 keeps growing from the logits, Keras 2 stops at −ln ε.
        let (out, batch) = reconstruction([-40.0, 0.0, 0.0], [1.0, 0.5, 0.5]);
        let (keras3, _) = BCE3.batch(&out, &batch).unwrap();
        let (keras2, _) = BCE2.batch(&out, &batch).unwrap();
        let rest = 2.0 * 2f64.ln();
        assert!((keras3.to_scalar::<f32>().unwrap() as f64 - (40.0 + rest) / 3.0).abs() < 1e-4);
        assert!((keras2.to_scalar::<f32>().unwrap() as f64 - (-EPSILON.ln() + rest) / 3.0).abs() < 1e-4);
    }

    #[test]
    fn the_convention_defaults_to_keras3_and_reads_from_the_catalogue() {
        assert_eq!(LossConvention::default(), LossConvention::Keras3);
        #[derive(Deserialize)]
        struct T {
            convention: LossConvention,
        }
        assert_eq!(toml::from_str::<T>("convention = \"keras2\"").unwrap().convention, LossConvention::Keras2);
        assert!(toml::from_str::<T>("convention = \"keras1\"").is_err());
    }

    #[test]
    fn describe_names_the_loss_and_its_convention() {
        let keras2 = Objective { loss: Loss::CategoricalCrossentropy, convention: LossConvention::Keras2 };
        assert_eq!(keras2.describe(), "categorical cross-entropy of probabilities clipped to [10⁻⁷, 1 − 10⁻⁷] (Keras 2)");
        assert_eq!(BCE3.describe(), "binary cross-entropy from the logits, unclipped (Keras 3)");
    }
}
