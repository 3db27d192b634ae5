//! The training loop, with Keras' `fit` semantics: reshuffle every epoch, mini-batches with a
//! partial last batch, running averages of loss and accuracy over the epoch, then validation.

use std::time::Instant;

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::error::{NnError, Result};
use crate::loss::{Loss, LossConvention, Objective};
use crate::model::{Mode, Model};
use crate::optim::{Optimizer, OptimizerSpec};

/// How a model is trained, as written in the catalogue (after the profile has been applied).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: OptimizerSpec,
    pub loss: Loss,
    /// How the loss is computed from a softmax output; Keras 3's by default.
    #[serde(default)]
    pub convention: LossConvention,
}

impl TrainConfig {
    pub fn objective(&self) -> Objective {
        Objective { loss: self.loss, convention: self.convention }
    }
}

/// One line of the training history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based, as Keras prints it.
    pub epoch: usize,
    pub loss: f64,
    /// Absent for a model without accuracy (a reconstruction).
    pub acc: Option<f64>,
    pub val_loss: Option<f64>,
    pub val_acc: Option<f64>,
    /// Wall time of the epoch, validation included (what Keras prints).
    pub seconds: f64,
    /// Wall time of the training part alone, for throughput.
    pub train_seconds: f64,
}

/// Loss and accuracy of a model on a dataset (no accuracy for a reconstruction).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub loss: f64,
    pub acc: Option<f64>,
}

/// Receives progress while a model trains (progress bars, console logs). Every method defaults to nothing.
pub trait TrainObserver {
    fn epoch_started(&mut self, _epoch: usize, _epochs: usize, _batches: usize) {}
    fn batch_done(&mut self, _batch: usize, _running: Evaluation) {}
    fn epoch_done(&mut self, _record: &EpochRecord, _epochs: usize) {}
}

/// An observer that ignores everything.
pub struct Silent;
impl TrainObserver for Silent {}

/// Batch size used for evaluation; it changes only the order of float summation, not the result's meaning.
const EVAL_BATCH: usize = 500;

/// Trains `model` on `train`, validating after each epoch on `validation` if given.
///
/// `rng` drives the per-epoch shuffles and training-only layers (dropout, noise): with the same seed,
/// model and thread count the history is identical bit for bit, wall times aside.
pub fn fit(
    model: &Model,
    train: &Dataset,
    validation: Option<&Dataset>,
    config: &TrainConfig,
    rng: &mut ChaCha8Rng,
    observer: &mut dyn TrainObserver,
) -> Result<Vec<EpochRecord>> {
    if config.batch_size == 0 || config.epochs == 0 {
        return Err(NnError::spec("train", "epochs and batch_size must be at least 1"));
    }
    if train.is_empty() {
        return Err(NnError::Data("no training samples".into()));
    }
    let mut trainer = Trainer::new(model, config)?;
    let mut order: Vec<u32> = (0..train.len() as u32).collect();
    let batches = train.len().div_ceil(config.batch_size);
    let mut history = Vec::with_capacity(config.epochs);

    for epoch in 1..=config.epochs {
        observer.epoch_started(epoch, config.epochs, batches);
        let started = Instant::now();
        order.shuffle(rng);
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, Some(0usize), 0usize);
        for (batch_index, indices) in order.chunks(config.batch_size).enumerate() {
            let step = trainer.step(&train.gather(indices)?, rng)?;
            if !step.loss.is_finite() {
                return Err(NnError::Diverged { epoch, batch: batch_index + 1, value: step.loss });
            }
            loss_sum += step.loss * indices.len() as f64;
            correct = correct.zip(step.correct).map(|(a, b)| a + b);
            seen += indices.len();
            observer.batch_done(batch_index + 1, Evaluation { loss: loss_sum / seen as f64, acc: fraction(correct, seen) });
        }
        let train_seconds = started.elapsed().as_secs_f64();
        let val = validation.map(|v| evaluate(model, v, config.objective())).transpose()?;
        let record = EpochRecord {
            epoch,
            loss: loss_sum / seen as f64,
            acc: fraction(correct, seen),
            val_loss: val.map(|v| v.loss),
            val_acc: val.and_then(|v| v.acc),
            seconds: started.elapsed().as_secs_f64(),
            train_seconds,
        };
        if let Some(v) = record.val_loss.filter(|v| !v.is_finite()) {
            return Err(NnError::Diverged { epoch, batch: batches, value: v });
        }
        observer.epoch_done(&record, config.epochs);
        history.push(record);
    }
    Ok(history)
}

fn fraction(count: Option<usize>, of: usize) -> Option<f64> {
    count.map(|c| c as f64 / of as f64)
}

/// What one optimisation step saw: the batch's loss before the update (weight penalty included, as
/// Keras' `train_on_batch` returns it) and, for a classifier, its correct predictions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepOutcome {
    pub loss: f64,
    pub correct: Option<usize>,
}

/// A model bound to its optimiser and objective: one mini-batch step at a time, in the order the
/// caller chooses (`fit` shuffles; the Keras replay tests follow Keras' recorded order).
pub struct Trainer<'m> {
    model: &'m Model,
    vars: Vec<&'m candle_core::Var>,
    optimizer: Optimizer,
    objective: Objective,
}

impl<'m> Trainer<'m> {
    pub fn new(model: &'m Model, config: &TrainConfig) -> Result<Self> {
        config.loss.check_model(model.spec())?;
        let vars = model.vars();
        let optimizer = Optimizer::new(config.optimizer.clone(), vars.len())?;
        Ok(Trainer { model, vars, optimizer, objective: config.objective() })
    }

    /// Forward, loss, backward and update on one batch; `rng` drives dropout and noise. A loss that
    /// is not finite is returned without touching the weights, for the caller to report.
    pub fn step(&mut self, batch: &Dataset, rng: &mut ChaCha8Rng) -> Result<StepOutcome> {
        let output = self.model.forward(&batch.x, Mode::Train(rng))?;
        let (mut loss, correct) = self.objective.batch(&output, batch)?;
        if let Some(penalty) = self.model.l2_penalty()? {
            loss = (loss + penalty)?;
        }
        let value = loss.to_scalar::<f32>()? as f64;
        if value.is_finite() {
            self.optimizer.step(&self.vars, &loss.backward()?)?;
        }
        Ok(StepOutcome { loss: value, correct })
    }
}

/// Loss (the weight penalty included, as Keras reports it) and accuracy on `data`, in inference mode.
pub fn evaluate(model: &Model, data: &Dataset, objective: Objective) -> Result<Evaluation> {
    if data.is_empty() {
        return Err(NnError::Data("cannot evaluate on an empty dataset".into()));
    }
    let (mut loss_sum, mut correct) = (0.0f64, Some(0usize));
    for start in (0..data.len()).step_by(EVAL_BATCH) {
        let batch = data.slice(start, EVAL_BATCH.min(data.len() - start))?;
        let output = model.forward(&batch.x.detach(), Mode::Eval)?;
        let (batch_loss, batch_correct) = objective.batch(&output, &batch)?;
        loss_sum += batch_loss.to_scalar::<f32>()? as f64 * batch.len() as f64;
        correct = correct.zip(batch_correct).map(|(a, b)| a + b);
    }
    let penalty = match model.l2_penalty()? {
        Some(p) => p.to_scalar::<f32>()? as f64,
        None => 0.0,
    };
    Ok(Evaluation { loss: loss_sum / data.len() as f64 + penalty, acc: fraction(correct, data.len()) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::rng_stream;
    use crate::spec::ModelSpec;
    use candle_core::Device;

    /// Two well separated blobs in 2-D; a tiny softmax model must learn them.
    fn blobs(n: usize) -> Dataset {
        let mut pixels = Vec::new();
        let mut labels = Vec::new();
        for i in 0..n {
            let class = (i % 2) as u8;
            let jitter = (i * 37 % 50) as u8;
            let base = if class == 0 { 20 } else { 180 };
            pixels.extend([base + jitter, base + (49 - jitter)]);
            labels.push(class);
        }
        Dataset::from_u8(&pixels, &labels, &[2], &Device::Cpu).unwrap()
    }

    fn config(epochs: usize) -> TrainConfig {
        TrainConfig {
            epochs,
            batch_size: 16,
            optimizer: OptimizerSpec::Rmsprop { lr: 0.01, rho: 0.9, epsilon: 1e-7, decay: 0.0 },
            loss: Loss::CategoricalCrossentropy,
            convention: LossConvention::Keras3,
        }
    }

    fn train(seed: u64, data: &Dataset) -> (Vec<EpochRecord>, Evaluation) {
        let spec = ModelSpec::from_toml(
            "input = [2]\nlayers = [{ type = \"dense\", units = 8, activation = \"relu\" }, { type = \"dropout\", rate = 0.2 }, { type = \"dense\", units = 2, activation = \"softmax\" }]",
            "t",
        )
        .unwrap();
        let model = Model::build(&spec, &mut rng_stream(seed, 0), &Device::Cpu).unwrap();
        let (tr, val) = data.split_last(0.2).unwrap();
        let history = fit(&model, &tr, Some(&val), &config(15), &mut rng_stream(seed, 1), &mut Silent).unwrap();
        let test = evaluate(&model, &val, config(1).objective()).unwrap();
        (history, test)
    }

    /// An epoch's loss, accuracy, validation loss and validation accuracy.
    type Metrics = (f64, Option<f64>, Option<f64>, Option<f64>);

    fn without_times(h: &[EpochRecord]) -> Vec<Metrics> {
        h.iter().map(|r| (r.loss, r.acc, r.val_loss, r.val_acc)).collect()
    }

    #[test]
    fn learns_separable_blobs() {
        let (history, test) = train(1, &blobs(200));
        assert_eq!(history.len(), 15);
        assert!(history.last().unwrap().loss < history[0].loss);
        assert!(test.acc.unwrap() > 0.95, "{test:?}");
        assert_eq!(history.last().unwrap().val_acc, test.acc);
    }

    #[test]
    fn same_seed_same_history_other_seed_other_history() {
        let data = blobs(120);
        let (a, _) = train(11, &data);
        let (b, _) = train(11, &data);
        let (c, _) = train(12, &data);
        assert_eq!(without_times(&a), without_times(&b));
        assert_ne!(without_times(&a), without_times(&c));
    }

    /// 6×6 images holding a vertical or a horizontal bar at a random position: a conv net must tell them apart.
    fn bars(n: usize) -> Dataset {
        let (mut pixels, mut labels) = (Vec::new(), Vec::new());
        for i in 0..n {
            let (class, at) = ((i % 2) as u8, (i * 7 / 2) % 6);
            let mut image = [0u8; 36];
            for j in 0..6 {
                let (r, c) = if class == 0 { (j, at) } else { (at, j) };
                image[r * 6 + c] = 255;
            }
            pixels.extend(image);
            labels.push(class);
        }
        Dataset::from_u8(&pixels, &labels, &[6, 6, 1], &Device::Cpu).unwrap()
    }

    #[test]
    fn a_small_cnn_learns_bar_orientation() {
        let spec = ModelSpec::from_toml(
            r#"input = [6, 6, 1]
            layers = [{ type = "conv2d", filters = 4, kernel = [3, 3], padding = "same", activation = "relu" },
                      { type = "max_pool2d", pool = [2, 2] }, { type = "dropout", rate = 0.1 }, { type = "flatten" },
                      { type = "dense", units = 2, activation = "softmax" }]"#,
            "t",
        )
        .unwrap();
        let data = bars(160);
        let model = Model::build(&spec, &mut rng_stream(3, 0), &Device::Cpu).unwrap();
        let config = TrainConfig {
            epochs: 40,
            batch_size: 16,
            optimizer: OptimizerSpec::Adadelta { lr: 1.0, rho: 0.95, epsilon: 1e-7, decay: 0.0 },
            loss: Loss::CategoricalCrossentropy,
            convention: LossConvention::Keras3,
        };
        fit(&model, &data, None, &config, &mut rng_stream(3, 1), &mut Silent).unwrap();
        let eval = evaluate(&model, &data, config.objective()).unwrap();
        assert!(eval.acc.unwrap() > 0.95, "{eval:?}");
    }

    #[test]
    fn a_denoising_autoencoder_learns_to_reconstruct_without_accuracy() {
        let spec = ModelSpec::from_toml(
            r#"input = [6, 6, 1]
            layers = [{ type = "salt_and_pepper", level = 0.1 }, { type = "flatten" },
                      { type = "dense", units = 8, activation = "relu" },
                      { type = "dense", units = 36, activation = "sigmoid" }]"#,
            "t",
        )
        .unwrap();
        let data = bars(160);
        let config = TrainConfig {
            epochs: 30,
            batch_size: 16,
            optimizer: OptimizerSpec::Rmsprop { lr: 0.01, rho: 0.9, epsilon: 1e-7, decay: 0.0 },
            loss: Loss::BinaryCrossentropy,
            convention: LossConvention::Keras3,
        };
        let run = |seed: u64| {
            let model = Model::build(&spec, &mut rng_stream(seed, 0), &Device::Cpu).unwrap();
            let history = fit(&model, &data, Some(&data), &config, &mut rng_stream(seed, 1), &mut Silent).unwrap();
            (history, evaluate(&model, &data, config.objective()).unwrap())
        };
        let (history, test) = run(5);
        assert!(history.iter().all(|r| r.acc.is_none() && r.val_acc.is_none()) && test.acc.is_none());
        // The bars cover a sixth of each image: predicting their mean everywhere scores about 0.45.
        assert!(test.loss < 0.25 && test.loss < history[0].val_loss.unwrap() / 2.0, "{test:?} after {:?}", history[0]);
        assert_eq!(without_times(&history), without_times(&run(5).0), "same seed, same noise, same history");
        let autoencoder_of_softmax =
            ModelSpec::from_toml("input = [4]\nlayers = [{ type = \"dense\", units = 4, activation = \"softmax\" }]", "t")
                .unwrap();
        let model = Model::build(&autoencoder_of_softmax, &mut rng_stream(0, 0), &Device::Cpu).unwrap();
        assert!(Trainer::new(&model, &config).is_err(), "binary cross-entropy needs a sigmoid output");
    }

    #[test]
    fn divergence_is_an_error_not_a_result() {
        let data = blobs(64);
        let spec = ModelSpec::from_toml("input = [2]\nlayers = [{ type = \"dense\", units = 2, activation = \"softmax\" }]", "t")
            .unwrap();
        let model = Model::build(&spec, &mut rng_stream(0, 0), &Device::Cpu).unwrap();
        // A NaN input poisons the loss on the first batch.
        let mut pixels = data.x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        pixels[0] = f32::NAN;
        let poisoned = Dataset { x: candle_core::Tensor::from_vec(pixels, (64, 2), &Device::Cpu).unwrap(), labels: data.labels };
        let err = fit(&model, &poisoned, None, &config(1), &mut rng_stream(0, 1), &mut Silent).unwrap_err();
        assert!(matches!(err, NnError::Diverged { epoch: 1, .. }), "{err}");
    }
}
