//! Report a1: image recognition with deep networks: MNIST dense models and CNNs (q1–q15), the
//! CIFAR-10 CNN (q16–q19) and the from-scratch functions of exercise 3 (q20–q25). The context is
//! typed; settings come from the catalogue, numbers from the result tables.

use anyhow::{Context, Result};
use serde::Serialize;

use super::context::{
    compare, data_view, model_view, shape_text, summary_view, view_of, Comparison, DataView, FigureFile, ModelView, SummaryView,
};
use super::{BuiltPage, RenderInput};
use crate::catalogue::{Experiment, Validation};

#[derive(Serialize)]
struct Page {
    summary: String,
    data: DataView,
    dense_linear: ModelView,
    dense_relu: ModelView,
    softmax_regression: ModelView,
    q6: Reliability,
    q7: Comparison,
    q10: Comparison,
    q10_reliability: Reliability,
    cnn: ModelView,
    cnn_dropout: ModelView,
    q12: Comparison,
    q14: Reliability,
    cifar: CifarView,
    lowlevel: nnlab_lowlevel::WorkedExample,
    q15: DropoutCost,
    /// The extra questions x2 and x3; none when the run had no Playground stage.
    playground: Option<super::playground::PlaygroundView>,
}

#[derive(Serialize)]
struct DropoutCost {
    test: Comparison,
    epoch_time_ratio: f64,
    /// Under 10% more time per epoch counts as "costs little" in the prose.
    dropout_time_negligible: bool,
}

pub fn page(input: &RenderInput<'_>) -> Result<BuiltPage> {
    let assignment = input.catalogue.assignment("a1").context("the catalogue has no assignment a1")?;
    let experiment = |id: &str| assignment.experiment(id).with_context(|| format!("the catalogue has no experiment {id}"));
    let tables = input.tables;
    let mut figures = Vec::new();
    let mut view = |id: &str| view_of(assignment, tables, id, &mut figures);
    let (dense_linear, dense_relu, softmax_regression) =
        (view("a1.dense_linear")?, view("a1.dense_relu")?, view("a1.softmax_regression")?);
    let (cnn, cnn_dropout) = (view("a1.cnn")?, view("a1.cnn_dropout")?);
    let cifar = cifar_view(input, experiment("a1.cifar_cnn")?, experiment("a1.cnn")?, &mut figures)?;
    let playground_results = crate::playground::load_all(input.run_dir)?;
    let playground = super::playground::view(assignment, playground_results.as_deref(), &mut figures)?;

    let test_acc = |id: &str| tables.replicate_values(id, "test_acc");
    let versus = |a: &ModelView, b: &ModelView| -> Result<Comparison> {
        Ok(compare(&test_acc(&a.id)?, &test_acc(&b.id)?, a.test_acc.mean - b.test_acc.mean))
    };
    let epoch_time_ratio = cnn_dropout.epoch_seconds.mean / cnn.epoch_seconds.mean;
    let page = Page {
        summary: format!(
            "MNIST dense networks: linear hidden layer {:.2}% and ReLU hidden layer {:.2}% test accuracy (mean of {} replicates).",
            dense_linear.test_acc.mean * 100.0,
            dense_relu.test_acc.mean * 100.0,
            dense_relu.test_acc.n
        ),
        data: data_view(input, experiment("a1.dense_linear")?.validation)?,
        q6: reliability(dense_linear.test_acc.mean),
        q7: versus(&dense_linear, &softmax_regression)?,
        q10: versus(&dense_relu, &dense_linear)?,
        q10_reliability: reliability(dense_relu.test_acc.mean),
        q12: versus(&cnn, &dense_relu)?,
        q14: reliability(cnn.test_acc.mean),
        q15: DropoutCost {
            test: versus(&cnn_dropout, &cnn)?,
            epoch_time_ratio,
            dropout_time_negligible: epoch_time_ratio < 1.1,
        },
        // Exercise 3 needs no training: it is computed here, from the run seed.
        lowlevel: nnlab_lowlevel::worked_example(input.manifest.seed)?,
        dense_linear,
        dense_relu,
        softmax_regression,
        cnn,
        cnn_dropout,
        cifar,
        playground,
    };
    Ok(BuiltPage { title: format!("a1 — {}", assignment.title), context: serde_json::to_value(page)?, figures })
}

/// What an accuracy means for reading digits: errors per 100 digits and the chance of reading whole
/// postcodes right (each digit assumed independent).
#[derive(Debug, Serialize)]
struct Reliability {
    errors_per_100: f64,
    postcode5: f64,
    postcode6: f64,
    misrouted_per_1000_letters: f64,
    /// Unattended sorting wants ≥ 99% of postcodes right.
    good_enough_unattended: bool,
    good_enough_assisted: bool,
}

fn reliability(acc: f64) -> Reliability {
    let postcode5 = acc.powi(5);
    Reliability {
        errors_per_100: (1.0 - acc) * 100.0,
        postcode5,
        postcode6: acc.powi(6),
        misrouted_per_1000_letters: (1.0 - postcode5) * 1000.0,
        good_enough_unattended: postcode5 >= 0.99,
        good_enough_assisted: postcode5 >= 0.9,
    }
}

/// Exercise 2 (CIFAR-10). Its jobs may not have run (no valid copy of the dataset): then the report
/// says so, with the reason the run recorded, and everything else still renders.
#[derive(Serialize)]
struct CifarView {
    available: bool,
    reason: Option<String>,
    summary: SummaryView,
    settings: Settings,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<ModelView>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    measured: Option<CifarVsMnist>,
}

/// How a model is trained, from the catalogue: shown whether or not its jobs ran.
#[derive(Serialize)]
struct Settings {
    optimizer: String,
    batch_size: usize,
    validation: String,
    input_shape: String,
}

/// q18 and q19: the CIFAR model against the MNIST CNN, measured.
#[derive(Serialize)]
struct CifarVsMnist {
    epoch_time_ratio: f64,
    per_sample_ms: f64,
    mnist_per_sample_ms: f64,
    input_values: usize,
    mnist_input_values: usize,
    mflop: f64,
    mnist_mflop: f64,
    params: String,
    mnist_params: String,
    batch_size: usize,
    mnist_batch_size: usize,
    train_samples: u64,
    mnist_train_samples: u64,
    val_acc_gap_pp: f64,
    steps_per_sample_ratio: f64,
    lr_ratio: f64,
    has_dropout: bool,
    image_size: String,
}

fn cifar_view(
    input: &RenderInput<'_>,
    cifar: &Experiment,
    mnist_cnn: &Experiment,
    figures: &mut Vec<FigureFile>,
) -> Result<CifarView> {
    let tables = input.tables;
    let settings = Settings {
        optimizer: cifar.train.optimizer.describe(),
        batch_size: cifar.train.batch_size,
        validation: match cifar.validation {
            Validation::Test => "the test set as validation data".to_string(),
            Validation::Split(f) => format!("the last {:.0}% of the training images held out for validation", f * 100.0),
        },
        input_shape: shape_text(&cifar.model.input),
    };
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
        return Ok(CifarView {
            available: false,
            reason: Some(reason),
            summary: summary_view(cifar)?,
            settings,
            model: None,
            measured: None,
        });
    }
    let seconds = |id: &str| tables.stat(id, "epoch_seconds");
    let samples = |id: &str| -> Result<f64> { Ok(tables.replicate_values(id, "train_samples_per_s")?[0].max(1e-9)) };
    let cifar_summary = nnlab_nn::Summary::of(&cifar.model)?;
    let mnist_summary = nnlab_nn::Summary::of(&mnist_cnn.model)?;
    let (model, files) = model_view(tables, cifar)?;
    figures.extend(files);
    let measured = CifarVsMnist {
        epoch_time_ratio: seconds(&cifar.id)?.mean / seconds(&mnist_cnn.id)?.mean,
        per_sample_ms: 1e3 / samples(&cifar.id)?,
        mnist_per_sample_ms: 1e3 / samples(&mnist_cnn.id)?,
        input_values: cifar.model.input_len(),
        mnist_input_values: mnist_cnn.model.input_len(),
        mflop: cifar_summary.flops_per_sample as f64 / 1e6,
        mnist_mflop: mnist_summary.flops_per_sample as f64 / 1e6,
        params: nnlab_nn::summary::group_thousands(cifar_summary.total_params),
        mnist_params: nnlab_nn::summary::group_thousands(mnist_summary.total_params),
        batch_size: cifar.train.batch_size,
        mnist_batch_size: mnist_cnn.train.batch_size,
        train_samples: tables.replicate_values(&cifar.id, "train_samples")?[0] as u64,
        mnist_train_samples: tables.replicate_values(&mnist_cnn.id, "train_samples")?[0] as u64,
        val_acc_gap_pp: (tables.stat(&mnist_cnn.id, "test_acc")?.mean - model.test_acc.mean) * 100.0,
        steps_per_sample_ratio: mnist_cnn.train.batch_size as f64 / cifar.train.batch_size as f64,
        lr_ratio: mnist_cnn.train.optimizer.lr() / cifar.train.optimizer.lr(),
        has_dropout: cifar.model.layers.iter().any(|l| matches!(l, nnlab_nn::LayerSpec::Dropout { .. })),
        image_size: shape_text(&cifar.model.input[..2.min(cifar.model.input.len())]),
    };
    Ok(CifarView {
        available: true,
        reason: None,
        summary: summary_view(cifar)?,
        settings,
        model: Some(model),
        measured: Some(measured),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reliability_thresholds_hold_on_both_sides() {
        // 0.998^5 ≈ 0.990: just enough for unattended sorting; 0.99^5 ≈ 0.951 is not, but assists.
        let good = reliability(0.998);
        assert!(good.good_enough_unattended && good.good_enough_assisted);
        let assisted = reliability(0.99);
        assert!(!assisted.good_enough_unattended && assisted.good_enough_assisted);
        let poor = reliability(0.9);
        assert!(!poor.good_enough_unattended && !poor.good_enough_assisted);
        assert!((poor.errors_per_100 - 10.0).abs() < 1e-9);
    }
}
