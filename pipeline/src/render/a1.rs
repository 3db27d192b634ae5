//! Report a1: image recognition with deep networks. Questions q1–q10 (MNIST dense models).

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::context::{comparison, model_json};
use super::{BuiltPage, RenderInput};
use crate::catalogue::{Experiment, Validation};
use crate::datasets::load_facts;

pub fn page(input: &RenderInput<'_>) -> Result<BuiltPage> {
    let assignment = input.catalogue.assignment("a1").context("the catalogue has no assignment a1")?;
    let experiment = |id: &str| assignment.experiment(id).with_context(|| format!("the catalogue has no experiment {id}"));
    let tables = input.tables;
    let linear = experiment("a1.dense_linear")?;
    let relu = experiment("a1.dense_relu")?;
    let softmax = experiment("a1.softmax_regression")?;
    let cnn = experiment("a1.cnn")?;
    let cnn_dropout = experiment("a1.cnn_dropout")?;
    let cifar = experiment("a1.cifar_cnn")?;

    let test_acc = |id: &str| tables.replicate_values(id, "test_acc");
    let relu_acc = tables.stat(&relu.id, "test_acc")?;
    let linear_acc = tables.stat(&linear.id, "test_acc")?;
    let softmax_acc = tables.stat(&softmax.id, "test_acc")?;
    let cnn_acc = tables.stat(&cnn.id, "test_acc")?;
    let dropout_acc = tables.stat(&cnn_dropout.id, "test_acc")?;
    let epoch_seconds = |id: &str| tables.stat(id, "epoch_seconds").map(|s| s.mean);

    let context = json!({
        "summary": format!(
            "MNIST dense networks: linear hidden layer {:.2}% and ReLU hidden layer {:.2}% test accuracy (mean of {} replicates).",
            linear_acc.mean * 100.0, relu_acc.mean * 100.0, relu_acc.n
        ),
        "data": data_json(input, linear.validation)?,
        "dense_linear": model_json(tables, linear, input.out_dir)?,
        "dense_relu": model_json(tables, relu, input.out_dir)?,
        "softmax_regression": model_json(tables, softmax, input.out_dir)?,
        "q6": reliability(linear_acc.mean),
        "q7": comparison(&test_acc(&linear.id)?, &test_acc(&softmax.id)?, linear_acc.mean - softmax_acc.mean),
        "q10": comparison(&test_acc(&relu.id)?, &test_acc(&linear.id)?, relu_acc.mean - linear_acc.mean),
        "q10_reliability": reliability(relu_acc.mean),
        "cnn": model_json(tables, cnn, input.out_dir)?,
        "cnn_dropout": model_json(tables, cnn_dropout, input.out_dir)?,
        "q12": comparison(&test_acc(&cnn.id)?, &test_acc(&relu.id)?, cnn_acc.mean - relu_acc.mean),
        "q14": reliability(cnn_acc.mean),
        "cifar": cifar_json(input, cifar, cnn)?,
        // Exercise 3 needs no training: it is computed here, from the run seed.
        "lowlevel": nnlab_lowlevel::worked_example(input.manifest.seed)?,
        "q15": {
            "test": comparison(&test_acc(&cnn_dropout.id)?, &test_acc(&cnn.id)?, dropout_acc.mean - cnn_acc.mean),
            "epoch_time_ratio": epoch_seconds(&cnn_dropout.id)? / epoch_seconds(&cnn.id)?,
            // Under 10% more time per epoch counts as "costs little" in the prose.
            "dropout_time_negligible": epoch_seconds(&cnn_dropout.id)? / epoch_seconds(&cnn.id)? < 1.1,
        },
    });
    Ok(BuiltPage { title: format!("a1 — {}", assignment.title), context, figures: Vec::new() })
}

/// Shapes and the first one-hot label rows of the data the models saw.
fn data_json(input: &RenderInput<'_>, validation: Validation) -> Result<Value> {
    let facts = load_facts(input.run_dir, "mnist")?;
    let features: usize = facts.sample_shape.iter().product();
    let held_out = match validation {
        Validation::Split(f) => facts.train_samples - (facts.train_samples as f64 * (1.0 - f)).floor() as usize,
        Validation::Test => 0,
    };
    let one_hot: Vec<Value> = facts
        .first_train_labels
        .iter()
        .take(5)
        .map(|&label| {
            let row: Vec<String> = (0..10).map(|c| if c == label { "1" } else { "0" }.to_string()).collect();
            json!({ "label": label, "row": row.join(" ") })
        })
        .collect();
    Ok(json!({
        "train_samples": facts.train_samples,
        "test_samples": facts.test_samples,
        "features": features,
        "image_shape": facts.sample_shape.iter().map(usize::to_string).collect::<Vec<_>>().join("×"),
        "validation_samples": held_out,
        "fit_samples": facts.train_samples - held_out,
        "one_hot": one_hot,
    }))
}

/// What an accuracy means for reading digits: errors per 100 digits and the chance of reading whole
/// postcodes right (each digit assumed independent).
fn reliability(acc: f64) -> Value {
    let postcode5 = acc.powi(5);
    let postcode6 = acc.powi(6);
    json!({
        "errors_per_100": (1.0 - acc) * 100.0,
        "postcode5": postcode5,
        "postcode6": postcode6,
        "misrouted_per_1000_letters": (1.0 - postcode5) * 1000.0,
        // Thresholds for the prose: unattended sorting wants ≥ 99% of postcodes right.
        "good_enough_unattended": postcode5 >= 0.99,
        "good_enough_assisted": postcode5 >= 0.9,
    })
}

/// Exercise 2 (CIFAR-10). Its jobs may not have run (no valid copy of the dataset): then the report
/// says so, with the reason the run recorded, and everything else still renders.
fn cifar_json(input: &RenderInput<'_>, cifar: &Experiment, mnist_cnn: &Experiment) -> Result<Value> {
    let tables = input.tables;
    let summary = serde_json::to_value(super::context::summary_view(cifar)?)?;
    if tables.stat(&cifar.id, "test_acc").is_err() {
        let reason = input
            .manifest
            .jobs
            .iter()
            .find(|j| j.experiment == cifar.id && j.status != "ran" && j.status != "reused")
            .map_or_else(
                || "its jobs were not part of this run".to_string(),
                |j| j.status.trim_start_matches("not run: ").to_string(),
            );
        return Ok(json!({ "available": false, "reason": reason, "summary": summary, "settings": settings_json(cifar) }));
    }
    let seconds = |id: &str| tables.stat(id, "epoch_seconds");
    let samples = |id: &str| -> Result<f64> { Ok(tables.replicate_values(id, "train_samples_per_s")?[0].max(1e-9)) };
    let (cifar_s, mnist_s) = (seconds(&cifar.id)?.mean, seconds(&mnist_cnn.id)?.mean);
    let cifar_summary = nnlab_nn::Summary::of(&cifar.model)?;
    let mnist_summary = nnlab_nn::Summary::of(&mnist_cnn.model)?;
    Ok(json!({
        "available": true,
        "model": model_json(tables, cifar, input.out_dir)?,
        "summary": summary,
        "epoch_time_ratio": cifar_s / mnist_s,
        "per_sample_ms": 1e3 / samples(&cifar.id)?,
        "mnist_per_sample_ms": 1e3 / samples(&mnist_cnn.id)?,
        "input_values": cifar.model.input_len(),
        "mnist_input_values": mnist_cnn.model.input_len(),
        "mflop": cifar_summary.flops_per_sample as f64 / 1e6,
        "mnist_mflop": mnist_summary.flops_per_sample as f64 / 1e6,
        "params": nnlab_nn::summary::group_thousands(cifar_summary.total_params),
        "mnist_params": nnlab_nn::summary::group_thousands(mnist_summary.total_params),
        "batch_size": cifar.train.batch_size,
        "mnist_batch_size": mnist_cnn.train.batch_size,
        "train_samples": tables.replicate_values(&cifar.id, "train_samples")?[0] as u64,
        "mnist_train_samples": tables.replicate_values(&mnist_cnn.id, "train_samples")?[0] as u64,
        "val_acc_gap_pp": (tables.stat(&mnist_cnn.id, "test_acc")?.mean - tables.stat(&cifar.id, "test_acc")?.mean) * 100.0,
        "steps_per_sample_ratio": mnist_cnn.train.batch_size as f64 / cifar.train.batch_size as f64,
        "lr_ratio": mnist_cnn.train.optimizer.lr() / cifar.train.optimizer.lr(),
        "has_dropout": cifar.model.layers.iter().any(|l| matches!(l, nnlab_nn::LayerSpec::Dropout { .. })),
        "image_size": shape_text(&cifar.model.input[..2.min(cifar.model.input.len())]),
        "settings": settings_json(cifar),
    }))
}

/// How a model is trained, from the catalogue: shown whether or not its jobs ran.
fn settings_json(experiment: &Experiment) -> Value {
    json!({
        "optimizer": experiment.train.optimizer.describe(),
        "batch_size": experiment.train.batch_size,
        "validation": match experiment.validation {
            Validation::Test => "the test set as validation data".to_string(),
            Validation::Split(f) => format!("the last {:.0}% of the training images held out for validation", f * 100.0),
        },
        "input_shape": shape_text(&experiment.model.input),
    })
}

/// `32×32×3`.
fn shape_text(shape: &[usize]) -> String {
    shape.iter().map(usize::to_string).collect::<Vec<_>>().join("×")
}
