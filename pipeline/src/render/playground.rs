//! a1's extra questions x2 and x3 from the Playground stage's results: per knob, the test loss of
//! every value on every data set, each value judged against the default by Welch's test, with its
//! heat map, loss curves and decision boundaries; and the smallest-network search.

use anyhow::{Context, Result};
use nnlab_data::playground::{Shape, EXTENT, SAMPLES};
use nnlab_playground::search::Tried;
use nnlab_playground::{Regularization, Settings, Trained};
use nnlab_report::{BoundaryGrid, BoundaryPanel, HeatMap, LineChart, Point as ChartPoint, Series};
use serde::Serialize;

use super::context::{replicate_agreement, Agreement, Figure, FigureFile};
use crate::catalogue::{shape_name, Assignment, PlaygroundStudy};
use crate::playground::{Boundary, Outcome, PlaygroundResult, PlaygroundSpec, PointResult};
use crate::stats::{mean_var, welch};
use crate::tables::Stat;

#[derive(Debug, Serialize)]
pub struct PlaygroundView {
    pub settings: DefaultsView,
    /// The default network on each data set.
    pub defaults: Vec<DatasetDefault>,
    pub knobs: Vec<KnobView>,
    pub search: Option<SearchView>,
}

/// The settings every sweep starts from, from the run's jobs.
#[derive(Debug, Serialize)]
pub struct DefaultsView {
    pub epochs: usize,
    pub replicates: usize,
    pub samples: usize,
    pub train_percent: f64,
    pub noise: f64,
    pub features: String,
    pub hidden: String,
    pub activation: String,
    pub learning_rate: f64,
    pub batch_size: usize,
}

#[derive(Debug, Serialize)]
pub struct DatasetDefault {
    pub id: String,
    /// The answer id of its test loss.
    pub answer: String,
    pub title: String,
    pub test_loss: Stat,
    pub train_loss: Stat,
}

#[derive(Debug, Serialize)]
pub struct KnobView {
    pub id: String,
    pub title: String,
    pub values: Vec<String>,
    pub rows: Vec<KnobRow>,
    pub heat_map: String,
    pub curves: String,
    pub curves_dataset: String,
    pub boundaries: String,
}

/// One data set's results along a knob.
#[derive(Debug, Serialize)]
pub struct KnobRow {
    pub dataset: String,
    pub dataset_id: String,
    /// The answer id of the best value.
    pub best_answer: String,
    /// Final test loss per value, in the knob's order.
    pub cells: Vec<Cell>,
    pub best: String,
    pub best_loss: Stat,
    pub best_agreement: Agreement,
    pub worst: String,
    pub worst_loss: Stat,
    /// The default value's label, when the knob's values include the defaults.
    pub default: Option<String>,
    /// Values whose test loss differs from the default's (Welch, p < 0.05), lower or higher.
    pub better_than_default: Vec<String>,
    pub worse_than_default: Vec<String>,
    pub no_difference: bool,
    /// How the test loss runs along an ordered (numeric) knob; none for a categorical one.
    pub trend: Option<Trend>,
}

/// The shape of the test loss along a numeric knob, judged on the best and worst values: flat when
/// they do not differ (Welch, p ≥ 0.05), else where the lowest loss sits.
#[derive(Debug, Serialize)]
pub struct Trend {
    pub flat: bool,
    pub lowest_at_smallest: bool,
    pub lowest_at_largest: bool,
    pub lowest_inside: bool,
}

impl Trend {
    fn of(losses: &[Vec<f64>], best: usize, worst: usize) -> Trend {
        let flat = welch(&losses[best], &losses[worst]).is_none_or(|w| w.p >= 0.05);
        let last = losses.len() - 1;
        Trend {
            flat,
            lowest_at_smallest: !flat && best == 0,
            lowest_at_largest: !flat && best == last,
            lowest_inside: !flat && best != 0 && best != last,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Cell {
    pub value: String,
    pub test_loss: Stat,
    /// Against the default: "better", "worse", "same" (p ≥ 0.05) or "default" itself; none without a default.
    pub versus_default: Option<&'static str>,
    /// How the table marks it: " ↓" better, " ↑" worse, " (default)".
    pub mark: &'static str,
}

#[derive(Debug, Serialize)]
pub struct SearchView {
    pub dataset: String,
    pub bar: f64,
    pub epochs: usize,
    pub seeds: usize,
    pub needed: usize,
    pub noise: f64,
    pub train_percent: f64,
    pub learning_rate: f64,
    pub activation: String,
    pub batch_size: usize,
    pub space: String,
    pub space_size: usize,
    pub candidates_tried: usize,
    pub networks_trained: usize,
    pub seconds: f64,
    pub threads: usize,
    pub found: bool,
    /// The answers, printed whether or not a network was found ("none within the space").
    pub answer_network: String,
    pub answer_parameters: String,
    pub answer_success: String,
    pub winner: Option<Found>,
    pub runners_up: Vec<Found>,
    /// The smaller candidates that came closest (lowest mean final test loss), to show how near they got.
    pub closest_failures: Vec<Found>,
    pub figure: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Found {
    pub network: String,
    pub parameters: usize,
    pub successes: usize,
    pub tried: usize,
    /// "k of n" seeds reached the bar.
    pub success_text: String,
    pub median_epoch: Option<usize>,
    pub epochs_text: String,
    pub mean_final_test_loss: f64,
}

/// The view of the Playground study of `assignment`, or none when the run had no Playground stage.
pub fn view(
    assignment: &Assignment,
    results: Option<&[PlaygroundResult]>,
    figures: &mut Vec<FigureFile>,
) -> Result<Option<PlaygroundView>> {
    let (Some(study), Some(results)) = (&assignment.playground, results) else { return Ok(None) };
    let knob_results: Vec<&PlaygroundResult> = results.iter().filter(|r| matches!(r.spec, PlaygroundSpec::Knob { .. })).collect();
    let Some(first) = knob_results.first() else { return Ok(None) };
    let PlaygroundSpec::Knob { epochs, seeds, .. } = &first.spec else { unreachable!("filtered to knobs") };
    let defaults = study.defaults_for(study.datasets[0])?;
    let settings = DefaultsView {
        epochs: *epochs,
        replicates: seeds.len(),
        samples: SAMPLES,
        train_percent: defaults.train_percent,
        noise: defaults.noise,
        features: features_text(&defaults),
        hidden: hidden_text(&defaults.hidden),
        activation: format!("{:?}", defaults.activation).to_lowercase(),
        learning_rate: defaults.learning_rate,
        batch_size: defaults.batch_size,
    };
    let mut knobs = Vec::new();
    for knob in &study.knobs {
        let rows: Vec<(Shape, &Vec<PointResult>)> = study
            .datasets
            .iter()
            .filter_map(|&dataset| {
                knob_results.iter().find_map(|r| match (&r.spec, &r.outcome) {
                    (PlaygroundSpec::Knob { dataset: d, knob: k, .. }, Outcome::Knob { points })
                        if *d == dataset && *k == knob.id =>
                    {
                        Some((dataset, points))
                    }
                    _ => None,
                })
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        knobs.push(knob_view(study, &knob.id, &knob.title, &rows, figures)?);
    }
    let defaults = default_losses(study, &knob_results)?;
    let search =
        results.iter().find(|r| matches!(r.spec, PlaygroundSpec::Search { .. })).map(|r| search_view(r, figures)).transpose()?;
    Ok(Some(PlaygroundView { settings, defaults, knobs, search }))
}

fn final_test(point: &PointResult) -> Vec<f64> {
    point.runs.iter().map(Trained::final_test_loss).collect()
}

fn stat(values: &[f64]) -> Stat {
    let (mean, var) = mean_var(values);
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Stat { mean, std: (values.len() > 1).then(|| var.sqrt()), n: values.len(), min, max }
}

/// Settings equal to the defaults count as the default; a regulariser at rate 0 is no regulariser.
fn is_default(settings: &Settings, defaults: &Settings) -> bool {
    let normal = |s: &Settings| {
        let mut s = s.clone();
        if s.regularization_rate == 0.0 {
            s.regularization = Regularization::None;
        }
        s
    };
    normal(settings) == normal(defaults)
}

/// The default network's losses per data set, from the first knob that trained the defaults.
fn default_losses(study: &PlaygroundStudy, knob_results: &[&PlaygroundResult]) -> Result<Vec<DatasetDefault>> {
    let mut out = Vec::new();
    for &dataset in &study.datasets {
        let defaults = study.defaults_for(dataset)?;
        let found = knob_results.iter().find_map(|r| match (&r.spec, &r.outcome) {
            (PlaygroundSpec::Knob { points: specs, .. }, Outcome::Knob { points }) => {
                specs.iter().zip(points).find(|(spec, _)| spec.settings == defaults).map(|(_, p)| p)
            }
            _ => None,
        });
        if let Some(point) = found {
            out.push(DatasetDefault {
                id: shape_name(dataset),
                answer: format!("a1.x2.default.{}.test_loss", shape_name(dataset)),
                title: dataset.title().to_string(),
                test_loss: stat(&final_test(point)),
                train_loss: stat(&point.runs.iter().map(Trained::final_train_loss).collect::<Vec<_>>()),
            });
        }
    }
    Ok(out)
}

fn knob_view(
    study: &PlaygroundStudy,
    id: &str,
    title: &str,
    rows: &[(Shape, &Vec<PointResult>)],
    figures: &mut Vec<FigureFile>,
) -> Result<KnobView> {
    let values: Vec<String> = rows[0].1.iter().map(|p| p.label.clone()).collect();
    let knob = study.knobs.iter().find(|k| k.id == id).context("a knob of the results is in the catalogue")?;
    let mut views = Vec::new();
    for (dataset, points) in rows {
        let defaults = study.defaults_for(*dataset)?;
        let default_index = knob.values.iter().position(|v| {
            study.knob_settings(knob, v, *dataset).is_ok_and(|s| is_default(&s, &defaults))
                && points.iter().any(|p| p.label == crate::catalogue::value_label(v))
        });
        let default_label = default_index.map(|i| crate::catalogue::value_label(&knob.values[i]));
        let default_losses = default_label.as_ref().and_then(|label| points.iter().find(|p| &p.label == label)).map(final_test);
        let losses: Vec<Vec<f64>> = points.iter().map(final_test).collect();
        let stats: Vec<Stat> = losses.iter().map(|l| stat(l)).collect();
        let mut cells = Vec::new();
        let (mut better, mut worse) = (Vec::new(), Vec::new());
        for ((point, values), summary) in points.iter().zip(&losses).zip(&stats) {
            let versus = match (&default_label, &default_losses) {
                (Some(label), _) if *label == point.label => Some("default"),
                (Some(_), Some(reference)) => Some(match welch(values, reference) {
                    Some(w) if w.p < 0.05 && w.difference < 0.0 => {
                        better.push(point.label.clone());
                        "better"
                    }
                    Some(w) if w.p < 0.05 => {
                        worse.push(point.label.clone());
                        "worse"
                    }
                    _ => "same",
                }),
                _ => None,
            };
            let mark = match versus {
                Some("better") => " ↓",
                Some("worse") => " ↑",
                Some("default") => " (default)",
                _ => "",
            };
            cells.push(Cell { value: point.label.clone(), test_loss: *summary, versus_default: versus, mark });
        }
        let best = (0..points.len()).min_by(|&a, &b| stats[a].mean.total_cmp(&stats[b].mean)).unwrap_or(0);
        let worst = (0..points.len()).max_by(|&a, &b| stats[a].mean.total_cmp(&stats[b].mean)).unwrap_or(0);
        let numeric = knob.values.iter().all(|v| v.is_integer() || v.is_float());
        let trend = (numeric && points.len() > 2).then(|| Trend::of(&losses, best, worst));
        // Agreement counts replicates whose own lowest loss is the same value (higher is better there).
        let negated: Vec<Vec<f64>> = losses.iter().map(|l| l.iter().map(|v| -v).collect()).collect();
        views.push(KnobRow {
            dataset: dataset.title().to_string(),
            dataset_id: shape_name(*dataset),
            best_answer: format!("a1.x2.{id}.{}.best", shape_name(*dataset)),
            best: points[best].label.clone(),
            best_loss: stats[best],
            best_agreement: replicate_agreement(&negated, best),
            worst: points[worst].label.clone(),
            worst_loss: stats[worst],
            no_difference: default_label.is_some() && better.is_empty() && worse.is_empty(),
            default: default_label,
            better_than_default: better,
            worse_than_default: worse,
            trend,
            cells,
        });
    }

    let heat_map = format!("figures/a1_x2_{id}_test_loss.svg");
    figures.push(FigureFile {
        path: heat_map.clone(),
        figure: Figure::Heat(HeatMap {
            title: format!("Final test loss by {title}"),
            x_label: title.to_string(),
            y_label: "data set".to_string(),
            columns: values.clone(),
            rows: views.iter().map(|r| r.dataset.clone()).collect(),
            values: views.iter().map(|r| r.cells.iter().map(|c| Some(c.test_loss.mean)).collect()).collect(),
            percent: false,
        }),
    });

    // The curves of the data set on which the knob matters most (widest range of mean test loss).
    let spread = |row: &KnobRow| row.worst_loss.mean - row.best_loss.mean;
    let widest = (0..views.len()).max_by(|&a, &b| spread(&views[a]).total_cmp(&spread(&views[b]))).unwrap_or(0);
    let (curves_shape, curves_points) = rows[widest];
    let curves = format!("figures/a1_x2_{id}_curves.svg");
    figures.push(FigureFile {
        path: curves.clone(),
        figure: Figure::Line(LineChart {
            title: format!("Test loss over epochs by {title}, {}", curves_shape.title()),
            x_label: "epoch".to_string(),
            y_label: "test loss (mean ± std)".to_string(),
            log_x: false,
            series: curves_points
                .iter()
                .map(|p| Series { label: p.label.clone(), points: curve(&p.runs), dashed: false })
                .collect(),
        }),
    });

    let boundaries = format!("figures/a1_x2_{id}_boundaries.svg");
    figures.push(FigureFile {
        path: boundaries.clone(),
        figure: Figure::Boundary(BoundaryGrid {
            title: format!("Decision boundaries by {title} (first seed)"),
            extent: EXTENT,
            row_labels: rows.iter().map(|(d, _)| d.title().to_string()).collect(),
            column_labels: values.clone(),
            panels: rows
                .iter()
                .map(|(_, points)| {
                    points
                        .iter()
                        .map(|p| Some(panel(&p.boundary, format!("test loss {:.3}", p.runs[0].final_test_loss()))))
                        .collect()
                })
                .collect(),
        }),
    });
    Ok(KnobView {
        id: id.to_string(),
        title: title.to_string(),
        values,
        rows: views,
        heat_map,
        curves,
        curves_dataset: curves_shape.title().to_string(),
        boundaries,
    })
}

/// Mean ± std of the test loss at every recorded epoch the replicates share.
fn curve(runs: &[Trained]) -> Vec<ChartPoint> {
    let epochs = &runs[0].epochs;
    epochs
        .iter()
        .enumerate()
        .filter(|(i, e)| runs.iter().all(|r| r.epochs.get(*i) == Some(e)))
        .map(|(i, &epoch)| {
            let s = stat(&runs.iter().map(|r| r.test_loss[i]).collect::<Vec<_>>());
            ChartPoint { x: epoch as f64, mean: s.mean, std: s.std }
        })
        .collect()
}

fn panel(boundary: &Boundary, caption: String) -> BoundaryPanel {
    BoundaryPanel {
        caption,
        resolution: boundary.resolution,
        values: boundary.values.clone(),
        points: boundary.train_points.iter().map(|p| (p.x, p.y, p.label)).collect(),
    }
}

fn search_view(result: &PlaygroundResult, figures: &mut Vec<FigureFile>) -> Result<SearchView> {
    let (PlaygroundSpec::Search { settings, epochs, bar, seeds, needed, space, .. }, Outcome::Search { outcome, pictures }) =
        (&result.spec, &result.outcome)
    else {
        anyhow::bail!("playground result {} is not a search", result.id);
    };
    let successes = outcome.successes();
    let found = |t: &Tried| -> Found {
        let mut reached: Vec<usize> = t.reached_at.iter().flatten().copied().collect();
        reached.sort_unstable();
        let median_epoch = (!reached.is_empty()).then(|| reached[(reached.len() - 1) / 2]);
        let finite: Vec<f64> = t.final_test_loss.iter().copied().filter(|v| v.is_finite()).collect();
        Found {
            network: t.candidate.label(),
            parameters: t.candidate.parameters,
            successes: t.successes(),
            tried: t.reached_at.len(),
            success_text: format!("{} of {}", t.successes(), t.reached_at.len()),
            median_epoch,
            epochs_text: t.reached_at.iter().map(|r| r.map_or("–".to_string(), |e| e.to_string())).collect::<Vec<_>>().join(", "),
            mean_final_test_loss: if finite.is_empty() {
                f64::INFINITY
            } else {
                finite.iter().sum::<f64>() / finite.len() as f64
            },
        }
    };
    let winner_size = successes.first().map(|w| w.candidate.parameters);
    let mut failures: Vec<Found> = outcome
        .tried
        .iter()
        .filter(|t| !t.succeeded && winner_size.is_none_or(|w| t.candidate.parameters <= w))
        .map(&found)
        .collect();
    failures.sort_by(|a, b| a.mean_final_test_loss.total_cmp(&b.mean_final_test_loss));
    failures.truncate(3);
    let figure = (!pictures.is_empty()).then(|| {
        let path = "figures/a1_x3_search_boundaries.svg".to_string();
        figures.push(FigureFile {
            path: path.clone(),
            figure: Figure::Boundary(BoundaryGrid {
                title: format!("The smallest networks below test loss {bar} on the {}", settings.dataset.title()),
                extent: EXTENT,
                row_labels: vec![String::new()],
                column_labels: successes.iter().map(|t| format!("{} parameters", t.candidate.parameters)).collect(),
                panels: vec![pictures
                    .iter()
                    .zip(&successes)
                    .map(|(p, t)| {
                        let epoch = t.reached_at[p.seed_index].unwrap_or(0);
                        Some(panel(&p.boundary, format!("seed {}, epoch {epoch}", p.seed_index + 1)))
                    })
                    .collect()],
            }),
        });
        path
    });
    Ok(SearchView {
        dataset: settings.dataset.title().to_string(),
        bar: *bar,
        epochs: *epochs,
        seeds: seeds.len(),
        needed: *needed,
        noise: settings.noise,
        train_percent: settings.train_percent,
        learning_rate: settings.learning_rate,
        activation: format!("{:?}", settings.activation).to_lowercase(),
        batch_size: settings.batch_size,
        space: format!(
            "every non-empty subset of {{{}}} × up to {} hidden layers of 1–{} neurons, at most {} parameters",
            space.features.iter().map(|f| f.title()).collect::<Vec<_>>().join(", "),
            space.max_hidden_layers,
            space.max_neurons,
            space.max_parameters
        ),
        space_size: outcome.space_size,
        candidates_tried: outcome.tried.len(),
        networks_trained: outcome.networks_trained,
        seconds: result.seconds,
        threads: result.threads,
        found: !successes.is_empty(),
        answer_network: successes.first().map_or("none within the space".to_string(), |t| t.candidate.label()),
        answer_parameters: successes.first().map_or("none".to_string(), |t| t.candidate.parameters.to_string()),
        answer_success: successes.first().map_or("none".to_string(), |t| found(t).success_text),
        winner: successes.first().map(|t| found(t)),
        runners_up: successes.iter().skip(1).map(|t| found(t)).collect(),
        closest_failures: failures,
        figure,
    })
}

fn features_text(settings: &Settings) -> String {
    settings.inputs().iter().map(|f| f.title()).collect::<Vec<_>>().join(", ")
}

fn hidden_text(hidden: &[usize]) -> String {
    if hidden.is_empty() {
        "none".to_string()
    } else {
        hidden.iter().map(usize::to_string).collect::<Vec<_>>().join(" and ")
    }
}
