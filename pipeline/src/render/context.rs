//! Building blocks shared by the assignment report builders: statistics, history facts, figures and
//! console logs, all read from the result tables.

use std::path::Path;

use anyhow::{Context, Result};
use nnlab_report::figure::{line_chart_svg, LineChart, Point, Series};
use nnlab_report::{heat_map_svg, scatter_svg, HeatMap, ScatterChart};
use serde::Serialize;

use super::RenderInput;
use crate::catalogue::{Experiment, Validation};
use crate::datasets::load_facts;
use crate::stats::welch;
use crate::tables::{CurvePoint, Stat, Tables};

/// Measured facts about a training history (mean curves over replicates), on which the
/// interpretive answers are conditioned.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryFacts {
    pub epochs: usize,
    pub first_train_acc: f64,
    pub first_val_acc: f64,
    pub last_train_acc: f64,
    pub last_val_acc: f64,
    /// Train minus validation accuracy at the last epoch, in percentage points.
    pub last_gap_pp: f64,
    pub best_val_acc: f64,
    pub best_val_acc_epoch: usize,
    pub min_val_loss: f64,
    pub min_val_loss_epoch: usize,
    pub last_val_loss: f64,
    /// Validation loss at the last epoch is above its minimum by more than 2% (it turned upwards).
    pub val_loss_rises: bool,
    /// Training loss still fell after the epoch of minimum validation loss.
    pub train_loss_falls_after_min: bool,
    /// Both at once: the classic signature of overfitting.
    pub overfits: bool,
    /// Validation accuracy above training accuracy in the first epoch (training accuracy is averaged
    /// over an epoch during which the model was still poor).
    pub val_above_train_first_epoch: bool,
    /// The gap is under one percentage point at the last epoch.
    pub small_gap: bool,
    /// Training accuracy above validation accuracy at the last epoch (the gap's sign).
    pub train_above_val: bool,
    /// Validation accuracy rose in the last epoch to its best value: more epochs would still help.
    pub still_rising: bool,
    /// The first epoch whose validation accuracy is within one percentage point of its best.
    pub near_best_epoch: usize,
}

pub fn history_facts(tables: &Tables, experiment: &str) -> Result<HistoryFacts> {
    let acc = tables.curve(experiment, "acc")?;
    let val_acc = tables.curve(experiment, "val_acc")?;
    let loss = tables.curve(experiment, "loss")?;
    let val_loss = tables.curve(experiment, "val_loss")?;
    anyhow::ensure!(!acc.is_empty() && val_acc.len() == acc.len(), "{experiment}: no validation history to describe");
    let last = acc.len() - 1;
    let best_val = arg_by(&val_acc, |a, b| a > b);
    let min_loss = arg_by(&val_loss, |a, b| a < b);
    let last_gap_pp = (acc[last].mean - val_acc[last].mean) * 100.0;
    let val_loss_rises = val_loss[last].mean > val_loss[min_loss].mean * 1.02;
    let train_loss_falls_after_min = loss[last].mean < loss[min_loss].mean;
    Ok(HistoryFacts {
        epochs: acc.len(),
        first_train_acc: acc[0].mean,
        first_val_acc: val_acc[0].mean,
        last_train_acc: acc[last].mean,
        last_val_acc: val_acc[last].mean,
        last_gap_pp,
        best_val_acc: val_acc[best_val].mean,
        best_val_acc_epoch: val_acc[best_val].epoch,
        min_val_loss: val_loss[min_loss].mean,
        min_val_loss_epoch: val_loss[min_loss].epoch,
        last_val_loss: val_loss[last].mean,
        val_loss_rises,
        train_loss_falls_after_min,
        overfits: val_loss_rises && train_loss_falls_after_min,
        val_above_train_first_epoch: val_acc[0].mean > acc[0].mean,
        small_gap: last_gap_pp.abs() < 1.0,
        train_above_val: last_gap_pp > 0.0,
        still_rising: last > 0 && val_acc[last].mean > val_acc[last - 1].mean && best_val == last,
        near_best_epoch: val_acc.iter().find(|p| p.mean >= val_acc[best_val].mean - 0.01).map_or(1, |p| p.epoch),
    })
}

/// Index of the first point that is best under `better`.
fn arg_by(points: &[CurvePoint], better: impl Fn(f64, f64) -> bool) -> usize {
    let mut best = 0;
    for (i, p) in points.iter().enumerate() {
        if better(p.mean, points[best].mean) {
            best = i;
        }
    }
    best
}

/// How many replicates, each on its own, make the same choice as the means: replicate r of every
/// candidate is set against replicate r of the others. A categorical answer carries it, so that a
/// reader (and the answer key) sees whether "the best" is a firm or a fragile finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Agreement {
    pub agree: usize,
    pub of: usize,
}

/// `candidates[i]` are candidate i's replicate values (higher is better); `chosen` the index the
/// means chose. Replicates beyond the shortest candidate's count are left out.
pub fn replicate_agreement(candidates: &[Vec<f64>], chosen: usize) -> Agreement {
    let of = candidates.iter().map(Vec::len).min().unwrap_or(0);
    let agree = (0..of)
        .filter(|&r| {
            let best = (0..candidates.len()).fold(0, |best, i| if candidates[i][r] > candidates[best][r] { i } else { best });
            best == chosen
        })
        .count();
    Agreement { agree, of }
}

/// A figure a page shows. Page builders only describe figures; the figure step
/// ([`write_figures`]) draws and writes them all.
pub enum Figure {
    Line(LineChart),
    Heat(HeatMap),
    Scatter(ScatterChart),
    /// A model's layers, titled.
    Diagram(String, Vec<nnlab_report::DiagramLayer>),
    /// Images, written as PNG.
    Images(nnlab_report::ImageGrid),
    /// Estimates with their intervals against a reference line.
    Interval(nnlab_report::IntervalChart),
    /// Decision boundaries of Playground networks.
    Boundary(nnlab_report::BoundaryGrid),
}

pub struct FigureFile {
    /// Relative to the report directory, as the page links it: `figures/<name>.svg` (`.png` for images).
    pub path: String,
    pub figure: Figure,
}

/// The figure step: draws every figure and writes it atomically under the report directory.
pub fn write_figures(out_dir: &Path, figures: &[FigureFile]) -> Result<()> {
    for file in figures {
        let bytes = match &file.figure {
            Figure::Line(chart) => line_chart_svg(chart).map(String::into_bytes),
            Figure::Heat(map) => heat_map_svg(map).map(String::into_bytes),
            Figure::Scatter(chart) => scatter_svg(chart).map(String::into_bytes),
            Figure::Diagram(title, layers) => Ok(nnlab_report::layer_diagram_svg(title, layers).into_bytes()),
            Figure::Interval(chart) => nnlab_report::interval_chart_svg(chart).map(String::into_bytes),
            Figure::Boundary(grid) => nnlab_report::boundary_grid_svg(grid).map(String::into_bytes),
            Figure::Images(grid) => {
                Ok(grid.to_png().map_err(anyhow::Error::msg).with_context(|| format!("figure {}", file.path))?)
            }
        }
        .with_context(|| format!("figure {}", file.path))?;
        let path = out_dir.join(&file.path);
        std::fs::create_dir_all(path.parent().expect("figure paths have a folder"))?;
        nnlab_report::write_atomic(&path, &bytes)?;
    }
    Ok(())
}

/// Where a model's history figures are linked from.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryFigures {
    pub acc: String,
    pub loss: String,
}

/// Accuracy and loss figures (training vs validation, mean line with ±std band) of one experiment.
pub fn history_figures(tables: &Tables, experiment: &Experiment) -> Result<(HistoryFigures, Vec<FigureFile>)> {
    let mut files = Vec::new();
    for (key, label) in [("acc", "accuracy"), ("loss", "loss")] {
        let series = |metric: &str, name: &str, dashed: bool| -> Result<Series> {
            Ok(Series { label: name.to_string(), points: curve_points(&tables.curve(&experiment.id, metric)?), dashed })
        };
        let chart = LineChart {
            title: format!("{} — {label}", experiment.id),
            x_label: "epoch".into(),
            y_label: label.into(),
            log_x: false,
            series: vec![series(key, "training", false)?, series(&format!("val_{key}"), validation_label(experiment), true)?],
        };
        files.push(FigureFile { path: format!("figures/{}-{key}.svg", experiment.id), figure: Figure::Line(chart) });
    }
    let paths = HistoryFigures { acc: files[0].path.clone(), loss: files[1].path.clone() };
    Ok((paths, files))
}

pub fn curve_points(curve: &[CurvePoint]) -> Vec<Point> {
    curve.iter().map(|p| Point { x: p.epoch as f64, mean: p.mean, std: p.std }).collect()
}

/// What the per-epoch validation curve was measured on.
pub fn validation_label(experiment: &Experiment) -> &'static str {
    match experiment.validation {
        Validation::Split(_) => "validation",
        Validation::Test => "test",
    }
}

/// The first replicate's per-epoch log, printed the way Keras prints it to the console.
pub fn console_log(tables: &Tables, experiment: &str) -> Result<String> {
    let rows = tables.replicate_history(experiment, 1)?;
    let epochs = rows.len();
    let fmt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    Ok(rows
        .iter()
        .map(|[epoch, loss, acc, val_loss, val_acc, seconds]| {
            format!(
                "Epoch {}/{epochs} - {:.2}s - loss: {} - acc: {} - val_loss: {} - val_acc: {}",
                epoch.unwrap_or(0.0) as usize,
                seconds.unwrap_or(f64::NAN),
                fmt(*loss),
                fmt(*acc),
                fmt(*val_loss),
                fmt(*val_acc)
            )
        })
        .collect::<Vec<_>>()
        .join("\n"))
}

/// Keras-style summary of an experiment's model.
#[derive(Debug, Clone, Serialize)]
pub struct SummaryView {
    pub rows: Vec<SummaryRow>,
    pub total_params: String,
    pub total_params_raw: usize,
    pub flops_per_sample: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SummaryRow {
    pub layer: String,
    pub output_shape: String,
    pub params: String,
}

pub fn summary_view(experiment: &Experiment) -> Result<SummaryView> {
    let summary = nnlab_nn::Summary::of(&experiment.model)?;
    let group = nnlab_nn::summary::group_thousands;
    Ok(SummaryView {
        rows: summary
            .rows
            .iter()
            .map(|r| SummaryRow { layer: r.layer.clone(), output_shape: r.output_shape.clone(), params: group(r.params) })
            .collect(),
        total_params: group(summary.total_params),
        total_params_raw: summary.total_params,
        flops_per_sample: group(summary.flops_per_sample),
    })
}

/// Everything the templates show about one trained model (the `model_summary` partial's input).
#[derive(Debug, Clone, Serialize)]
pub struct ModelView {
    pub id: String,
    pub description: String,
    pub summary: SummaryView,
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: String,
    pub optimizer_name: String,
    pub lr: f64,
    pub loss: String,
    pub test_acc: Stat,
    pub test_loss: Stat,
    pub epoch_seconds: Stat,
    pub samples_per_s: Stat,
    pub facts: HistoryFacts,
    pub figures: HistoryFigures,
    pub console_log: String,
}

/// The view of experiment `id` of `assignment`; its figures are added to `figures`.
pub fn view_of(
    assignment: &crate::catalogue::Assignment,
    tables: &Tables,
    id: &str,
    figures: &mut Vec<FigureFile>,
) -> Result<ModelView> {
    let experiment = assignment.experiment(id).with_context(|| format!("the catalogue has no experiment {id}"))?;
    let (view, files) = model_view(tables, experiment)?;
    figures.extend(files);
    Ok(view)
}

/// The model's view and the figures it links to.
pub fn model_view(tables: &Tables, experiment: &Experiment) -> Result<(ModelView, Vec<FigureFile>)> {
    let id = &experiment.id;
    let (figures, files) = history_figures(tables, experiment)?;
    let view = ModelView {
        id: id.clone(),
        description: experiment.description.clone(),
        summary: summary_view(experiment)?,
        epochs: tables.curve(id, "acc")?.len(),
        batch_size: experiment.train.batch_size,
        optimizer: experiment.train.optimizer.describe(),
        optimizer_name: experiment.train.optimizer.name().to_string(),
        lr: experiment.train.optimizer.lr(),
        loss: experiment.train.objective().describe(),
        test_acc: tables.stat(id, "test_acc")?,
        test_loss: tables.stat(id, "test_loss")?,
        epoch_seconds: tables.stat(id, "epoch_seconds")?,
        samples_per_s: tables.stat(id, "train_samples_per_s")?,
        facts: history_facts(tables, id)?,
        figures,
        console_log: console_log(tables, id)?,
    };
    Ok((view, files))
}

/// Difference of two replicate distributions (a − b), with Welch's t-test where defined.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub difference_pp: f64,
    pub abs_difference_pp: f64,
    pub a_higher: bool,
    pub tested: bool,
    pub p: Option<f64>,
    pub significant: bool,
    /// Under half a percentage point counts as "no practical difference" in the prose.
    pub negligible: bool,
}

pub fn compare(a: &[f64], b: &[f64], difference: f64) -> Comparison {
    let test = welch(a, b);
    Comparison {
        difference_pp: difference * 100.0,
        abs_difference_pp: difference.abs() * 100.0,
        a_higher: difference > 0.0,
        tested: test.is_some(),
        p: test.map(|t| t.p),
        significant: test.is_some_and(|t| t.p < 0.05),
        negligible: difference.abs() < 0.005,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicates_vote_on_their_own_values() {
        // Means pick candidate 1; replicate 0 agrees, replicate 1 prefers candidate 0.
        let candidates = vec![vec![0.90, 0.95, 0.91], vec![0.93, 0.92, 0.94]];
        assert_eq!(replicate_agreement(&candidates, 1), Agreement { agree: 2, of: 3 });
        assert_eq!(replicate_agreement(&[vec![0.9], vec![0.8, 0.7]], 0), Agreement { agree: 1, of: 1 });
    }
    use crate::store::JobResult;
    use nnlab_nn::{EpochRecord, Evaluation};

    /// Tables of one experiment, one replicate, from per-epoch (acc, val_acc, loss, val_loss).
    fn tables(epochs: &[(f64, f64, f64, f64)]) -> Tables {
        let history = epochs
            .iter()
            .enumerate()
            .map(|(i, &(acc, val_acc, loss, val_loss))| EpochRecord {
                epoch: i + 1,
                loss,
                acc: Some(acc),
                val_loss: Some(val_loss),
                val_acc: Some(val_acc),
                seconds: 1.0,
                train_seconds: 1.0,
            })
            .collect();
        let result = JobResult {
            id: "j".into(),
            experiment: "x.m".into(),
            replicate: 1,
            seed: 1,
            history,
            test: Evaluation { loss: 0.1, acc: Some(0.9) },
            params: 1,
            flops_per_sample: 1,
            train_samples: 1,
            validation_samples: 1,
            test_samples: 1,
            train_samples_per_s: 1.0,
            wall_seconds: 1.0,
            threads: 1,
            activations: None,
            point: vec![],
        };
        Tables::aggregate(&[result], &[]).unwrap()
    }

    #[test]
    fn still_rising_holds_only_when_the_last_epoch_is_the_best_and_rose() {
        let rising = history_facts(&tables(&[(0.5, 0.5, 1.0, 1.0), (0.6, 0.6, 0.8, 0.8), (0.7, 0.65, 0.6, 0.7)]), "x.m").unwrap();
        assert!(rising.still_rising);
        let levelled =
            history_facts(&tables(&[(0.5, 0.5, 1.0, 1.0), (0.6, 0.66, 0.8, 0.8), (0.7, 0.65, 0.6, 0.7)]), "x.m").unwrap();
        assert!(!levelled.still_rising);
        assert_eq!((levelled.best_val_acc_epoch, levelled.near_best_epoch), (2, 2));
    }

    #[test]
    fn near_best_epoch_is_the_first_within_one_point_of_the_best() {
        let facts = history_facts(
            &tables(&[(0.9, 0.95, 0.3, 0.2), (0.95, 0.975, 0.2, 0.1), (0.97, 0.98, 0.1, 0.09), (0.98, 0.981, 0.1, 0.09)]),
            "x.m",
        )
        .unwrap();
        assert_eq!(facts.near_best_epoch, 2, "0.975 is within 0.01 of 0.981, 0.95 is not");
    }

    #[test]
    fn the_gap_sentence_follows_the_sign_of_the_gap() {
        // Dropout-style: validation above training at the end.
        let above = history_facts(&tables(&[(0.5, 0.6, 1.0, 0.9), (0.6, 0.7, 0.9, 0.8)]), "x.m").unwrap();
        assert!(!above.train_above_val && !above.small_gap && above.last_gap_pp < 0.0);
        let below = history_facts(&tables(&[(0.6, 0.5, 0.9, 1.0), (0.8, 0.7, 0.5, 0.8)]), "x.m").unwrap();
        assert!(below.train_above_val && !below.small_gap);
        // Overfitting needs validation loss up from its minimum while training loss still falls.
        let overfit =
            history_facts(&tables(&[(0.8, 0.8, 0.5, 0.5), (0.9, 0.82, 0.3, 0.4), (0.95, 0.81, 0.2, 0.6)]), "x.m").unwrap();
        assert!(overfit.overfits && overfit.val_loss_rises && overfit.min_val_loss_epoch == 2);
        assert!(!below.overfits);
    }
}

#[derive(Serialize)]
pub struct DataView {
    train_samples: usize,
    test_samples: usize,
    features: usize,
    image_shape: String,
    /// The image shape as a tuple's entries: `28, 28, 1`.
    image_dims: String,
    validation_samples: usize,
    fit_samples: usize,
    one_hot: Vec<OneHotRow>,
}

#[derive(Serialize)]
pub struct OneHotRow {
    label: u32,
    row: String,
}

/// Shapes and the first one-hot label rows of the data the models saw.
pub fn data_view(input: &RenderInput<'_>, validation: Validation) -> Result<DataView> {
    let facts = load_facts(input.run_dir, "mnist")?;
    let held_out = match validation {
        Validation::Split(f) => facts.train_samples - (facts.train_samples as f64 * (1.0 - f)).floor() as usize,
        Validation::Test => 0,
    };
    let one_hot = facts
        .first_train_labels
        .iter()
        .take(5)
        .map(|&label| {
            let row: Vec<&str> = (0..10).map(|c| if c == label { "1" } else { "0" }).collect();
            OneHotRow { label, row: row.join(" ") }
        })
        .collect();
    Ok(DataView {
        train_samples: facts.train_samples,
        test_samples: facts.test_samples,
        features: facts.sample_shape.iter().product(),
        image_shape: shape_text(&facts.sample_shape),
        image_dims: facts.sample_shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", "),
        validation_samples: held_out,
        fit_samples: facts.train_samples - held_out,
        one_hot,
    })
}

/// `32×32×3`.
pub fn shape_text(shape: &[usize]) -> String {
    shape.iter().map(usize::to_string).collect::<Vec<_>>().join("×")
}
