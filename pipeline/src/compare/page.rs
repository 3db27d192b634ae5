//! The comparison as a report page (Markdown + HTML in the reports' layout, `templates/compare.md.hbs`),
//! a CSV of every metric row, and one interval figure per metric: each experiment's change with its
//! 95% interval.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nnlab_report::{IntervalChart, IntervalRow, Page, Renderer};
use serde::Serialize;

use super::{Comparison, Metric, MetricRow, Side, Source, Summary, Verdict};
use crate::render::{write_figures, Figure, FigureFile};

#[derive(Serialize)]
struct PageContext<'a> {
    a: SideView,
    b: SideView,
    alpha: f64,
    noise: super::Noise,
    /// A side is a bench output, whose samples are the timed epochs of one invocation.
    bench: bool,
    verdicts: Vec<VerdictCount>,
    metrics: Vec<MetricTable>,
    replays: Option<ReplaysView>,
    manifest: Vec<ManifestRow>,
    only_a: Vec<String>,
    only_b: Vec<String>,
    csv: &'a str,
}

#[derive(Serialize)]
struct SideView {
    label: String,
    kind: &'static str,
    profile: String,
}

#[derive(Serialize)]
struct VerdictCount {
    verdict: &'static str,
    count: usize,
}

#[derive(Serialize)]
struct MetricTable {
    title: &'static str,
    change: &'static str,
    figure: Option<String>,
    rows: Vec<RowView>,
}

#[derive(Serialize)]
struct RowView {
    name: String,
    a: String,
    b: String,
    change: String,
    interval: String,
    p: String,
    verdict: &'static str,
    /// Improved or regressed: printed in bold.
    notable: bool,
}

#[derive(Serialize)]
struct ReplaysView {
    total: usize,
    identical: usize,
    all_identical: bool,
    differing: Vec<ReplayView>,
}

#[derive(Serialize)]
struct ReplayView {
    name: String,
    seed: u64,
    epoch: String,
    metric: String,
    a: String,
    b: String,
}

#[derive(Serialize)]
struct ManifestRow {
    field: String,
    a: String,
    b: String,
    differs: bool,
}

const CSV_FILE: &str = "compare.csv";

/// Writes `compare.md`, `compare.html`, `compare.csv` and `figures/compare_<metric>.svg` into
/// `out_dir`; returns the HTML page's path.
pub fn write(comparison: &Comparison, a: &Side, b: &Side, templates: &Path, out_dir: &Path) -> Result<PathBuf> {
    let mut figures = Vec::new();
    let mut metrics = Vec::new();
    for metric in Metric::ALL {
        let rows: Vec<&MetricRow> = comparison.rows.iter().filter(|r| r.metric == metric).collect();
        if rows.is_empty() {
            continue;
        }
        let figure = figure(metric, &rows);
        let link = figure.as_ref().map(|f| f.path.clone());
        figures.extend(figure);
        metrics.push(MetricTable {
            title: title(metric),
            change: if metric.is_ratio() { "B / A" } else { "B − A" },
            figure: link,
            rows: rows.iter().map(|r| row_view(r)).collect(),
        });
    }
    let csv = csv(comparison);
    let context = PageContext {
        a: side_view(a),
        b: side_view(b),
        alpha: super::ALPHA,
        noise: comparison.noise,
        bench: a.source == Source::Bench || b.source == Source::Bench,
        verdicts: verdict_counts(comparison),
        metrics,
        replays: replays_view(comparison),
        manifest: manifest_rows(a, b),
        only_a: comparison.only_a.iter().map(|k| name(&k.experiment, &k.point)).collect(),
        only_b: comparison.only_b.iter().map(|k| name(&k.experiment, &k.point)).collect(),
        csv: CSV_FILE,
    };
    let renderer = Renderer::new(templates).with_context(|| format!("loading the templates in {}", templates.display()))?;
    let page = Page {
        name: "compare".into(),
        title: format!("Comparison: {} vs {}", a.label, b.label),
        template: "compare".into(),
        context: serde_json::to_value(&context)?,
        profile: a.profile.clone().or_else(|| b.profile.clone()).unwrap_or_else(|| "not stated".into()),
        generated_at: crate::manifest::utc_now(),
    };
    // Figures and the CSV first: the page that links them is the last thing written.
    write_figures(out_dir, &figures)?;
    nnlab_report::write_atomic(&out_dir.join(CSV_FILE), csv.as_bytes())?;
    renderer.render_page(&page, out_dir)?;
    Ok(out_dir.join("compare.html"))
}

fn side_view(side: &Side) -> SideView {
    let kind = match side.source {
        Source::Run(_) => "run",
        Source::Bench => "bench output",
        Source::Peer => "peer results",
    };
    SideView { label: side.label.clone(), kind, profile: side.profile.clone().unwrap_or_else(|| "not stated".into()) }
}

fn title(metric: Metric) -> &'static str {
    match metric {
        Metric::TestAcc => "Test accuracy",
        Metric::TestLoss => "Test loss",
        Metric::TrainLoss => "Training loss of the last epoch",
        Metric::SamplesPerS => "Training throughput (samples/s)",
    }
}

fn name(experiment: &str, point: &str) -> String {
    if point.is_empty() {
        experiment.to_string()
    } else {
        format!("{experiment} [{point}]")
    }
}

/// A value as the page prints it: accuracy in %, loss with four decimals, throughput whole.
fn value_text(metric: Metric, v: f64) -> String {
    match metric {
        Metric::TestAcc => format!("{:.2}", v * 100.0),
        Metric::TestLoss | Metric::TrainLoss => format!("{v:.4}"),
        Metric::SamplesPerS => format!("{v:.0}"),
    }
}

fn summary_text(metric: Metric, s: &Summary) -> String {
    match s.std {
        Some(std) => format!("{} ± {} (n = {})", value_text(metric, s.mean), value_text(metric, std), s.n),
        None => format!("{} (n = 1)", value_text(metric, s.mean)),
    }
}

fn change_text(metric: Metric, change: f64) -> String {
    match metric {
        Metric::TestAcc => format!("{:+.2} points", change * 100.0),
        Metric::TestLoss | Metric::TrainLoss => format!("{change:+.4}"),
        Metric::SamplesPerS => format!("{change:.3}×"),
    }
}

fn interval_text(metric: Metric, interval: Option<(f64, f64)>) -> String {
    let Some((low, high)) = interval else { return "–".into() };
    match metric {
        Metric::TestAcc => format!("[{:+.2}, {:+.2}]", low * 100.0, high * 100.0),
        Metric::TestLoss | Metric::TrainLoss => format!("[{low:+.4}, {high:+.4}]"),
        Metric::SamplesPerS => format!("[{low:.3}, {high:.3}]"),
    }
}

fn p_text(p: Option<f64>) -> String {
    match p {
        Some(p) if p < 0.001 => "< 0.001".into(),
        Some(p) => format!("{p:.3}"),
        None => "–".into(),
    }
}

fn row_view(row: &MetricRow) -> RowView {
    RowView {
        name: name(&row.experiment, &row.point),
        a: summary_text(row.metric, &row.a),
        b: summary_text(row.metric, &row.b),
        change: change_text(row.metric, row.change),
        interval: interval_text(row.metric, row.interval),
        p: p_text(row.p),
        verdict: row.verdict.text(),
        notable: matches!(row.verdict, Verdict::Improved | Verdict::Regressed),
    }
}

fn verdict_counts(comparison: &Comparison) -> Vec<VerdictCount> {
    let all = [
        Verdict::Identical,
        Verdict::NoChange,
        Verdict::WithinNoise,
        Verdict::Improved,
        Verdict::Regressed,
        Verdict::TooFewReplicates,
    ];
    all.into_iter()
        .map(|v| VerdictCount { verdict: v.text(), count: comparison.rows.iter().filter(|r| r.verdict == v).count() })
        .filter(|c| c.count > 0)
        .collect()
}

/// Each row's change with its interval; accuracy in points, throughput as a ratio on a log axis.
fn figure(metric: Metric, rows: &[&MetricRow]) -> Option<FigureFile> {
    let scale = if metric == Metric::TestAcc { 100.0 } else { 1.0 };
    let chart = IntervalChart {
        title: format!("{}: B against A, 95% intervals", title(metric)),
        x_label: match metric {
            Metric::TestAcc => "difference B − A (points)".into(),
            Metric::TestLoss | Metric::TrainLoss => "difference B − A".into(),
            Metric::SamplesPerS => "ratio B / A".into(),
        },
        reference: if metric.is_ratio() { 1.0 } else { 0.0 },
        log_x: metric.is_ratio(),
        rows: rows
            .iter()
            .map(|r| IntervalRow {
                label: name(&r.experiment, &r.point),
                estimate: r.change * scale,
                interval: r.interval.map(|(low, high)| (low * scale, high * scale)),
            })
            .collect(),
    };
    (!chart.rows.is_empty())
        .then(|| FigureFile { path: format!("figures/compare_{}.svg", metric.name()), figure: Figure::Interval(chart) })
}

fn replays_view(comparison: &Comparison) -> Option<ReplaysView> {
    if comparison.replays.is_empty() {
        return None;
    }
    let differing: Vec<ReplayView> = comparison
        .replays
        .iter()
        .filter_map(|r| {
            let d = r.first_difference.as_ref()?;
            let number = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.17}"));
            Some(ReplayView {
                name: format!("{} #{}", name(&r.experiment, &r.point), r.replicate),
                seed: r.seed,
                epoch: d.epoch.map_or("after training".into(), |e| e.to_string()),
                metric: d.metric.clone(),
                a: number(d.a),
                b: number(d.b),
            })
        })
        .collect();
    let total = comparison.replays.len();
    Some(ReplaysView { total, identical: total - differing.len(), all_identical: differing.is_empty(), differing })
}

/// The two manifests field by field (empty unless both sides are runs).
fn manifest_rows(a: &Side, b: &Side) -> Vec<ManifestRow> {
    let (Some(ma), Some(mb)) = (a.manifest(), b.manifest()) else { return Vec::new() };
    let fields = |m: &crate::manifest::RunManifest| {
        let mut fields = vec![
            ("CPU".to_string(), m.hardware.cpu_model.clone()),
            ("logical cores".into(), m.hardware.logical_cores.to_string()),
            ("threads used".into(), m.hardware.threads_used.to_string()),
            ("memory (GiB)".into(), m.hardware.memory_gib.to_string()),
            ("OS".into(), m.os.clone()),
            ("rustc".into(), m.rustc.clone()),
            ("nnlab".into(), m.nnlab_version.clone()),
            ("commit".into(), m.git_commit.clone()),
            ("profile".into(), m.profile.clone()),
            ("seed".into(), m.seed.to_string()),
            (
                "assignments".into(),
                if m.assignments.is_empty() { "– (single experiments)".into() } else { m.assignments.join(", ") },
            ),
            ("wall time (s)".into(), m.wall_seconds.map_or("unfinished".into(), |s| format!("{s:.0}"))),
        ];
        fields.extend(m.crates.iter().map(|(name, version)| (format!("crate {name}"), version.clone())));
        fields
    };
    let (fa, fb) = (fields(ma), fields(mb));
    let mut names: Vec<&String> = fa.iter().map(|(n, _)| n).collect();
    names.extend(fb.iter().map(|(n, _)| n).filter(|n| !fa.iter().any(|(m, _)| m == *n)));
    let value = |fields: &[(String, String)], name: &str| {
        fields.iter().find(|(n, _)| n == name).map_or("–".to_string(), |(_, v)| v.clone())
    };
    names
        .into_iter()
        .map(|name| {
            let (va, vb) = (value(&fa, name), value(&fb, name));
            ManifestRow { field: name.clone(), differs: va != vb, a: va, b: vb }
        })
        .collect()
}

/// One line per metric row, full precision.
pub fn csv(comparison: &Comparison) -> String {
    let mut out = String::from(
        "experiment,point,metric,a_mean,a_std,a_n,b_mean,b_std,b_n,change,change_kind,interval_low,interval_high,p,verdict\n",
    );
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    for r in &comparison.rows {
        out += &format!(
            "{},\"{}\",{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            r.experiment,
            r.point.replace('"', "\"\""),
            r.metric.name(),
            r.a.mean,
            opt(r.a.std),
            r.a.n,
            r.b.mean,
            opt(r.b.std),
            r.b.n,
            r.change,
            if r.metric.is_ratio() { "ratio" } else { "difference" },
            opt(r.interval.map(|i| i.0)),
            opt(r.interval.map(|i| i.1)),
            opt(r.p),
            r.verdict.text()
        );
    }
    out
}
