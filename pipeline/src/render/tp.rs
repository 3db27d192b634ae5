//! Report tp: the three baseline models (q1–q3) and the manifold-untangling study (m1–m3).

use std::path::Path;

use anyhow::{bail, Context, Result};
use nnlab_report::figure::{LineChart, Point, Series};
use nnlab_report::ScatterChart;
use std::collections::BTreeMap;

use serde::Serialize;

use super::context::{compare, model_view, replicate_agreement, Agreement, Comparison, Figure, FigureFile, ModelView};
use super::{BuiltPage, RenderInput};
use crate::analysis::{load_result, ProjectionJob, ProjectionResult, RAW};
use crate::catalogue::{AnalysisConfig, Method};
use crate::separation::SeparationTables;
use crate::tables::Stat;

/// The metrics compared across projections and representations, with how the prose names them and
/// whether a higher value means better separated classes.
const METRICS: [(&str, &str, bool); 5] = [
    ("nh", "neighbourhood hit", true),
    ("hull_mean_iou", "mean hull IoU", false),
    ("hull_max_iou", "max hull IoU", false),
    ("ellipse_mean_bc", "mean ellipse BC", false),
    ("ellipse_max_bc", "max ellipse BC", false),
];

#[derive(Serialize)]
struct Page {
    summary: String,
    logreg: ModelView,
    mlp: ModelView,
    cnn: ModelView,
    q2: MlpVsLogreg,
    training: SharedTraining,
    q3: CnnFacts,
    analysis: AnalysisSettings,
    m1: RawProjection,
    m2: RawSeparation,
    m3: Untangling,
}

#[derive(Serialize)]
struct ReplicateRow {
    replicate: usize,
    test_acc: f64,
    test_loss: f64,
}

#[derive(Serialize)]
struct MlpVsLogreg {
    replicates: Vec<ReplicateRow>,
    vs_logreg: Comparison,
    param_ratio: f64,
    extra_params: f64,
    gain_pp_per_10k_params: f64,
    logreg_error_pp: f64,
    mlp_error_pp: f64,
    error_ratio: f64,
    logreg_acc_per_kparam: f64,
    mlp_acc_per_kparam: f64,
    logreg_more_efficient: bool,
}

#[derive(Serialize)]
struct CnnFacts {
    architecture: Architecture,
    /// Under twice chance level (ten classes) the CNN has not left its initial plateau.
    at_chance: bool,
    train_samples: String,
    steps: String,
    vs_mlp: Comparison,
}

#[derive(Serialize)]
struct RawProjection {
    seconds: Stat,
    threads: usize,
    figures: Vec<MethodFigures>,
}

#[derive(Serialize)]
struct RawSeparation {
    rows: Vec<MetricsRow>,
    per_class: Vec<ClassRow>,
    nh_curve: String,
    tsne_vs_pca: Ordering,
}

#[derive(Serialize)]
struct Untangling {
    rows: Vec<MetricsRow>,
    tsne_rows: Vec<MetricsRow>,
    scatter: Vec<RepresentationFigures>,
    nh_curve: String,
    tsne_order: Ordering,
    pca_order: Ordering,
    titles: Vec<Title>,
    cnn_tsne_nh: Stat,
    mlp_tsne_nh: Stat,
    accuracy_agrees: bool,
}

#[derive(Serialize)]
struct Title {
    id: String,
    title: String,
}

#[derive(Clone, Serialize)]
struct MethodFigures {
    method: &'static str,
    files: ScatterFiles,
}

#[derive(Clone, Serialize)]
struct RepresentationFigures {
    title: String,
    figures: Vec<MethodFigures>,
}

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

    let replicates: Vec<ReplicateRow> = {
        let acc = tables.replicate_values(&mlp.id, "test_acc")?;
        let loss = tables.replicate_values(&mlp.id, "test_loss")?;
        acc.iter()
            .zip(&loss)
            .enumerate()
            .map(|(i, (&test_acc, &test_loss))| ReplicateRow { replicate: i + 1, test_acc, test_loss })
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
            by_method.push(MethodFigures { method: m.title(), files: scatter_figures(&result, title, &mut figures)? });
        }
        scatter.push(RepresentationFigures { title: title.clone(), figures: by_method });
    }
    let cnn_nh = separation.stat(&cnn.id, Method::Tsne.name(), "nh")?;
    let mlp_nh = separation.stat(&mlp.id, Method::Tsne.name(), "nh")?;
    let raw_rows: Vec<MetricsRow> = rows.iter().filter(|r| r.representation == RAW).cloned().collect();
    let tsne_rows: Vec<MetricsRow> = rows.iter().filter(|r| r.method == Method::Tsne.title()).cloned().collect();

    let mut model = |experiment: &crate::catalogue::Experiment| -> Result<ModelView> {
        let (view, files) = model_view(tables, experiment)?;
        figures.extend(files);
        Ok(view)
    };
    let (logreg_view, mlp_view, cnn_view) = (model(logreg)?, model(mlp)?, model(cnn)?);
    let test_acc = |id: &str| tables.replicate_values(id, "test_acc");
    let page = Page {
        summary: format!(
            "MNIST baselines: logistic regression {:.2}%, MLP {:.2}% (n = {}), CNN {:.2}% test accuracy; class separation of raw pixels vs learned representations under t-SNE and PCA.",
            logreg_acc.mean * 100.0, mlp_acc.mean * 100.0, mlp_acc.n, cnn_acc.mean * 100.0
        ),
        logreg: logreg_view,
        mlp: mlp_view,
        cnn: cnn_view,
        q2: MlpVsLogreg {
            replicates,
            vs_logreg: compare(&test_acc(&mlp.id)?, &test_acc(&logreg.id)?, mlp_acc.mean - logreg_acc.mean),
            param_ratio: params(mlp)? / params(logreg)?,
            extra_params,
            gain_pp_per_10k_params: error_drop_pp / extra_params * 1e4,
            logreg_error_pp: (1.0 - logreg_acc.mean) * 100.0,
            mlp_error_pp: (1.0 - mlp_acc.mean) * 100.0,
            error_ratio: (1.0 - mlp_acc.mean) / (1.0 - logreg_acc.mean),
            logreg_acc_per_kparam: logreg_acc.mean * 100.0 / (params(logreg)? / 1e3),
            mlp_acc_per_kparam: mlp_acc.mean * 100.0 / (params(mlp)? / 1e3),
            logreg_more_efficient: logreg_acc.mean / params(logreg)? > mlp_acc.mean / params(mlp)?,
        },
        training: shared_training(&[logreg, mlp, cnn]),
        q3: CnnFacts {
            architecture: architecture(cnn)?,
            at_chance: cnn_acc.mean < 0.2,
            train_samples: nnlab_nn::summary::group_thousands(cnn_train_samples),
            steps: nnlab_nn::summary::group_thousands(cnn_steps),
            vs_mlp: compare(&test_acc(&cnn.id)?, &test_acc(&mlp.id)?, cnn_acc.mean - mlp_acc.mean),
        },
        analysis: analysis_settings(config, &projections, separation)?,
        m1: RawProjection {
            seconds: separation.stat(RAW, Method::Tsne.name(), "projection_seconds")?,
            threads: input.manifest.hardware.threads_used,
            figures: scatter[0].figures.clone(),
        },
        m2: RawSeparation {
            rows: raw_rows,
            per_class: per_class(separation, RAW, &config.methods)?,
            nh_curve: nh_curve_figure(separation, &[(RAW, "raw pixels".to_string())], &config.methods, "tp-m2-nh-curve.svg", &mut figures)?,
            tsne_vs_pca: ordering(separation, &[(RAW, Method::Tsne), (RAW, Method::Pca)])?,
        },
        m3: Untangling {
            rows,
            tsne_rows,
            scatter,
            nh_curve: nh_curve_figure(separation, &representations, &[Method::Tsne], "tp-m3-nh-curve.svg", &mut figures)?,
            tsne_order: ordering(separation, &representations.iter().map(|(r, _)| (*r, Method::Tsne)).collect::<Vec<_>>())?,
            pca_order: ordering(separation, &representations.iter().map(|(r, _)| (*r, Method::Pca)).collect::<Vec<_>>())?,
            titles: representations.iter().map(|(r, t)| Title { id: r.to_string(), title: t.clone() }).collect(),
            cnn_tsne_nh: cnn_nh,
            mlp_tsne_nh: mlp_nh,
            accuracy_agrees: (cnn_nh.mean > mlp_nh.mean) == (cnn_acc.mean > mlp_acc.mean),
        },
    };
    Ok(BuiltPage { title: format!("tp — {}", assignment.title), context: serde_json::to_value(page)?, figures })
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
#[derive(Serialize)]
struct AnalysisSettings {
    k: usize,
    k_max: usize,
    perplexity: f64,
    theta: f64,
    max_iter: usize,
    pca_dims: Option<usize>,
    points: Option<usize>,
    raw_tsne_seeds: usize,
    mlp_replicates: usize,
    cnn_replicates: usize,
    pca_n: usize,
}

fn analysis_settings(
    config: &AnalysisConfig,
    projections: &[ProjectionJob],
    separation: &SeparationTables,
) -> Result<AnalysisSettings> {
    let Some(tsne) = projections.iter().find_map(|p| p.spec.tsne.clone()) else { bail!("no t-SNE projection was planned") };
    let count = |representation: &str, method: Method| {
        projections.iter().filter(|p| p.spec.representation == representation && p.spec.method == method).count()
    };
    Ok(AnalysisSettings {
        k: config.k,
        k_max: config.k_max,
        perplexity: tsne.perplexity,
        theta: tsne.theta,
        max_iter: tsne.max_iter,
        pca_dims: tsne.pca_dims,
        points: projections.first().and_then(|p| p.spec.points),
        raw_tsne_seeds: count(RAW, Method::Tsne),
        mlp_replicates: count("tp.mlp", Method::Tsne),
        cnn_replicates: count("tp.cnn", Method::Tsne),
        pca_n: separation.stat(RAW, Method::Pca.name(), "nh")?.n,
    })
}

/// One projection's separation metrics, keyed by metric name as the templates read them.
#[derive(Clone, Serialize)]
struct MetricsRow {
    representation: String,
    title: String,
    method: &'static str,
    #[serde(flatten)]
    metrics: BTreeMap<&'static str, Stat>,
}

fn metrics_row(separation: &SeparationTables, representation: &str, title: &str, method: Method) -> Result<MetricsRow> {
    let mut metrics = BTreeMap::new();
    for (metric, _, _) in METRICS {
        metrics.insert(metric, separation.stat(representation, method.name(), metric)?);
    }
    Ok(MetricsRow { representation: representation.to_string(), title: title.to_string(), method: method.title(), metrics })
}

/// Neighbourhood hit of one class under each method (keyed by the method's name).
#[derive(Serialize)]
struct ClassRow {
    class: u8,
    #[serde(flatten)]
    by_method: BTreeMap<&'static str, Stat>,
}

fn per_class(separation: &SeparationTables, representation: &str, methods: &[Method]) -> Result<Vec<ClassRow>> {
    (0..10u8)
        .map(|class| {
            let mut by_method = BTreeMap::new();
            for &method in methods {
                by_method.insert(method.name(), separation.stat(representation, method.name(), &format!("nh_class_{class}"))?);
            }
            Ok(ClassRow { class, by_method })
        })
        .collect()
}

/// Candidates ranked by mean neighbourhood hit (best first), with whether the hull and ellipse
/// overlaps rank them the same way, so the prose can say how robust the ordering is.
#[derive(Serialize)]
struct Ordering {
    order: Vec<Ranked>,
    best: String,
    /// How many replicates (seeds), each on its own neighbourhood hit, rank the same candidate first.
    agreement: Agreement,
    best_representation: String,
    worst: String,
    hull_agrees: bool,
    ellipse_agrees: bool,
    /// Best and runner-up are separated by more than their replicate spreads.
    clear_margin: bool,
}

#[derive(Serialize)]
struct Ranked {
    representation: String,
    method: &'static str,
    name: String,
    nh: Stat,
}

fn ordering(separation: &SeparationTables, candidates: &[(&str, Method)]) -> Result<Ordering> {
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
    let nh = |i: usize| separation.stat(candidates[i].0, candidates[i].1.name(), "nh");
    let clear_margin = match by_nh.get(1) {
        Some(&second) => {
            let (a, b) = (nh(best)?, nh(second)?);
            a.mean - b.mean > a.std.unwrap_or(0.0) + b.std.unwrap_or(0.0)
        }
        None => true,
    };
    let order = by_nh
        .iter()
        .map(|&i| {
            Ok(Ranked { representation: candidates[i].0.to_string(), method: candidates[i].1.title(), name: name(i), nh: nh(i)? })
        })
        .collect::<Result<Vec<_>>>()?;
    let replicates: Vec<Vec<f64>> =
        candidates.iter().map(|(r, m)| separation.replicate_values(r, m.name(), "nh")).collect::<Result<_>>()?;
    Ok(Ordering {
        order,
        agreement: replicate_agreement(&replicates, best),
        best: name(best),
        best_representation: candidates[best].0.to_string(),
        worst: name(*by_nh.last().expect("at least one candidate")),
        hull_agrees: agrees("hull_mean_iou")?,
        ellipse_agrees: agrees("ellipse_mean_bc")?,
        clear_margin,
    })
}

fn class_names() -> Vec<String> {
    (0..10).map(|c| c.to_string()).collect()
}

/// Plain, hull and ellipse scatter plots of one projection; returns their paths relative to the report.
/// Where the plain, hull and ellipse scatter plots of one projection are linked from.
#[derive(Clone, Serialize)]
struct ScatterFiles {
    plain: String,
    hulls: String,
    ellipses: String,
}

fn scatter_figures(result: &ProjectionResult, title: &str, figures: &mut Vec<FigureFile>) -> Result<ScatterFiles> {
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
    let path = |key: &str| format!("figures/{stem}-{key}.svg");
    let files = ScatterFiles { plain: path("plain"), hulls: path("hulls"), ellipses: path("ellipses") };
    for (file, chart) in [(&files.plain, base), (&files.hulls, with_hulls), (&files.ellipses, with_ellipses)] {
        figures.push(FigureFile { path: file.clone(), figure: Figure::Scatter(chart) });
    }
    Ok(files)
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
#[derive(Serialize)]
struct SharedTraining {
    shared: bool,
    optimizer: String,
    batch_size: usize,
    loss: String,
}

fn shared_training(models: &[&crate::catalogue::Experiment]) -> SharedTraining {
    let first = models[0];
    let shared = models.iter().all(|m| {
        m.train.optimizer == first.train.optimizer
            && m.train.batch_size == first.train.batch_size
            && m.validation == first.validation
    });
    SharedTraining {
        shared,
        optimizer: first.train.optimizer.describe(),
        batch_size: first.train.batch_size,
        loss: first.train.objective().describe(),
    }
}

/// The CNN's shapes and parameter counts, read from its layer plan, for the sentences that explain them.
#[derive(Serialize)]
struct Architecture {
    convs: Vec<ConvShape>,
    pooled_sizes: String,
    flatten_from: String,
    flatten_len: String,
    dense_units: usize,
    dense_params: String,
    biggest_conv: ConvShape,
}

#[derive(Clone, Serialize)]
struct ConvShape {
    kernel: String,
    padding: String,
    input: String,
    filters: usize,
    params: String,
    params_raw: usize,
}

fn architecture(cnn: &crate::catalogue::Experiment) -> Result<Architecture> {
    let plan = cnn.model.plan()?;
    let dims = |shape: &[usize]| shape.iter().map(usize::to_string).collect::<Vec<_>>().join("×");
    let group = nnlab_nn::summary::group_thousands;
    let mut convs = Vec::new();
    let mut pooled = vec![plan[0].input_shape[0].to_string()];
    for (layer, planned) in cnn.model.layers.iter().zip(&plan) {
        match layer {
            nnlab_nn::LayerSpec::Conv2d { filters, kernel, padding, .. } => convs.push(ConvShape {
                kernel: format!("{}×{}", kernel[0], kernel[1]),
                padding: format!("{padding:?}").to_lowercase(),
                input: dims(&planned.input_shape[..2]),
                filters: *filters,
                params: format!("{} × {} × {} × {filters} + {filters}", kernel[0], kernel[1], planned.input_shape[2]),
                params_raw: planned.params,
            }),
            nnlab_nn::LayerSpec::MaxPool2d { .. } => pooled.push(planned.output_shape[0].to_string()),
            _ => {}
        }
    }
    let flatten = plan.iter().position(|l| l.kind == "Flatten").context("tp.cnn has no Flatten layer")?;
    let flat_len = plan[flatten].output_shape[0];
    let dense = plan[flatten + 1..].iter().find(|l| l.kind == "Dense").context("tp.cnn has no dense layer after Flatten")?;
    let units = dense.output_shape[0];
    let biggest_conv = convs.iter().max_by_key(|c| c.params_raw).cloned().context("tp.cnn has no convolution")?;
    Ok(Architecture {
        convs,
        pooled_sizes: pooled.join(" → "),
        flatten_from: dims(&plan[flatten].input_shape),
        flatten_len: group(flat_len),
        dense_units: units,
        dense_params: format!("{} × {units} + {units}", group(flat_len)),
        biggest_conv,
    })
}
