//! Losses and metrics with Keras semantics.

use candle_core::{DType, Tensor, D};
use serde::{Deserialize, Serialize};

use crate::error::{NnError, Result};
use crate::model::Output;
use crate::spec::Activation;

/// Keras 2 clipped probabilities to [EPSILON, 1 - EPSILON] before taking the log.
const EPSILON: f64 = 1e-7;

/// How cross-entropy is computed from a softmax output. The two Keras generations differ, and the
/// difference is measurable: a clipped sample contributes no gradient at all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossConvention {
    /// Keras 3 (what the peer scripts install): from the logits whenever the output layer is a
    /// softmax, as `softmax_cross_entropy_with_logits`, unclipped.
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// `-sum(y * log(clip(p)))` on softmax outputs against integer class labels (one-hot targets).
    CategoricalCrossentropy,
}

impl Objective {
    /// How a report states it, e.g. "categorical cross-entropy from the logits, unclipped (Keras 3)".
    pub fn describe(self) -> String {
        let name = match self.loss {
            Loss::CategoricalCrossentropy => "categorical",
        };
        format!("{name} {}", self.convention.describe())
    }

    /// Mean loss over the batch (a scalar tensor) and the number of correct argmax predictions.
    ///
    /// `labels` holds class indices as u32, shape `(batch,)`.
    pub fn batch(self, output: &Output, labels: &Tensor) -> Result<(Tensor, usize)> {
        match self.loss {
            Loss::CategoricalCrossentropy => categorical_crossentropy(output, labels, self.convention),
        }
    }
}

impl Loss {
    /// Checks that the model's last activation suits this loss.
    pub fn check_head(self, head: Option<Activation>) -> Result<()> {
        match (self, head) {
            (Loss::CategoricalCrossentropy, Some(Activation::Softmax)) => Ok(()),
            (Loss::CategoricalCrossentropy, other) => Err(NnError::spec(
                "loss",
                format!("categorical_crossentropy needs a softmax output layer, the model ends in {other:?}"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn output(rows: &[[f32; 3]]) -> Output {
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        Output { pre_activation: Tensor::from_vec(flat, (rows.len(), 3), &Device::Cpu).unwrap(), activation: Activation::Softmax }
    }

    const KERAS3: Objective = Objective { loss: Loss::CategoricalCrossentropy, convention: LossConvention::Keras3 };
    const KERAS2: Objective = Objective { loss: Loss::CategoricalCrossentropy, convention: LossConvention::Keras2 };

    #[test]
    fn matches_hand_computed_crossentropy_under_both_conventions() {
        let out = output(&[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]);
        let labels = Tensor::new(&[2u32, 0], &Device::Cpu).unwrap();
        let p2 = (3f64.exp()) / (1f64.exp() + 2f64.exp() + 3f64.exp());
        let expected = (-(p2.ln()) - (1.0f64 / 3.0).ln()) / 2.0;
        for objective in [KERAS3, KERAS2] {
            let (loss, correct) = objective.batch(&out, &labels).unwrap();
            assert!((loss.to_scalar::<f32>().unwrap() as f64 - expected).abs() < 1e-6, "{objective:?}");
            // Row 0 is right; row 1 is a three-way tie, and argmax takes the first index (class 0): right too.
            assert_eq!(correct, 2);
        }
    }

    /// The gradient of the mean loss with respect to the logits.
    fn logit_gradient(objective: Objective, rows: &[[f32; 3]], labels: &[u32]) -> Vec<Vec<f32>> {
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        let z = candle_core::Var::from_vec(flat, (rows.len(), 3), &Device::Cpu).unwrap();
        let out = Output { pre_activation: z.as_tensor().clone(), activation: Activation::Softmax };
        let labels = Tensor::new(labels, &Device::Cpu).unwrap();
        let (loss, _) = objective.batch(&out, &labels).unwrap();
        loss.backward().unwrap().get(z.as_tensor()).unwrap().to_vec2().unwrap()
    }

    #[test]
    fn keras2_clips_confident_answers_keras3_keeps_their_gradient() {
        // Confidently wrong: Keras 2 clips the loss at -ln ε and passes no gradient; Keras 3 does neither.
        let out = output(&[[100.0, 0.0, 0.0]]);
        let labels = Tensor::new(&[1u32], &Device::Cpu).unwrap();
        let (clipped, correct) = KERAS2.batch(&out, &labels).unwrap();
        assert!((clipped.to_scalar::<f32>().unwrap() as f64 + EPSILON.ln()).abs() < 1e-4);
        assert_eq!(correct, 0);
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

    #[test]
    fn rejects_a_non_softmax_head() {
        assert!(Loss::CategoricalCrossentropy.check_head(Some(Activation::Relu)).is_err());
        assert!(Loss::CategoricalCrossentropy.check_head(Some(Activation::Softmax)).is_ok());
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
    }
}
