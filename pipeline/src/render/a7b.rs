//! Report a7b: a deeper dense network, the learning-rate sweep, the width × learning-rate grid and
//! its follow-up, Gaussian-noise and L2 regularisation, a CNN against its target, and how both
//! kinds of model cope with shifted digits. The context is typed; every setting it states comes
//! from the catalogue, every number from the result tables.

use anyhow::{anyhow, Context, Result};
use nnlab_report::figure::{LineChart, Point, Series};
use nnlab_report::HeatMap;
use serde::Serialize;

use super::context::{compare, replicate_agreement, view_of, Agreement, Comparison, Figure, FigureFile, ModelView};
use super::shift::{shift, Shift};
use super::{BuiltPage, RenderInput};
use crate::catalogue::{point_label, value_text, AxisValue, Experiment};
use crate::follow_up::{load_choices, Choice};
use crate::tables::{Stat, Tables};

#[derive(Serialize)]
struct Page {
    summary: String,
    q1: ModelView,
    q2a: ModelView,
    q2b: Sweep,
    q2c: Grid,
    q3a: Sweep,
    q3b: Sweep,
    q4a: TargetView,
    q4b: Shift,
}

pub fn page(input: &RenderInput<'_>) -> Result<BuiltPage> {
    let assignment = input.catalogue.assignment("a7b").context("the catalogue has no assignment a7b")?;
    let experiment = |id: &str| assignment.experiment(id).with_context(|| format!("the catalogue has no experiment {id}"));
    let tables = input.tables;
    let mut figures = Vec::new();
    let mut view = |id: &str| view_of(assignment, tables, id, &mut figures);
    let q1 = view("a7b.dense125")?;
    let q2a = view("a7b.dense100")?;
    let q4a_model = view("a7b.cnn")?;
    let grid_best = view("a7b.grid_best")?;
    let baseline = experiment("a7b.dense100")?;

    let q2b = sweep(tables, experiment("a7b.lr_sweep")?, None)?;
    let q3a = sweep(tables, experiment("a7b.noise")?, Some(baseline))?;
    let q3b = sweep(tables, experiment("a7b.l2")?, Some(baseline))?;
    let choices = load_choices(input.run_dir)?;
    let choice =
        choices.iter().find(|c| c.experiment == "a7b.grid_best").context("the run recorded no choice for a7b.grid_best")?;
    let q2c = grid(tables, experiment("a7b.grid")?, choice, grid_best)?;
    let q4a = target_view(tables, experiment("a7b.cnn")?, q4a_model)?;
    let q4b = shift(tables, assignment, "a7b.shift", &[], "a7b.q4b")?;

    for (name, chart) in [("a7b.lr_sweep", &q2b.chart), ("a7b.noise", &q3a.chart), ("a7b.l2", &q3b.chart)] {
        figures.push(FigureFile { path: format!("figures/{name}.svg"), figure: Figure::Line(chart.clone()) });
    }
    figures.push(FigureFile { path: q2c.lines_figure.clone(), figure: Figure::Line(q2c.lines.clone()) });
    figures.push(FigureFile { path: q2c.heat_figure.clone(), figure: Figure::Heat(q2c.heat.clone()) });
    figures.push(FigureFile { path: q4b.figure.clone(), figure: Figure::Line(q4b.chart.clone()) });

    let summary = format!(
        "Dense networks, sweeps and a CNN on MNIST: best learning rate {} ({:.2}%), best grid cell {}; CNN validation accuracy {:.2}%.",
        q2b.best.value,
        q2b.best.test_acc.mean * 100.0,
        q2c.choice.label,
        q4a.last.mean * 100.0
    );
    let page = Page { summary, q1, q2a, q2b, q2c, q3a, q3b, q4a, q4b };
    Ok(BuiltPage { title: format!("a7b — {}", assignment.title), context: serde_json::to_value(page)?, figures })
}

/// One measured point of a one-axis sweep.
#[derive(Debug, Clone, Serialize)]
struct Row {
    label: String,
    /// The axis value as the catalogue writes it.
    value: String,
    x: f64,
    test_acc: Stat,
    test_loss: Stat,
    /// Against the baseline model, where the sweep has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    vs_baseline: Option<Comparison>,
    /// Significantly (Welch, 5%) above the baseline.
    helps: bool,
    /// Significantly below the baseline.
    hurts: bool,
}

#[derive(Serialize)]
struct Sweep {
    axis: String,
    epochs: usize,
    rows: Vec<Row>,
    best: Row,
    /// How many replicates, on their own, pick the best point too.
    agreement: Agreement,
    runner_up: Option<Row>,
    facts: SweepFacts,
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline: Option<Baseline>,
    any_helps: bool,
    all_hurt: bool,
    figure: String,
    #[serde(skip)]
    chart: LineChart,
}

#[derive(Serialize)]
struct Baseline {
    id: String,
    test_acc: Stat,
    test_loss: Stat,
}

/// What the best point of a sweep says, as measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct SweepFacts {
    /// The best mean lies more than the two points' std apart from the runner-up's.
    clear_winner: bool,
    /// The best point is the first or the last value of the axis: the optimum may lie outside.
    at_edge: bool,
}

fn sweep_facts(rows: &[Row], best: usize, runner_up: Option<usize>) -> SweepFacts {
    let clear_winner = match runner_up {
        Some(r) => {
            let spread = rows[best].test_acc.std.unwrap_or(0.0) + rows[r].test_acc.std.unwrap_or(0.0);
            rows[best].test_acc.mean - rows[r].test_acc.mean > spread
        }
        None => true,
    };
    SweepFacts { clear_winner, at_edge: rows.len() > 2 && (best == 0 || best + 1 == rows.len()) }
}

/// Indices of the rows, best mean test accuracy first, sweep order among equals.
fn ranked(rows: &[Row]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| rows[b].test_acc.mean.total_cmp(&rows[a].test_acc.mean));
    order
}

/// Every point of the experiment's sweep that the run measured, in sweep order.
fn measured_points(tables: &Tables, experiment: &Experiment) -> Result<Vec<(Vec<AxisValue>, Stat)>> {
    let stats = tables.point_stats(&experiment.id, "test_acc")?;
    Ok(experiment
        .points(None)
        .into_iter()
        .filter_map(|point| {
            let label = point_label(&point);
            stats.iter().find(|(l, _)| *l == label).map(|(_, stat)| (point, *stat))
        })
        .collect())
}

fn sweep(tables: &Tables, experiment: &Experiment, baseline: Option<&Experiment>) -> Result<Sweep> {
    let axis = experiment.sweep.first().ok_or_else(|| anyhow!("{} has no sweep", experiment.id))?;
    let baseline_values = baseline.map(|b| tables.replicate_values(&b.id, "test_acc")).transpose()?;
    let losses = tables.point_stats(&experiment.id, "test_loss")?;
    let mut rows = Vec::new();
    for (point, test_acc) in measured_points(tables, experiment)? {
        let label = point_label(&point);
        let value = &point[0].value;
        let test_loss = losses.iter().find(|(l, _)| *l == label).map(|(_, s)| *s);
        let vs_baseline = match (&baseline_values, baseline) {
            (Some(values), Some(b)) => {
                let here = tables.point_replicate_values(&experiment.id, &label, "test_acc")?;
                Some(compare(&here, values, test_acc.mean - tables.stat(&b.id, "test_acc")?.mean))
            }
            _ => None,
        };
        let significant = |v: &Option<Comparison>, up: bool| v.as_ref().is_some_and(|c| c.significant && c.a_higher == up);
        rows.push(Row {
            helps: significant(&vs_baseline, true),
            hurts: significant(&vs_baseline, false),
            label,
            value: value_text(value),
            x: value.as_f64().ok_or_else(|| anyhow!("{}: axis {} is not numeric", experiment.id, axis.axis))?,
            test_acc,
            test_loss: test_loss.ok_or_else(|| anyhow!("{}: no test loss", experiment.id))?,
            vs_baseline,
        });
    }
    anyhow::ensure!(!rows.is_empty(), "{}: no sweep point was measured", experiment.id);
    let order = ranked(&rows);
    let facts = sweep_facts(&rows, order[0], order.get(1).copied());
    let chart = LineChart {
        title: format!("{} — test accuracy against {}", experiment.id, axis.axis),
        x_label: axis.axis.clone(),
        y_label: "test accuracy".into(),
        log_x: rows.iter().all(|r| r.x > 0.0),
        series: vec![Series {
            label: "test accuracy".into(),
            points: rows.iter().map(|r| Point { x: r.x, mean: r.test_acc.mean, std: r.test_acc.std }).collect(),
            dashed: false,
        }],
    };
    let epochs = tables.point_curve(&experiment.id, &rows[0].label, "acc")?.len();
    let replicates: Vec<Vec<f64>> =
        rows.iter().map(|r| tables.point_replicate_values(&experiment.id, &r.label, "test_acc")).collect::<Result<_>>()?;
    Ok(Sweep {
        axis: axis.axis.clone(),
        epochs,
        agreement: replicate_agreement(&replicates, order[0]),
        best: rows[order[0]].clone(),
        runner_up: order.get(1).map(|&i| rows[i].clone()),
        facts,
        baseline: baseline
            .map(|b| -> Result<Baseline> {
                Ok(Baseline {
                    id: b.id.clone(),
                    test_acc: tables.stat(&b.id, "test_acc")?,
                    test_loss: tables.stat(&b.id, "test_loss")?,
                })
            })
            .transpose()?,
        any_helps: rows.iter().any(|r| r.helps),
        all_hurt: rows.iter().all(|r| r.hurts),
        rows,
        figure: format!("figures/{}.svg", experiment.id),
        chart,
    })
}

#[derive(Serialize)]
struct Grid {
    epochs: usize,
    /// The axes, the first as the x axis of the line figure and the heat map's columns.
    x_axis: String,
    line_axis: String,
    x_values: Vec<String>,
    #[serde(skip)]
    lines: LineChart,
    lines_figure: String,
    #[serde(skip)]
    heat: HeatMap,
    heat_figure: String,
    table: Vec<GridRow>,
    choice: ChoiceView,
    best: ModelView,
    /// The chosen cell's 30-epoch model against its own 10-epoch mean.
    longer_training: Comparison,
}

#[derive(Serialize)]
struct GridRow {
    line: String,
    cells: Vec<Option<Stat>>,
}

#[derive(Serialize)]
struct ChoiceView {
    metric: String,
    label: String,
    stat: Stat,
    /// How many replicates, each on its own, choose the same cell.
    agreement: Agreement,
    runner_up_label: Option<String>,
    runner_up: Option<Stat>,
    clear: bool,
}

fn grid(tables: &Tables, experiment: &Experiment, choice: &Choice, best: ModelView) -> Result<Grid> {
    let [x_axis, line_axis] = &experiment.sweep[..] else {
        anyhow::bail!("{} must sweep exactly two axes", experiment.id);
    };
    let measured = measured_points(tables, experiment)?;
    let distinct = |axis: &str| -> Vec<serde_json::Value> {
        let mut values: Vec<serde_json::Value> = Vec::new();
        for (point, _) in &measured {
            let v = point.iter().find(|v| v.axis == axis).map(|v| v.value.clone()).unwrap_or_default();
            if !values.contains(&v) {
                values.push(v);
            }
        }
        values
    };
    let (xs, lines) = (distinct(&x_axis.axis), distinct(&line_axis.axis));
    let at = |x: &serde_json::Value, line: &serde_json::Value| -> Option<Stat> {
        measured
            .iter()
            .find(|(p, _)| {
                p.iter().any(|v| v.axis == x_axis.axis && v.value == *x)
                    && p.iter().any(|v| v.axis == line_axis.axis && v.value == *line)
            })
            .map(|(_, s)| *s)
    };
    let table: Vec<GridRow> =
        lines.iter().map(|line| GridRow { line: value_text(line), cells: xs.iter().map(|x| at(x, line)).collect() }).collect();
    let series = lines
        .iter()
        .map(|line| Series {
            label: format!("{} = {}", line_axis.axis, value_text(line)),
            points: xs
                .iter()
                .filter_map(|x| Some(Point { x: x.as_f64()?, mean: at(x, line)?.mean, std: at(x, line)?.std }))
                .collect(),
            dashed: false,
        })
        .collect();
    let lines_chart = LineChart {
        title: format!("{} — test accuracy against {}, one line per {}", experiment.id, x_axis.axis, line_axis.axis),
        x_label: x_axis.axis.clone(),
        y_label: "test accuracy".into(),
        log_x: xs.iter().all(|x| x.as_f64().is_some_and(|v| v > 0.0)),
        series,
    };
    let heat = HeatMap {
        title: format!("{} — mean test accuracy (%)", experiment.id),
        x_label: x_axis.axis.clone(),
        y_label: line_axis.axis.clone(),
        columns: xs.iter().map(value_text).collect(),
        rows: lines.iter().map(value_text).collect(),
        values: table.iter().map(|r| r.cells.iter().map(|c| c.map(|s| s.mean)).collect()).collect(),
        percent: true,
    };
    let chosen_values = tables.point_replicate_values(&experiment.id, &choice.chosen.label, &choice.metric)?;
    let longer = tables.replicate_values(&best.id, "test_acc")?;
    let longer_training = compare(&longer, &chosen_values, best.test_acc.mean - choice.chosen.stat.mean);
    let epochs = tables.point_curve(&experiment.id, &choice.chosen.label, "acc")?.len();
    Ok(Grid {
        epochs,
        x_axis: x_axis.axis.clone(),
        line_axis: line_axis.axis.clone(),
        x_values: xs.iter().map(value_text).collect(),
        lines: lines_chart,
        lines_figure: format!("figures/{}-lines.svg", experiment.id),
        heat,
        heat_figure: format!("figures/{}-heat.svg", experiment.id),
        table,
        choice: choice_view(choice, cell_agreement(tables, &experiment.id, choice)?),
        best,
        longer_training,
    })
}

/// The grid's cells, each replicate voting on its own values of the choice's metric.
fn cell_agreement(tables: &Tables, experiment: &str, choice: &Choice) -> Result<Agreement> {
    let sign = match choice.goal {
        crate::catalogue::Goal::Maximise => 1.0,
        crate::catalogue::Goal::Minimise => -1.0,
    };
    let labels: Vec<String> = tables.point_stats(experiment, &choice.metric)?.into_iter().map(|(label, _)| label).collect();
    let replicates: Vec<Vec<f64>> = labels
        .iter()
        .map(|label| Ok(tables.point_replicate_values(experiment, label, &choice.metric)?.iter().map(|v| sign * v).collect()))
        .collect::<Result<_>>()?;
    let chosen = labels.iter().position(|l| *l == choice.chosen.label).context("the chosen cell is not in the tables")?;
    Ok(replicate_agreement(&replicates, chosen))
}

fn choice_view(choice: &Choice, agreement: Agreement) -> ChoiceView {
    let clear = choice.runner_up.as_ref().is_none_or(|r| {
        choice.chosen.stat.mean - r.stat.mean > choice.chosen.stat.std.unwrap_or(0.0) + r.stat.std.unwrap_or(0.0)
    });
    ChoiceView {
        metric: choice.metric.clone(),
        label: choice.chosen.label.clone(),
        stat: choice.chosen.stat,
        runner_up_label: choice.runner_up.as_ref().map(|r| r.label.clone()),
        runner_up: choice.runner_up.as_ref().map(|r| r.stat),
        clear,
        agreement,
    }
}

/// A model measured against the level its experiment's `target` sets.
#[derive(Serialize)]
struct TargetView {
    model: ModelView,
    metric: String,
    target: f64,
    /// The mean curve's best value and its epoch, and its last value.
    best: Stat,
    best_epoch: usize,
    last: Stat,
    /// The first epoch whose mean reaches the target.
    first_epoch_reaching: Option<usize>,
    reaches: bool,
    /// How many replicates reach the target in some epoch.
    replicates_reaching: usize,
    replicates: usize,
}

fn target_view(tables: &Tables, experiment: &Experiment, model: ModelView) -> Result<TargetView> {
    let target = experiment.target.as_ref().with_context(|| format!("{} declares no target", experiment.id))?;
    let curve = tables.curve(&experiment.id, &target.metric)?;
    anyhow::ensure!(!curve.is_empty(), "{}: no {} history", experiment.id, target.metric);
    let stat =
        |p: &crate::tables::CurvePoint| Stat { mean: p.mean, std: p.std, n: model.test_acc.n, min: f64::NAN, max: f64::NAN };
    let best = curve.iter().fold(&curve[0], |b, p| if p.mean > b.mean { p } else { b });
    let column = crate::tables::EPOCH_METRICS.iter().position(|m| *m == target.metric).expect("checked by the catalogue") + 1;
    let mut replicates_reaching = 0;
    let replicates = tables.replicates(&experiment.id)?;
    for &replicate in &replicates {
        let history = tables.replicate_history(&experiment.id, replicate)?;
        if history.iter().any(|row| row[column].is_some_and(|v| v >= target.at_least)) {
            replicates_reaching += 1;
        }
    }
    let first_epoch_reaching = curve.iter().find(|p| p.mean >= target.at_least).map(|p| p.epoch);
    Ok(TargetView {
        metric: target.metric.clone(),
        target: target.at_least,
        best: stat(best),
        best_epoch: best.epoch,
        last: stat(curve.last().expect("non-empty")),
        reaches: first_epoch_reaching.is_some(),
        first_epoch_reaching,
        replicates_reaching,
        replicates: replicates.len(),
        model,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(value: f64, mean: f64, std: f64) -> Row {
        Row {
            label: format!("lr={value}"),
            value: value.to_string(),
            x: value,
            test_acc: Stat { mean, std: Some(std), n: 3, min: mean - std, max: mean + std },
            test_loss: Stat { mean: 1.0 - mean, std: Some(std), n: 3, min: 0.0, max: 1.0 },
            vs_baseline: None,
            helps: false,
            hurts: false,
        }
    }

    #[test]
    fn the_best_point_is_ranked_first_and_its_facts_hold_on_both_sides() {
        let rows = vec![row(0.01, 0.90, 0.01), row(0.1, 0.97, 0.002), row(1.0, 0.95, 0.004)];
        let order = ranked(&rows);
        assert_eq!(order, vec![1, 2, 0]);
        // 0.97 − 0.95 = 0.02 > 0.006: a clear winner, inside the range.
        assert_eq!(sweep_facts(&rows, order[0], Some(order[1])), SweepFacts { clear_winner: true, at_edge: false });
        // Within the spread, and at the edge of the range.
        let rows = vec![row(0.01, 0.90, 0.01), row(0.1, 0.955, 0.004), row(1.0, 0.96, 0.004)];
        let order = ranked(&rows);
        assert_eq!(order[0], 2);
        assert_eq!(sweep_facts(&rows, order[0], Some(order[1])), SweepFacts { clear_winner: false, at_edge: true });
        // Ties keep sweep order.
        let rows = vec![row(0.01, 0.9, 0.0), row(0.1, 0.9, 0.0)];
        assert_eq!(ranked(&rows), vec![0, 1]);
    }
}
