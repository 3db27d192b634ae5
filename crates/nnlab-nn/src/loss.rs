//! Losses and metrics with Keras semantics.

use candle_core::{DType, Tensor, D};
use serde::{Deserialize, Serialize};

use crate::error::{NnError, Result};
use crate::model::Output;
use crate::spec::Activation;

/// Keras clips probabilities to [EPSILON, 1 - EPSILON] before taking the log.
const EPSILON: f64 = 1e-7;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// `-sum(y * log(clip(p)))` on softmax outputs against integer class labels (one-hot targets).
    CategoricalCrossentropy,
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

    /// Mean loss over the batch (a scalar tensor) and the number of correct argmax predictions.
    ///
    /// `labels` holds class indices as u32, shape `(batch,)`.
    pub fn batch(self, output: &Output, labels: &Tensor) -> Result<(Tensor, usize)> {
        match self {
            Loss::CategoricalCrossentropy => categorical_crossentropy(output, labels),
        }
    }
}

/// Clipping p to [ε, 1-ε] and then taking the log is the same as clamping log-softmax to
/// [ln ε, ln(1-ε)], which is numerically stable and has the same (zero) gradient where clipped.
fn categorical_crossentropy(output: &Output, labels: &Tensor) -> Result<(Tensor, usize)> {
    let z = &output.pre_activation;
    let log_p = candle_nn::ops::log_softmax(z, D::Minus1)?;
    let picked = log_p.gather(&labels.unsqueeze(1)?, 1)?.squeeze(1)?;
    let clipped = picked.clamp(EPSILON.ln(), (1.0 - EPSILON).ln())?;
    let loss = clipped.mean_all()?.neg()?;
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

    #[test]
    fn matches_hand_computed_crossentropy() {
        let out = output(&[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]);
        let labels = Tensor::new(&[2u32, 0], &Device::Cpu).unwrap();
        let (loss, correct) = Loss::CategoricalCrossentropy.batch(&out, &labels).unwrap();
        let p2 = (3f64.exp()) / (1f64.exp() + 2f64.exp() + 3f64.exp());
        let expected = (-(p2.ln()) - (1.0f64 / 3.0).ln()) / 2.0;
        assert!((loss.to_scalar::<f32>().unwrap() as f64 - expected).abs() < 1e-6);
        // Row 0 is right; row 1 is a three-way tie, and argmax takes the first index (class 0): right too.
        assert_eq!(correct, 2);
    }

    #[test]
    fn confident_wrong_answers_are_clipped_like_keras() {
        let out = output(&[[100.0, 0.0, 0.0]]);
        let labels = Tensor::new(&[1u32], &Device::Cpu).unwrap();
        let (loss, correct) = Loss::CategoricalCrossentropy.batch(&out, &labels).unwrap();
        assert!((loss.to_scalar::<f32>().unwrap() as f64 + EPSILON.ln()).abs() < 1e-4);
        assert_eq!(correct, 0);
    }

    #[test]
    fn rejects_a_non_softmax_head() {
        assert!(Loss::CategoricalCrossentropy.check_head(Some(Activation::Relu)).is_err());
        assert!(Loss::CategoricalCrossentropy.check_head(Some(Activation::Softmax)).is_ok());
    }
}
