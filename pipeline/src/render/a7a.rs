//! Report a7a: the notebook's base network and its data, the weight-decay study, six CNNs with the
//! pipeline's choice of the best, and convolutional against dense layers on shifted digits. The
//! context is typed; every setting it states comes from the catalogue, every number from the
//! result tables.

use anyhow::{anyhow, Context, Result};
use nnlab_report::figure::{LineChart, Point, Series};
use serde::Serialize;

use super::context::{
    curve_points, data_view, replicate_agreement, summary_view, validation_label, view_of, Agreement, DataView, Figure,
    FigureFile, ModelView, SummaryView,
};
use super::shift::{shift, Shift};
use super::{BuiltPage, RenderInput};
use crate::catalogue::{point_label, value_text, Experiment};
use crate::choice::Chosen;
use crate::tables::{Stat, Tables};

/// The validation accuracy Hinton lists for a 784-500-300-10 network with weight decay on the MNIST
/// page (yann.lecun.com/exdb/mnist), as the assignment quotes it: a literature value, not a
/// measurement of this run.
const HINTON_VAL_ACC: f64 = 0.9847;

/// The accuracy q3a aims at.
const CNN_TARGET: f64 = 0.99;

#[derive(Serialize)]
struct Page {
    summary: String,
    data: DataView,
    base: ModelView,
    loss: LossView,
    q2d: WeightDecay,
    q3a: Cnns,
    q3b: ConvVsDense,
    q4: Denoising,
    q4d: Generation,
}

pub fn page(input: &RenderInput<'_>) -> Result<BuiltPage> {
    let assignment = input.catalogue.assignment("a7a").context("the catalogue has no assignment a7a")?;
    let experiment = |id: &str| assignment.experiment(id).with_context(|| format!("the catalogue has no experiment {id}"));
    let tables = input.tables;
    let mut figures = Vec::new();

    let base = view_of(assignment, tables, "a7a.base", &mut figures)?;
    let loss = loss_view(tables, &base)?;
    let q2d = weight_decay(tables, experiment("a7a.weight_decay")?)?;
    figures.push(FigureFile { path: q2d.figure.clone(), figure: Figure::Line(q2d.chart.clone()) });

    let chosen = crate::choice::load(input.run_dir)?;
    let best_cnn = chosen.iter().find(|c| c.choice == "a7a.best_cnn").context("the run recorded no choice a7a.best_cnn")?;
    let spec = assignment.choices.iter().find(|c| c.id == "a7a.best_cnn").context("the catalogue has no choice a7a.best_cnn")?;
    let candidates: Vec<&Experiment> = spec.among.iter().map(|id| experiment(id)).collect::<Result<_>>()?;
    let q3a = cnns(tables, &candidates, best_cnn)?;
    figures.push(FigureFile { path: q3a.figure.clone(), figure: Figure::Line(q3a.chart.clone()) });
    let best = view_of(assignment, tables, best_cnn.experiment(), &mut figures)?;

    let robustness = shift(tables, assignment, "a7a.shift", &chosen, "a7a.q3b")?;
    figures.push(FigureFile { path: robustness.figure.clone(), figure: Figure::Line(robustness.chart.clone()) });
    let planned = experiment(&best.id)?.model.plan()?;
    let conv_params: usize = planned.iter().filter(|l| l.kind == "Conv2D").map(|l| l.params).sum();
    let dense_params: usize = planned.iter().filter(|l| l.kind == "Dense").map(|l| l.params).sum();
    let accuracy_gain_pp = (best.test_acc.mean - base.test_acc.mean) * 100.0;
    let q3b = ConvVsDense {
        params_ratio: best.summary.total_params_raw as f64 / base.summary.total_params_raw as f64,
        accuracy_gain_pp,
        abs_accuracy_gain_pp: accuracy_gain_pp.abs(),
        cnn_more_accurate: accuracy_gain_pp > 0.0,
        conv_params: nnlab_nn::summary::group_thousands(conv_params),
        cnn_dense_share: dense_params as f64 / best.summary.total_params_raw as f64,
        cnn: best,
        dense: base.clone(),
        shift: robustness,
    };

    let q4 = denoising(input, experiment("a7a.autoencoder")?, "a7a.denoise", &q3a.best.id, &mut figures)?;
    let q4d = generation(input.run_dir, "a7a.generate", "a7a.autoencoder", &mut figures)?;

    let summary = format!(
        "The base network reaches {:.2}% in {} epochs; weight decay {} is best ({:.2}% final); the best CNN, {}, reaches {:.2}%.",
        base.test_acc.mean * 100.0,
        base.epochs,
        q2d.best.factor,
        q2d.best.final_acc.mean * 100.0,
        q3a.best.id,
        q3a.best.final_acc.mean * 100.0,
    );
    let page = Page { summary, data: data_view(input, experiment("a7a.base")?.validation)?, base, loss, q2d, q3a, q3b, q4, q4d };
    Ok(BuiltPage { title: format!("a7a — {}", assignment.title), context: serde_json::to_value(page)?, figures })
}

/// q2b: the loss as the trainer computes it, with measured values to read it by.
#[derive(Serialize)]
struct LossView {
    /// The loss of a network that spreads its probability evenly over the 10 classes: ln 10.
    uniform: f64,
    first_epoch: f64,
    last_epoch: f64,
    /// The mean probability the trained network gives the true class, exp(−loss), a lower bound
    /// by Jensen's inequality on the geometric mean it really is.
    last_true_class_probability: f64,
}

fn loss_view(tables: &Tables, base: &ModelView) -> Result<LossView> {
    let loss = tables.curve(&base.id, "loss")?;
    let (first, last) = (loss.first(), loss.last());
    let (Some(first), Some(last)) = (first, last) else { anyhow::bail!("{}: no loss history", base.id) };
    Ok(LossView {
        uniform: 10f64.ln(),
        first_epoch: first.mean,
        last_epoch: last.mean,
        last_true_class_probability: (-last.mean).exp(),
    })
}

/// One weight-decay factor of q2d.
#[derive(Debug, Clone, Serialize)]
struct DecayRow {
    label: String,
    factor: String,
    x: f64,
    /// Validation (= test) accuracy after the last epoch.
    final_acc: Stat,
    /// The best epoch's validation accuracy, and that epoch.
    max_acc: Stat,
    max_epoch: Stat,
    test_loss: Stat,
    /// Mean final accuracy minus Hinton's figure, in percentage points, and its size.
    vs_hinton_pp: f64,
    abs_vs_hinton_pp: f64,
}

#[derive(Serialize)]
struct WeightDecay {
    description: String,
    epochs: usize,
    batch_size: usize,
    optimizer: String,
    rows: Vec<DecayRow>,
    /// Best by mean final accuracy; best by mean maximum accuracy.
    best: DecayRow,
    /// How many replicates, on their own final accuracy, pick the best factor too.
    agreement: Agreement,
    best_max: DecayRow,
    hinton: f64,
    /// Some factor's mean final accuracy reaches Hinton's figure.
    reaches_hinton: bool,
    /// The best factor lies at an end of the range.
    best_at_edge: bool,
    /// The spread of mean final accuracy across factors, in percentage points.
    range_pp: f64,
    figure: String,
    #[serde(skip)]
    chart: LineChart,
}

fn weight_decay(tables: &Tables, experiment: &Experiment) -> Result<WeightDecay> {
    let axis = experiment.sweep.first().ok_or_else(|| anyhow!("{} has no sweep", experiment.id))?;
    let stats = |metric: &str| tables.point_stats(&experiment.id, metric);
    let (finals, maxima, epochs_of_max, losses) =
        (stats("test_acc")?, stats("val_acc_max")?, stats("val_acc_max_epoch")?, stats("test_loss")?);
    let find = |stats: &[(String, Stat)], label: &str| stats.iter().find(|(l, _)| l == label).map(|(_, s)| *s);
    let mut rows = Vec::new();
    for point in experiment.points(None) {
        let label = point_label(&point);
        let Some(final_acc) = find(&finals, &label) else { continue };
        let missing = || anyhow!("{}: {label} lacks a metric", experiment.id);
        let value = &point[0].value;
        rows.push(DecayRow {
            factor: value_text(value),
            x: value.as_f64().ok_or_else(|| anyhow!("{}: axis {} is not numeric", experiment.id, axis.axis))?,
            max_acc: find(&maxima, &label).ok_or_else(missing)?,
            max_epoch: find(&epochs_of_max, &label).ok_or_else(missing)?,
            test_loss: find(&losses, &label).ok_or_else(missing)?,
            vs_hinton_pp: (final_acc.mean - HINTON_VAL_ACC) * 100.0,
            abs_vs_hinton_pp: (final_acc.mean - HINTON_VAL_ACC).abs() * 100.0,
            final_acc,
            label,
        });
    }
    anyhow::ensure!(!rows.is_empty(), "{}: no weight-decay factor was measured", experiment.id);
    let best_by = |key: fn(&DecayRow) -> f64| -> usize {
        (0..rows.len()).fold(0, |best, i| if key(&rows[i]) > key(&rows[best]) { i } else { best })
    };
    let best = best_by(|r| r.final_acc.mean);
    let best_max = best_by(|r| r.max_acc.mean);
    let series = |name: &str, stat: fn(&DecayRow) -> Stat, dashed: bool| Series {
        label: name.into(),
        points: rows.iter().map(|r| Point { x: r.x, mean: stat(r).mean, std: stat(r).std }).collect(),
        dashed,
    };
    let chart = LineChart {
        title: format!("{} — validation accuracy against the weight decay", experiment.id),
        x_label: "weight decay (L2 factor)".into(),
        y_label: "validation accuracy".into(),
        log_x: true,
        series: vec![series("final epoch", |r| r.final_acc, false), series("best epoch", |r| r.max_acc, true)],
    };
    let replicates: Vec<Vec<f64>> =
        rows.iter().map(|r| tables.point_replicate_values(&experiment.id, &r.label, "test_acc")).collect::<Result<_>>()?;
    let means: Vec<f64> = rows.iter().map(|r| r.final_acc.mean).collect();
    let range_pp = (means.iter().cloned().fold(f64::MIN, f64::max) - means.iter().cloned().fold(f64::MAX, f64::min)) * 100.0;
    Ok(WeightDecay {
        description: experiment.description.clone(),
        epochs: tables.point_curve(&experiment.id, &rows[0].label, "acc")?.len(),
        batch_size: experiment.train.batch_size,
        optimizer: experiment.train.optimizer.describe(),
        best: rows[best].clone(),
        agreement: replicate_agreement(&replicates, best),
        best_max: rows[best_max].clone(),
        hinton: HINTON_VAL_ACC,
        reaches_hinton: rows.iter().any(|r| r.final_acc.mean >= HINTON_VAL_ACC),
        best_at_edge: rows.len() > 2 && (best == 0 || best + 1 == rows.len()),
        range_pp,
        rows,
        figure: format!("figures/{}.svg", experiment.id),
        chart,
    })
}

/// One CNN of q3a.
#[derive(Debug, Clone, Serialize)]
struct CnnRow {
    id: String,
    description: String,
    params: String,
    final_acc: Stat,
    max_acc: Stat,
    max_epoch: Stat,
    epoch_seconds: Stat,
    /// The mean final accuracy reaches the target.
    reaches: bool,
    /// How many replicates reach the target in some epoch.
    replicates_reaching: usize,
    replicates: usize,
}

#[derive(Serialize)]
struct Cnns {
    target: f64,
    epochs: usize,
    rows: Vec<CnnRow>,
    /// The pipeline's choice: the best by mean final validation accuracy.
    best: CnnRow,
    /// How many replicates, on their own values of the choice's metric, pick the same CNN.
    agreement: Agreement,
    runner_up: Option<CnnRow>,
    /// The lead over the runner-up exceeds the two replicate spreads together.
    clear: bool,
    metric: String,
    any_reaches: bool,
    figure: String,
    #[serde(skip)]
    chart: LineChart,
}

fn cnns(tables: &Tables, experiments: &[&Experiment], chosen: &Chosen) -> Result<Cnns> {
    let mut rows = Vec::new();
    let mut series = Vec::new();
    for experiment in experiments {
        let id = &experiment.id;
        let maxima = tables.replicate_values(id, "val_acc_max")?;
        rows.push(CnnRow {
            id: id.clone(),
            description: experiment.description.clone(),
            params: nnlab_nn::summary::group_thousands(experiment.model.param_count()?),
            final_acc: tables.stat(id, "test_acc")?,
            max_acc: tables.stat(id, "val_acc_max")?,
            max_epoch: tables.stat(id, "val_acc_max_epoch")?,
            epoch_seconds: tables.stat(id, "epoch_seconds")?,
            reaches: tables.stat(id, "test_acc")?.mean >= CNN_TARGET,
            replicates_reaching: maxima.iter().filter(|&&v| v >= CNN_TARGET).count(),
            replicates: maxima.len(),
        });
        series.push(Series { label: id.clone(), points: curve_points(&tables.curve(id, "val_acc")?), dashed: false });
    }
    let row_of = |id: &str| rows.iter().find(|r| r.id == id).cloned().ok_or_else(|| anyhow!("no row for {id}"));
    let best = row_of(chosen.experiment())?;
    let replicates: Vec<Vec<f64>> = rows.iter().map(|r| tables.replicate_values(&r.id, &chosen.metric)).collect::<Result<_>>()?;
    let chosen_index = rows.iter().position(|r| r.id == best.id).expect("the best is a row");
    let runner_up = chosen.ranking.get(1).map(|c| row_of(&c.label)).transpose()?;
    let clear = runner_up.as_ref().is_none_or(|r| {
        best.final_acc.mean - r.final_acc.mean > best.final_acc.std.unwrap_or(0.0) + r.final_acc.std.unwrap_or(0.0)
    });
    let epochs = tables.curve(&best.id, "val_acc")?.len();
    Ok(Cnns {
        target: CNN_TARGET,
        epochs,
        agreement: replicate_agreement(&replicates, chosen_index),
        any_reaches: rows.iter().any(|r| r.reaches),
        best,
        runner_up,
        clear,
        metric: chosen.metric.clone(),
        rows,
        figure: "figures/a7a.cnns.svg".into(),
        chart: LineChart {
            title: "a7a.q3a — validation accuracy per epoch (mean of the replicates)".into(),
            x_label: "epoch".into(),
            y_label: "validation accuracy".into(),
            log_x: false,
            series,
        },
    })
}

/// q3b: the best CNN against the dense base model.
#[derive(Serialize)]
struct ConvVsDense {
    cnn: ModelView,
    dense: ModelView,
    /// The CNN's parameters over the dense model's.
    params_ratio: f64,
    accuracy_gain_pp: f64,
    abs_accuracy_gain_pp: f64,
    cnn_more_accurate: bool,
    /// The CNN's parameters in its convolutions, and the share of its parameters in dense layers.
    conv_params: String,
    cnn_dense_share: f64,
    shift: Shift,
}

/// The accuracy below which the page calls digits hard to read, for the classifier that reads them.
const READABLE_ACC: f64 = 0.9;

/// q4a–q4c: the denoising autoencoder, its diagram, and its evaluation at every noise level.
#[derive(Serialize)]
struct Denoising {
    id: String,
    description: String,
    summary: SummaryView,
    epochs: usize,
    batch_size: usize,
    optimizer: String,
    loss: String,
    /// The training noise level(s), from the model's salt-and-pepper layer(s).
    training_levels: Vec<f64>,
    /// Reconstruction loss of the clean test images after the last epoch.
    test_loss: Stat,
    replicates: usize,
    diagram: String,
    loss_figure: String,
    classifier: String,
    readable_acc: f64,
    rows: Vec<LevelRow>,
    /// The first level whose noisy images the classifier reads below [`READABLE_ACC`], and the first
    /// whose denoised images it reads below it.
    noisy_unreadable_from: Option<String>,
    denoised_unreadable_from: Option<String>,
    /// Levels at which the denoised images are classified better than the noisy ones (mean).
    helps_at: Vec<String>,
    /// The first level from which reconstruction is closer to the clean images than the noisy input.
    closer_from: Option<String>,
    accuracy_figure: String,
    error_figure: String,
    grids: Vec<GridView>,
}

#[derive(Debug, Clone, Serialize)]
struct LevelRow {
    level: String,
    x: f64,
    noisy_mse: Stat,
    denoised_mse: Stat,
    test_loss: Stat,
    noisy_acc: Stat,
    denoised_acc: Stat,
    denoising_gain_pp: f64,
}

#[derive(Serialize)]
struct GridView {
    level: String,
    figure: String,
}

fn denoising(
    input: &RenderInput<'_>,
    experiment: &Experiment,
    study: &str,
    classifier: &str,
    figures: &mut Vec<FigureFile>,
) -> Result<Denoising> {
    let tables = input.tables;
    let id = &experiment.id;
    let metric = |name: &str| tables.evaluation_stats(study, name);
    let (losses, noisy_mse, denoised_mse, noisy_acc, denoised_acc) =
        (metric("test_loss")?, metric("noisy_mse")?, metric("denoised_mse")?, metric("noisy_acc")?, metric("denoised_acc")?);
    let find = |stats: &[(String, String, Stat)], label: &str| {
        stats.iter().find(|(m, t, _)| m == id && t == label).map(|(_, _, s)| *s).ok_or_else(|| anyhow!("{study}: no {label}"))
    };
    let mut rows = Vec::new();
    for (model, label, _) in &losses {
        if model != id {
            continue;
        }
        let level: f64 = label.trim_start_matches("level=").parse().with_context(|| format!("{study}: transform {label}"))?;
        let (noisy, denoised) = (find(&noisy_acc, label)?, find(&denoised_acc, label)?);
        rows.push(LevelRow {
            level: format!("{level:.1}"),
            x: level,
            noisy_mse: find(&noisy_mse, label)?,
            denoised_mse: find(&denoised_mse, label)?,
            test_loss: find(&losses, label)?,
            denoising_gain_pp: (denoised.mean - noisy.mean) * 100.0,
            noisy_acc: noisy,
            denoised_acc: denoised,
        });
    }
    anyhow::ensure!(!rows.is_empty(), "{study}: no level of {id} was evaluated");
    rows.sort_by(|a, b| a.x.total_cmp(&b.x));
    let first_below = |acc: fn(&LevelRow) -> f64| rows.iter().find(|r| acc(r) < READABLE_ACC).map(|r| r.level.clone());

    let series = |name: &str, stat: fn(&LevelRow) -> Stat, dashed: bool| Series {
        label: name.into(),
        points: rows.iter().map(|r| Point { x: r.x, mean: stat(r).mean, std: stat(r).std }).collect(),
        dashed,
    };
    let accuracy_chart = LineChart {
        title: format!("{study} — {classifier} accuracy against the noise level"),
        x_label: "salt-and-pepper level".into(),
        y_label: "test accuracy".into(),
        log_x: false,
        series: vec![series("noisy", |r| r.noisy_acc, true), series("denoised", |r| r.denoised_acc, false)],
    };
    let error_chart = LineChart {
        title: format!("{study} — squared error against the clean images"),
        x_label: "salt-and-pepper level".into(),
        y_label: "mean squared error per pixel".into(),
        log_x: false,
        series: vec![series("noisy", |r| r.noisy_mse, true), series("denoised", |r| r.denoised_mse, false)],
    };
    let (accuracy_figure, error_figure) = (format!("figures/{study}-accuracy.svg"), format!("figures/{study}-error.svg"));
    figures.push(FigureFile { path: accuracy_figure.clone(), figure: Figure::Line(accuracy_chart) });
    figures.push(FigureFile { path: error_figure.clone(), figure: Figure::Line(error_chart) });

    let loss_chart = LineChart {
        title: format!("{id} — reconstruction loss"),
        x_label: "epoch".into(),
        y_label: "binary cross-entropy".into(),
        log_x: false,
        series: vec![
            Series { label: "training (noisy inputs)".into(), points: curve_points(&tables.curve(id, "loss")?), dashed: false },
            Series {
                label: format!("{} (clean inputs)", validation_label(experiment)),
                points: curve_points(&tables.curve(id, "val_loss")?),
                dashed: true,
            },
        ],
    };
    let loss_figure = format!("figures/{id}-loss.svg");
    figures.push(FigureFile { path: loss_figure.clone(), figure: Figure::Line(loss_chart) });

    let diagram = format!("figures/{id}-diagram.svg");
    figures.push(FigureFile { path: diagram.clone(), figure: Figure::Diagram(id.clone(), diagram_layers(experiment)?) });

    let mut grids = Vec::new();
    for (level, samples) in sample_images(input.run_dir, study, id)? {
        let [height, width, channels] = samples.shape;
        anyhow::ensure!(channels == 1, "{study}: image grids draw greyscale images");
        let figure = format!("figures/{study}-level-{level:.1}.png");
        let grid =
            nnlab_report::ImageGrid { height, width, rows: vec![samples.clean, samples.noisy, samples.denoised], scale: 2 };
        figures.push(FigureFile { path: figure.clone(), figure: Figure::Images(grid) });
        grids.push(GridView { level: format!("{level:.1}"), figure });
    }
    grids.sort_by(|a, b| a.level.cmp(&b.level));

    let training_levels = experiment
        .model
        .layers
        .iter()
        .filter_map(|l| match l {
            nnlab_nn::LayerSpec::SaltAndPepper { level } => Some(*level),
            _ => None,
        })
        .collect();
    let test_loss = tables.stat(id, "test_loss")?;
    Ok(Denoising {
        id: id.clone(),
        description: experiment.description.clone(),
        summary: summary_view(experiment)?,
        epochs: tables.curve(id, "loss")?.len(),
        batch_size: experiment.train.batch_size,
        optimizer: experiment.train.optimizer.describe(),
        loss: experiment.train.objective().describe(),
        training_levels,
        replicates: test_loss.n,
        test_loss,
        diagram,
        loss_figure,
        classifier: classifier.to_string(),
        readable_acc: READABLE_ACC,
        noisy_unreadable_from: first_below(|r| r.noisy_acc.mean),
        denoised_unreadable_from: first_below(|r| r.denoised_acc.mean),
        helps_at: rows.iter().filter(|r| r.denoised_acc.mean > r.noisy_acc.mean).map(|r| r.level.clone()).collect(),
        closer_from: rows.iter().find(|r| r.denoised_mse.mean < r.noisy_mse.mean).map(|r| r.level.clone()),
        rows,
        accuracy_figure,
        error_figure,
        grids,
    })
}

/// The model's layers for its diagram: dense layers up to the narrowest are the encoder, the rest
/// the decoder.
fn diagram_layers(experiment: &Experiment) -> Result<Vec<nnlab_report::DiagramLayer>> {
    let planned = experiment.model.plan()?;
    let dense: Vec<usize> = (0..planned.len()).filter(|&i| planned[i].kind == "Dense").collect();
    let code = dense.iter().copied().min_by_key(|&i| planned[i].output_shape.iter().product::<usize>());
    let mut layers = Vec::new();
    for (i, (layer, spec)) in planned.iter().zip(&experiment.model.layers).enumerate() {
        let size: usize = layer.output_shape.iter().product();
        let detail = match spec {
            nnlab_nn::LayerSpec::Dense { units, activation, .. } => format!("{units}, {activation:?}").to_lowercase(),
            nnlab_nn::LayerSpec::SaltAndPepper { level } => format!("level {level}, training only"),
            _ => format!("{size} values"),
        };
        let group = match code {
            Some(c) if layer.kind == "Dense" && i == c => Some("code".to_string()),
            Some(c) if layer.kind == "Dense" && i < c => Some("encoder".to_string()),
            Some(_) if layer.kind == "Dense" => Some("decoder".to_string()),
            _ => None,
        };
        layers.push(nnlab_report::DiagramLayer { name: format!("{} ({})", layer.name, layer.kind), detail, size, group });
    }
    Ok(layers)
}

/// q4d: what the decoder of replicate 1 makes of interpolated and of random codes.
#[derive(Serialize)]
struct Generation {
    code_layer: String,
    code_size: usize,
    steps: usize,
    pairs: Vec<String>,
    samples: usize,
    clipped_at_zero: bool,
    interpolation_figure: String,
    samples_figure: String,
}

fn generation(run_dir: &std::path::Path, study: &str, experiment: &str, figures: &mut Vec<FigureFile>) -> Result<Generation> {
    let generated = evaluation_results(run_dir, study, experiment)?
        .into_iter()
        .find_map(|(_, result)| result.generated)
        .with_context(|| format!("{study}: replicate 1 of {experiment} generated nothing"))?;
    let [height, width, _] = generated.shape;
    let interpolation_figure = format!("figures/{study}-interpolations.png");
    let samples_figure = format!("figures/{study}-samples.png");
    let grid = |rows: Vec<Vec<Vec<u8>>>| nnlab_report::ImageGrid { height, width, rows, scale: 2 };
    let steps = generated.interpolations.first().map_or(0, Vec::len);
    figures.push(FigureFile { path: interpolation_figure.clone(), figure: Figure::Images(grid(generated.interpolations)) });
    let per_row = 8.min(generated.samples.len().max(1));
    let sample_rows: Vec<Vec<Vec<u8>>> =
        generated.samples.chunks(per_row).filter(|r| r.len() == per_row).map(<[_]>::to_vec).collect();
    let samples = sample_rows.len() * per_row;
    figures.push(FigureFile { path: samples_figure.clone(), figure: Figure::Images(grid(sample_rows)) });
    Ok(Generation {
        code_layer: generated.code_layer,
        code_size: generated.code_size,
        steps,
        pairs: generated.pair_classes.iter().map(|[a, b]| format!("{a} → {b}")).collect(),
        samples,
        clipped_at_zero: generated.clipped_at_zero,
        interpolation_figure,
        samples_figure,
    })
}

/// The results of `study` for replicate 1 of `experiment`, with their transforms.
fn evaluation_results(
    run_dir: &std::path::Path,
    study: &str,
    experiment: &str,
) -> Result<Vec<(crate::catalogue::Transform, crate::store::EvalResult)>> {
    let path = run_dir.join("evaluations.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let jobs: Vec<crate::plan::EvalJob> =
        serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))?;
    let store = crate::store::RunStore::open(run_dir)?;
    jobs.iter()
        .filter(|j| j.evaluation == study && j.trained.spec.experiment == experiment && j.trained.spec.replicate == 1)
        .map(|job| Ok((job.transform, store.load_evaluation(job)?)))
        .collect()
}

/// The sample images of every level that replicate 1 of `experiment` was evaluated at.
fn sample_images(run_dir: &std::path::Path, study: &str, experiment: &str) -> Result<Vec<(f64, crate::store::SampleImages)>> {
    Ok(evaluation_results(run_dir, study, experiment)?
        .into_iter()
        .filter_map(|(transform, result)| match transform {
            crate::catalogue::Transform::SaltAndPepper { level, .. } => Some((level, result.reconstruction?.samples?)),
            _ => None,
        })
        .collect())
}
