//! Report tp: the three baseline models (q1–q3) and the manifold-untangling study (m1–m3).

use std::path::Path;

use anyhow::{bail, Context, Result};
use nnlab_report::figure::{LineChart, Point, Series};
use nnlab_report::ScatterChart;
use serde_json::{json, Value};

use super::context::{comparison, model_view, stat_json, Figure, FigureFile};
use super::{BuiltPage, RenderInput};
use crate::analysis::{load_result, ProjectionJob, ProjectionResult, RAW};
use crate::catalogue::{AnalysisConfig, Method};
use crate::separation::SeparationTables;

/// The metrics compared across projections and representations, with how the prose names them and
/// whether a higher value means better separated classes.
const METRICS: [(&str, &str, bool); 5] = [
    ("nh", "neighbourhood hit", true),
    ("hull_mean_iou", "mean hull IoU", false),
    ("hull_max_iou", "max hull IoU", false),
    ("ellipse_mean_bc", "mean ellipse BC", false),
    ("ellipse_max_bc", "max ellipse BC", false),
];

pub fn page(input: &RenderInput<'_>) -> Result<BuiltPage> {
    let assignment = input.catalogue.assignment("tp").context("the catalogue has no assignment tp")?;
    let experiment = |id: &str| assignment.experiment(id).with_context(|| format!("the catalogue has no experiment {id}"));
    let config = assignment.analysis.as_ref().context("assignment tp has no [analysis] section")?;
    let tables = input.tables;
    let (logreg, mlp, cnn) = (experiment("tp.logreg")?, experiment("tp.mlp")?, experiment("tp.cnn")?);
    let logreg_acc = tables.stat(&logreg.id, "test_acc")?;
    let mlp_acc = tables.stat(&mlp.id, "test_acc")?;
    let cnn_acc = tables.stat(&cnn.id, "test_acc")?;
    let params = |e: &crate::catalogue::Experiment| -> Result<f64> { Ok(e.model.param_count()? as f64) };

    let mlp_replicates: Vec<Value> = {
        let acc = tables.replicate_values(&mlp.id, "test_acc")?;
        let loss = tables.replicate_values(&mlp.id, "test_loss")?;
        acc.iter()
            .zip(&loss)
            .enumerate()
            .map(|(i, (a, l))| json!({ "replicate": i + 1, "test_acc": a, "test_loss": l }))
            .collect()
    };
    let extra_params = params(mlp)? - params(logreg)?;
    let error_drop_pp = (mlp_acc.mean - logreg_acc.mean) * 100.0;
    // Every replicate trains on the same slice, so the first one's count stands for all.
    let cnn_train_samples =
        *tables.replicate_values(&cnn.id, "train_samples")?.first().context("tp.cnn has no finished replicate")? as usize;
    let cnn_steps = cnn_train_samples.div_ceil(cnn.train.batch_size) * tables.curve(&cnn.id, "acc")?.len();

    let separation = input.separation.context("this run holds no separation tables: its analysis stage did not run")?;
    let projections = projections_of(input.run_dir)?;
    let mut figures: Vec<FigureFile> = Vec::new();
    let representations = [
        (RAW, "raw pixels".to_string()),
        (mlp.id.as_str(), format!("{} hidden layer", mlp.id)),
        (cnn.id.as_str(), format!("{} hidden layer", cnn.id)),
    ];

    let mut rows = Vec::new();
    let mut scatter = Vec::new();
    for (representation, title) in &representations {
        for &method in &config.methods {
            rows.push(metrics_row(separation, representation, title, method)?);
        }
        let mut by_method = Vec::new();
        for &m in &config.methods {
            let result = first_replicate(input.run_dir, &projections, representation, m)?;
            by_method.push(json!({ "method": m.title(), "files": scatter_figures(&result, title, &mut figures)? }));
        }
        scatter.push(json!({ "title": title, "figures": by_method }));
    }
    let cnn_nh = separation.stat(&cnn.id, Method::Tsne.name(), "nh")?;
    let mlp_nh = separation.stat(&mlp.id, Method::Tsne.name(), "nh")?;
    let raw_rows: Vec<Value> = rows.iter().filter(|r| r["representation"] == RAW).cloned().collect();
    let tsne_rows: Vec<Value> = rows.iter().filter(|r| r["method"] == Method::Tsne.title()).cloned().collect();

    let model = |experiment: &crate::catalogue::Experiment, figures: &mut Vec<FigureFile>| -> Result<Value> {
        let (view, files) = model_view(tables, experiment)?;
        figures.extend(files);
        Ok(serde_json::to_value(view)?)
    };
    let context = json!({
        "summary": format!(
            "MNIST baselines: logistic regression {:.2}%, MLP {:.2}% (n = {}), CNN {:.2}% test accuracy; class separation of raw pixels vs learned representations under t-SNE and PCA.",
            logreg_acc.mean * 100.0, mlp_acc.mean * 100.0, mlp_acc.n, cnn_acc.mean * 100.0
        ),
        "logreg": model(logreg, &mut figures)?,
        "mlp": model(mlp, &mut figures)?,
        "cnn": model(cnn, &mut figures)?,
        "q2": {
            "replicates": mlp_replicates,
            "vs_logreg": comparison(&tables.replicate_values(&mlp.id, "test_acc")?, &tables.replicate_values(&logreg.id, "test_acc")?, mlp_acc.mean - logreg_acc.mean),
            "param_ratio": params(mlp)? / params(logreg)?,
            "extra_params": extra_params,
            "gain_pp_per_10k_params": error_drop_pp / extra_params * 1e4,
            "logreg_error_pp": (1.0 - logreg_acc.mean) * 100.0,
            "mlp_error_pp": (1.0 - mlp_acc.mean) * 100.0,
            "error_ratio": (1.0 - mlp_acc.mean) / (1.0 - logreg_acc.mean),
            "logreg_acc_per_kparam": logreg_acc.mean * 100.0 / (params(logreg)? / 1e3),
            "mlp_acc_per_kparam": mlp_acc.mean * 100.0 / (params(mlp)? / 1e3),
            "logreg_more_efficient": logreg_acc.mean / params(logreg)? > mlp_acc.mean / params(mlp)?,
        },
        "training": shared_training(&[logreg, mlp, cnn]),
        "q3": {
            "architecture": architecture_json(cnn)?,
            // Under twice chance level (ten classes) the CNN has not left its initial plateau.
            "at_chance": cnn_acc.mean < 0.2,
            "train_samples": nnlab_nn::summary::group_thousands(cnn_train_samples),
            "steps": nnlab_nn::summary::group_thousands(cnn_steps),
            "vs_mlp": comparison(&tables.replicate_values(&cnn.id, "test_acc")?, &tables.replicate_values(&mlp.id, "test_acc")?, cnn_acc.mean - mlp_acc.mean),
        },
        "analysis": analysis_json(config, &projections, separation)?,
        "m1": {
            "seconds": stat_json(&separation.stat(RAW, Method::Tsne.name(), "projection_seconds")?),
            "threads": input.manifest.hardware.threads_used,
            "figures": scatter[0]["figures"].clone(),
        },
        "m2": {
            "rows": raw_rows,
            "per_class": per_class(separation, RAW, &config.methods)?,
            "nh_curve": nh_curve_figure(separation, &[(RAW, "raw pixels".to_string())], &config.methods, "tp-m2-nh-curve.svg", &mut figures)?,
            "tsne_vs_pca": ordering(separation, &[(RAW, Method::Tsne), (RAW, Method::Pca)])?,
        },
        "m3": {
            "rows": rows,
            "tsne_rows": tsne_rows,
            "scatter": scatter,
            "nh_curve": nh_curve_figure(separation, &representations, &[Method::Tsne], "tp-m3-nh-curve.svg", &mut figures)?,
            "tsne_order": ordering(separation, &representations.iter().map(|(r, _)| (*r, Method::Tsne)).collect::<Vec<_>>())?,
            "pca_order": ordering(separation, &representations.iter().map(|(r, _)| (*r, Method::Pca)).collect::<Vec<_>>())?,
            "titles": representations.iter().map(|(r, t)| json!({ "id": r, "title": t })).collect::<Vec<_>>(),
            "cnn_tsne_nh": stat_json(&cnn_nh),
            "mlp_tsne_nh": stat_json(&mlp_nh),
            "accuracy_agrees": (cnn_nh.mean > mlp_nh.mean) == (cnn_acc.mean > mlp_acc.mean),
        },
    });
    Ok(BuiltPage { title: format!("tp — {}", assignment.title), context, figures })
}

fn projections_of(run_dir: &Path) -> Result<Vec<ProjectionJob>> {
    let path = run_dir.join("projections.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a valid projection plan", path.display()))
}

/// The projection of the first replicate (the one the figures show).
fn first_replicate(
    run_dir: &Path,
    projections: &[ProjectionJob],
    representation: &str,
    method: Method,
) -> Result<ProjectionResult> {
    let job = projections
        .iter()
        .filter(|p| p.spec.representation == representation && p.spec.method == method)
        .min_by_key(|p| p.spec.replicate)
        .with_context(|| format!("no {} projection of {representation} was planned", method.title()))?;
    load_result(run_dir, job)
}

/// The run's settings of the analysis, for the report's method section.
fn analysis_json(config: &AnalysisConfig, projections: &[ProjectionJob], separation: &SeparationTables) -> Result<Value> {
    let Some(tsne) = projections.iter().find_map(|p| p.spec.tsne.clone()) else { bail!("no t-SNE projection was planned") };
    let count = |representation: &str, method: Method| {
        projections.iter().filter(|p| p.spec.representation == representation && p.spec.method == method).count()
    };
    let points = separation.stat(RAW, Method::Pca.name(), "nh")?;
    Ok(json!({
        "k": config.k,
        "k_max": config.k_max,
        "perplexity": tsne.perplexity,
        "theta": tsne.theta,
        "max_iter": tsne.max_iter,
        "pca_dims": tsne.pca_dims,
        "points": projections.first().and_then(|p| p.spec.points),
        "raw_tsne_seeds": count(RAW, Method::Tsne),
        "mlp_replicates": count("tp.mlp", Method::Tsne),
        "cnn_replicates": count("tp.cnn", Method::Tsne),
        "pca_n": points.n,
    }))
}

fn metrics_row(separation: &SeparationTables, representation: &str, title: &str, method: Method) -> Result<Value> {
    let mut row = json!({ "representation": representation, "title": title, "method": method.title() });
    for (metric, _, _) in METRICS {
        row[metric] = stat_json(&separation.stat(representation, method.name(), metric)?);
    }
    Ok(row)
}

/// Neighbourhood hit per class under each method.
fn per_class(separation: &SeparationTables, representation: &str, methods: &[Method]) -> Result<Vec<Value>> {
    (0..10u8)
        .map(|class| {
            let mut row = json!({ "class": class });
            for &method in methods {
                row[method.name()] = stat_json(&separation.stat(representation, method.name(), &format!("nh_class_{class}"))?);
            }
            Ok(row)
        })
        .collect()
}

/// Candidates ranked by mean neighbourhood hit (best first), with whether the hull and ellipse
/// overlaps rank them the same way, so the prose can say how robust the ordering is.
fn ordering(separation: &SeparationTables, candidates: &[(&str, Method)]) -> Result<Value> {
    let mean = |(r, m): &(&str, Method), metric: &str| separation.stat(r, m.name(), metric).map(|s| s.mean);
    let rank_by = |metric: &str, higher_better: bool| -> Result<Vec<usize>> {
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        let values: Vec<f64> = candidates.iter().map(|c| mean(c, metric)).collect::<Result<_>>()?;
        order.sort_by(|&a, &b| {
            let cmp = values[a].total_cmp(&values[b]);
            if higher_better {
                cmp.reverse()
            } else {
                cmp
            }
        });
        Ok(order)
    };
    let by_nh = rank_by("nh", true)?;
    let name = |i: usize| format!("{} / {}", candidates[i].0, candidates[i].1.title());
    let agrees = |metric: &str| -> Result<bool> { Ok(rank_by(metric, false)? == by_nh) };
    let best = by_nh[0];
    let runner_up = by_nh.get(1).copied();
    // Are best and runner-up separated by more than their replicate spread?
    let nh = |i: usize| separation.stat(candidates[i].0, candidates[i].1.name(), "nh");
    let clear_margin = match runner_up {
        Some(second) => {
            let (a, b) = (nh(best)?, nh(second)?);
            a.mean - b.mean > a.std.unwrap_or(0.0) + b.std.unwrap_or(0.0)
        }
        None => true,
    };
    let order = by_nh
        .iter()
        .map(|&i| {
            Ok(json!({
                "representation": candidates[i].0, "method": candidates[i].1.title(), "name": name(i),
                "nh": stat_json(&nh(i)?),
            }))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(json!({
        "order": order,
        "best": name(best),
        "best_representation": candidates[best].0,
        "worst": name(*by_nh.last().expect("at least one candidate")),
        "hull_agrees": agrees("hull_mean_iou")?,
        "ellipse_agrees": agrees("ellipse_mean_bc")?,
        "clear_margin": clear_margin,
    }))
}

fn class_names() -> Vec<String> {
    (0..10).map(|c| c.to_string()).collect()
}

/// Plain, hull and ellipse scatter plots of one projection; returns their paths relative to the report.
fn scatter_figures(result: &ProjectionResult, title: &str, figures: &mut Vec<FigureFile>) -> Result<Value> {
    let stem = format!("tp-{}-{}", result.spec.representation.replace('.', "_"), result.spec.method.name());
    let base = ScatterChart {
        title: format!("{title} — {} (replicate {})", result.spec.method.title(), result.spec.replicate),
        x_label: format!("{} 1", result.spec.method.title()),
        y_label: format!("{} 2", result.spec.method.title()),
        class_names: class_names(),
        points: result.points.clone(),
        labels: result.labels.clone(),
        hulls: None,
        ellipses: None,
    };
    let hulls = nnlab_analysis::hull_overlap(&result.points, &result.labels)?;
    let ellipses = nnlab_analysis::ellipse_overlap(&result.points, &result.labels)?;
    let outlines_by_class = |outlines: Vec<(u8, Vec<[f64; 2]>)>| {
        let mut by_class = vec![Vec::new(); 10];
        for (class, outline) in outlines {
            by_class[class as usize] = outline;
        }
        by_class
    };
    let with_hulls = ScatterChart {
        title: format!("{} — convex hulls", base.title),
        hulls: Some(outlines_by_class(hulls.hulls.iter().map(|h| (h.class, h.vertices.clone())).collect())),
        ..base.clone()
    };
    let with_ellipses = ScatterChart {
        title: format!("{} — 2σ ellipses", base.title),
        ellipses: Some(outlines_by_class(ellipses.ellipses.iter().map(|e| (e.class, e.outline(72))).collect())),
        ..base.clone()
    };
    let mut files = serde_json::Map::new();
    for (key, chart) in [("plain", base), ("hulls", with_hulls), ("ellipses", with_ellipses)] {
        let path = format!("figures/{stem}-{key}.svg");
        files.insert(key.into(), json!(path));
        figures.push(FigureFile { path, figure: Figure::Scatter(chart) });
    }
    Ok(Value::Object(files))
}

/// Mean ± std neighbourhood hit over k, one series per representation and method.
fn nh_curve_figure(
    separation: &SeparationTables,
    representations: &[(&str, String)],
    methods: &[Method],
    file: &str,
    figures: &mut Vec<FigureFile>,
) -> Result<String> {
    let mut series = Vec::new();
    for (representation, title) in representations {
        for &method in methods {
            let points = separation
                .curve(representation, method.name())?
                .iter()
                .map(|p| Point { x: p.k as f64, mean: p.mean, std: p.std })
                .collect();
            series.push(Series { label: format!("{title}, {}", method.title()), points, dashed: method == Method::Pca });
        }
    }
    let chart = LineChart {
        title: "Neighbourhood hit over k".into(),
        x_label: "k (neighbours)".into(),
        y_label: "neighbourhood hit".into(),
        log_x: false,
        series,
    };
    let path = format!("figures/{file}");
    figures.push(FigureFile { path: path.clone(), figure: Figure::Line(chart) });
    Ok(path)
}

/// The training settings the models share, stated once at the top of the page when they are all equal.
fn shared_training(models: &[&crate::catalogue::Experiment]) -> Value {
    let first = models[0];
    let shared = models.iter().all(|m| {
        m.train.optimizer == first.train.optimizer
            && m.train.batch_size == first.train.batch_size
            && m.validation == first.validation
    });
    json!({
        "shared": shared,
        "optimizer": first.train.optimizer.describe(),
        "batch_size": first.train.batch_size,
        "loss": first.train.objective().describe(),
    })
}

/// The CNN's shapes and parameter counts, read from its layer plan, for the sentences that explain them.
fn architecture_json(cnn: &crate::catalogue::Experiment) -> Result<Value> {
    let plan = cnn.model.plan()?;
    let dims = |shape: &[usize]| shape.iter().map(usize::to_string).collect::<Vec<_>>().join("×");
    let group = nnlab_nn::summary::group_thousands;
    let mut convs = Vec::new();
    let mut pooled = vec![plan[0].input_shape[0].to_string()];
    for (layer, planned) in cnn.model.layers.iter().zip(&plan) {
        match layer {
            nnlab_nn::LayerSpec::Conv2d { filters, kernel, padding, .. } => convs.push(json!({
                "kernel": format!("{}×{}", kernel[0], kernel[1]),
                "padding": format!("{padding:?}").to_lowercase(),
                "input": dims(&planned.input_shape[..2]),
                "filters": filters,
                "params": format!("{} × {} × {} × {filters} + {filters}", kernel[0], kernel[1], planned.input_shape[2]),
                "params_raw": planned.params,
            })),
            nnlab_nn::LayerSpec::MaxPool2d { .. } => pooled.push(planned.output_shape[0].to_string()),
            _ => {}
        }
    }
    let flatten = plan.iter().position(|l| l.kind == "Flatten").context("tp.cnn has no Flatten layer")?;
    let flat_len = plan[flatten].output_shape[0];
    let dense = &plan[flatten + 1..].iter().find(|l| l.kind == "Dense").context("tp.cnn has no dense layer after Flatten")?;
    let units = dense.output_shape[0];
    let biggest_conv = convs.iter().max_by_key(|c| c["params_raw"].as_u64()).cloned().unwrap_or(Value::Null);
    Ok(json!({
        "convs": convs,
        "pooled_sizes": pooled.join(" → "),
        "flatten_from": dims(&plan[flatten].input_shape),
        "flatten_len": group(flat_len),
        "dense_units": units,
        "dense_params": format!("{} × {units} + {units}", group(flat_len)),
        "biggest_conv": biggest_conv,
    }))
}
