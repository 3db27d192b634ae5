//! Trajectory replays against Keras: each fixture in `tests/fixtures/keras_replay/` (written by
//! `bench/keras_replay.py` under Keras 3 / TensorFlow) holds a small model, its initial weights,
//! the batch order, Keras' loss at every step and its weights after the first and the last step.
//! nnlab starts from the same weights, takes the same batches, and must follow the same trajectory.
//!
//! Tolerances, and why they are not zero: both sides compute in f32 but sum in other orders
//! (matrix products, convolutions, the batch mean), so values agree to a few ulps after one step.
//! Over a dozen steps the differences grow where an optimiser divides by small numbers (RMSprop and
//! Adadelta normalise each gradient by a running root mean square), yet stay far below what a
//! difference of rule does: a wrong epsilon, decay, loss convention or weight layout moves these
//! numbers by 1e-3 or more within the first steps.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use nnlab_nn::{rng_stream, Dataset, LossConvention, Model, ModelSpec, OptimizerSpec, TrainConfig, Trainer};
use serde::Deserialize;

/// Largest accepted |nnlab − Keras| / max(1, |Keras|) of a step's loss.
const LOSS_TOLERANCE: f64 = 1e-6;
/// Largest accepted |nnlab − Keras| of a weight, relative to the largest |weight| of its variable.
const WEIGHT_TOLERANCE_FIRST_STEP: f64 = 1e-6;
const WEIGHT_TOLERANCE_FINAL: f64 = 2e-6;

#[derive(Deserialize)]
struct Fixture {
    case: String,
    model: ModelSpec,
    train: FixtureTrain,
    pixels: Vec<u8>,
    labels: Vec<u8>,
    initial: Vec<Weights>,
    steps: Vec<Step>,
    after_first_step: Vec<Weights>,
    #[serde(rename = "final")]
    last: Vec<Weights>,
}

#[derive(Deserialize)]
struct FixtureTrain {
    batch_size: usize,
    optimizer: OptimizerSpec,
    loss: nnlab_nn::Loss,
    convention: LossConvention,
}

#[derive(Deserialize)]
struct Weights {
    shape: Vec<usize>,
    values: Vec<f64>,
}

#[derive(Deserialize)]
struct Step {
    indices: Vec<u32>,
    loss: f64,
}

/// How far one replay strayed from Keras.
#[derive(Debug, Default)]
struct Deviation {
    worst_loss: f64,
    worst_loss_step: usize,
    first_step_weights: f64,
    final_weights: f64,
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras_replay");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
}

fn load(path: &Path) -> Fixture {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn set_weights(model: &Model, weights: &[Weights]) {
    let vars = model.vars();
    assert_eq!(vars.len(), weights.len(), "variables");
    for (var, w) in vars.iter().zip(weights) {
        assert_eq!(var.dims(), w.shape.as_slice(), "variable shape");
        let values: Vec<f32> = w.values.iter().map(|&v| v as f32).collect();
        var.set(&Tensor::from_vec(values, w.shape.as_slice(), &Device::Cpu).unwrap()).unwrap();
    }
}

/// The largest difference of any weight, each relative to its variable's largest |Keras weight|.
fn weight_deviation(model: &Model, keras: &[Weights]) -> f64 {
    model
        .vars()
        .iter()
        .zip(keras)
        .map(|(var, k)| {
            let ours = var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let scale = k.values.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
            ours.iter().zip(&k.values).map(|(&a, &b)| (a as f64 - b).abs() / scale).fold(0.0, f64::max)
        })
        .fold(0.0, f64::max)
}

fn replay(fixture: &Fixture) -> Deviation {
    let model = Model::build(&fixture.model, &mut rng_stream(0, 0), &Device::Cpu).unwrap();
    set_weights(&model, &fixture.initial);
    let config = TrainConfig {
        epochs: 1,
        batch_size: fixture.train.batch_size,
        optimizer: fixture.train.optimizer.clone(),
        loss: fixture.train.loss,
        convention: fixture.train.convention,
    };
    let data = Dataset::from_u8(&fixture.pixels, &fixture.labels, &fixture.model.input, &Device::Cpu).unwrap();
    let mut trainer = Trainer::new(&model, &config).unwrap();
    let mut rng = rng_stream(0, 1);
    let mut deviation = Deviation::default();
    for (index, step) in fixture.steps.iter().enumerate() {
        let ours = trainer.step(&data.gather(&step.indices).unwrap(), &mut rng).unwrap().loss;
        let off = (ours - step.loss).abs() / step.loss.abs().max(1.0);
        if off > deviation.worst_loss {
            (deviation.worst_loss, deviation.worst_loss_step) = (off, index + 1);
        }
        if index == 0 {
            deviation.first_step_weights = weight_deviation(&model, &fixture.after_first_step);
        }
    }
    deviation.final_weights = weight_deviation(&model, &fixture.last);
    deviation
}

#[test]
fn every_layer_and_optimiser_follows_keras_step_by_step() {
    let paths = fixtures();
    assert!(paths.len() >= 10, "expected the replay fixtures, found {}", paths.len());
    let mut failures = Vec::new();
    for path in &paths {
        let fixture = load(path);
        let d = replay(&fixture);
        eprintln!(
            "{:<30} {:>2} steps: loss ≤ {:.1e} (step {}), weights after step 1 ≤ {:.1e}, final ≤ {:.1e}",
            fixture.case,
            fixture.steps.len(),
            d.worst_loss,
            d.worst_loss_step,
            d.first_step_weights,
            d.final_weights
        );
        if d.worst_loss > LOSS_TOLERANCE
            || d.first_step_weights > WEIGHT_TOLERANCE_FIRST_STEP
            || d.final_weights > WEIGHT_TOLERANCE_FINAL
        {
            failures.push(format!("{}: {d:?}", fixture.case));
        }
    }
    assert!(failures.is_empty(), "replays that left Keras' trajectory:\n{}", failures.join("\n"));
}

/// The replay can fail: the same fixture with a learning rate 1% off leaves the trajectory by far
/// more than the tolerance. Without this, a comparison that always passed would look the same as
/// one that matches.
#[test]
fn a_changed_rule_leaves_the_trajectory() {
    let path = fixtures().into_iter().find(|p| p.ends_with("dense_linear_rmsprop.json")).expect("fixture");
    let mut fixture = load(&path);
    fixture.train.optimizer = match fixture.train.optimizer {
        OptimizerSpec::Rmsprop { lr, rho, decay, .. } => OptimizerSpec::Rmsprop { lr: lr * 1.01, rho, epsilon: 1e-7, decay },
        other => panic!("expected rmsprop, got {other:?}"),
    };
    let d = replay(&fixture);
    assert!(d.final_weights > WEIGHT_TOLERANCE_FINAL * 10.0, "{d:?}");
}
