//! Robustness to shifted digits: an evaluation study of rolled test images, as a table per model
//! and direction, a figure, and each model's loss of accuracy at the headline shift.

use anyhow::{anyhow, Context, Result};
use nnlab_data::Direction;
use nnlab_report::figure::{LineChart, Point, Series};
use serde::Serialize;

use crate::catalogue::{point_label, Assignment, Transform};
use crate::choice::Chosen;
use crate::tables::{Stat, Tables};

/// The headline shift of the assignments: "roll every validation image 3 pixels right".
const HEADLINE_DIRECTION: Direction = Direction::Right;
const HEADLINE_PIXELS: usize = 3;
const HEADLINE_SHIFT: Transform = Transform::Roll { direction: HEADLINE_DIRECTION, pixels: HEADLINE_PIXELS };

#[derive(Serialize)]
pub struct Shift {
    description: String,
    pixels: Vec<usize>,
    lines: Vec<ShiftLine>,
    models: Vec<ShiftModel>,
    headline: String,
    /// The model that loses least at the headline shift, and whether it has a convolutional layer.
    most_robust: String,
    conv_most_robust: bool,
    pub figure: String,
    #[serde(skip)]
    pub chart: LineChart,
}

#[derive(Serialize)]
struct ShiftLine {
    model: String,
    direction: String,
    cells: Vec<Stat>,
}

#[derive(Serialize)]
struct ShiftModel {
    id: String,
    answer_id: String,
    params: String,
    unshifted: Stat,
    shifted: Stat,
    drop_pp: f64,
}

/// The evaluation study `id` of `assignment`: every model's accuracy per direction and shift, and
/// each model's loss of accuracy at the headline shift. A choice among the study's models stands for
/// the experiment the run chose (`chosen`); answers are anchored as `<answer_prefix>.<model>`.
pub fn shift(tables: &Tables, assignment: &Assignment, id: &str, chosen: &[Chosen], answer_prefix: &str) -> Result<Shift> {
    let study =
        assignment.evaluations.iter().find(|e| e.id == id).with_context(|| format!("the catalogue has no evaluation {id}"))?;
    let models: Vec<String> = study
        .models
        .iter()
        .map(|model| match assignment.choices.iter().find(|c| &c.id == model) {
            Some(_) => chosen
                .iter()
                .find(|c| &c.choice == model)
                .map(|c| c.experiment().to_string())
                .with_context(|| format!("{id}: the run recorded no choice {model}")),
            None => Ok(model.clone()),
        })
        .collect::<Result<_>>()?;
    let stats = tables.evaluation_stats(id, "test_acc")?;
    let stat_of = |model: &str, transform: &Transform| -> Result<Stat> {
        let label = point_label(&transform.columns());
        stats
            .iter()
            .find(|(m, t, _)| m == model && *t == label)
            .map(|(_, _, s)| *s)
            .ok_or_else(|| anyhow!("{id}: no result for {model} at {label}"))
    };
    let crate::catalogue::TransformSet::Roll { directions, pixels } = &study.transform else {
        anyhow::bail!("{id} is not a study of shifted images");
    };
    let mut lines = Vec::new();
    let mut series = Vec::new();
    for model in &models {
        for &direction in directions {
            let cells: Vec<Stat> =
                pixels.iter().map(|&pixels| stat_of(model, &Transform::Roll { direction, pixels })).collect::<Result<_>>()?;
            series.push(Series {
                label: format!("{model} {}", direction.name()),
                points: pixels.iter().zip(&cells).map(|(&k, s)| Point { x: k as f64, mean: s.mean, std: s.std }).collect(),
                dashed: models.first() != Some(model),
            });
            lines.push(ShiftLine { model: model.clone(), direction: direction.name().into(), cells });
        }
    }
    let ids = models;
    let mut models = Vec::new();
    // Answers are anchored by the catalogue's name (a choice's own id, not the experiment it chose
    // this time), so that the answer ids of a page do not depend on the run's outcome.
    for (model, named) in ids.iter().zip(&study.models) {
        let experiment = assignment.experiment(model).with_context(|| format!("no experiment {model}"))?;
        let unshifted = tables.stat(model, "test_acc")?;
        let shifted = stat_of(model, &HEADLINE_SHIFT)?;
        models.push(ShiftModel {
            answer_id: format!("{answer_prefix}.{}", named.trim_start_matches(&format!("{}.", assignment.id))),
            id: model.clone(),
            params: nnlab_nn::summary::group_thousands(experiment.model.param_count()?),
            drop_pp: (unshifted.mean - shifted.mean) * 100.0,
            unshifted,
            shifted,
        });
    }
    let most_robust = models
        .iter()
        .min_by(|a, b| a.drop_pp.total_cmp(&b.drop_pp))
        .map(|m| m.id.clone())
        .ok_or_else(|| anyhow!("{id} evaluates no model"))?;
    let conv_most_robust = assignment
        .experiment(&most_robust)
        .is_some_and(|e| e.model.layers.iter().any(|l| matches!(l, nnlab_nn::LayerSpec::Conv2d { .. })));
    let (direction, k) = (HEADLINE_DIRECTION, HEADLINE_PIXELS);
    Ok(Shift {
        conv_most_robust,
        description: study.description.clone(),
        pixels: pixels.clone(),
        lines,
        models,
        headline: format!("{k} px {}", direction.name()),
        most_robust,
        figure: format!("figures/{id}.svg"),
        chart: LineChart {
            title: format!("{id} — test accuracy against the shift"),
            x_label: "shift (pixels)".into(),
            y_label: "test accuracy".into(),
            log_x: false,
            series,
        },
    })
}
