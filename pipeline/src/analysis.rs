//! The analysis stage: 2-D projections (t-SNE, PCA) of the raw test images and of every representation
//! a training job kept, each with its separation metrics (neighbourhood hit, hull and ellipse overlap).
//!
//! A projection is a job like a training job: its id is the hash of its spec (which names the source
//! training job, so a new model seed gives a new projection), its result is one JSON file under
//! `runs/<run>/analysis/`, written atomically, and a rerun reuses it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use nnlab_analysis::{Features, Point, SeparationMetrics, TsneConfig};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::catalogue::{AnalysisConfig, Catalogue, Method};
use crate::datasets::{DataCache, DatasetUnavailable};
use crate::plan::{content_hash, replicate_seed, Job};
use crate::profile::Profile;
use crate::progress::Progress;
use crate::store::{write_json, RunStore};

/// The representation name of the raw pixels.
pub const RAW: &str = "raw";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectionSpec {
    pub assignment: String,
    pub dataset: String,
    /// [`RAW`] or the experiment whose kept activations are projected.
    pub representation: String,
    /// The training job whose activations are projected; none for raw pixels.
    pub source_job: Option<String>,
    /// The model replicate for a learned representation; the t-SNE seed's replicate for raw pixels.
    pub replicate: usize,
    pub method: Method,
    /// The first `points` test images (all of the test set if absent).
    pub points: Option<usize>,
    /// The t-SNE settings, seed included; none for PCA (deterministic).
    pub tsne: Option<TsneSettings>,
    pub k: usize,
    pub k_max: usize,
}

/// t-SNE's settings as recorded in a projection's spec (and so in its id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TsneSettings {
    pub perplexity: f64,
    pub theta: f64,
    pub max_iter: usize,
    pub seed: u64,
    pub pca_dims: Option<usize>,
}

impl TsneSettings {
    /// The analysis crate's defaults (perplexity 30) with this seed.
    pub fn with_seed(seed: u64) -> Self {
        let d = TsneConfig::default();
        TsneSettings { perplexity: d.perplexity, theta: d.theta, max_iter: d.max_iter, seed, pca_dims: d.pca_dims }
    }

    fn config(&self) -> TsneConfig {
        TsneConfig {
            perplexity: self.perplexity,
            theta: self.theta,
            max_iter: self.max_iter,
            seed: self.seed,
            pca_dims: self.pca_dims,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectionJob {
    pub id: String,
    pub spec: ProjectionSpec,
}

impl ProjectionJob {
    pub fn label(&self) -> String {
        format!("{} {} #{}", self.spec.representation, self.spec.method.title(), self.spec.replicate)
    }
}

/// What a projection job measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectionResult {
    pub id: String,
    pub spec: ProjectionSpec,
    pub points: Vec<Point>,
    pub labels: Vec<u8>,
    /// Input dimension of the projected representation.
    pub input_dims: usize,
    pub metrics: MetricsRecord,
    /// Wall time of the projection alone, and of the metrics.
    pub projection_seconds: f64,
    pub metrics_seconds: f64,
}

/// The separation metrics of one projection, flattened for the tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsRecord {
    pub k: usize,
    pub nh: f64,
    pub nh_per_class: Vec<(u8, f64)>,
    /// Element i is the neighbourhood hit at k = i + 1.
    pub nh_curve: Vec<f64>,
    pub hull_area: Vec<(u8, f64)>,
    pub hull_mean_iou: f64,
    pub hull_max_iou: f64,
    pub ellipse_mean_bc: f64,
    pub ellipse_max_bc: f64,
}

impl MetricsRecord {
    fn of(metrics: &SeparationMetrics) -> Self {
        MetricsRecord {
            k: metrics.nh.k,
            nh: metrics.nh.overall,
            nh_per_class: metrics.nh.per_class.clone(),
            nh_curve: metrics.nh_curve.clone(),
            hull_area: metrics.hulls.hulls.iter().map(|h| (h.class, h.area)).collect(),
            hull_mean_iou: metrics.hulls.mean_iou,
            hull_max_iou: metrics.hulls.max_iou,
            ellipse_mean_bc: metrics.ellipses.mean_bc,
            ellipse_max_bc: metrics.ellipses.max_bc,
        }
    }
}

/// The projection jobs of every selected assignment that has an `[analysis]` section: raw pixels
/// under each method (t-SNE once per replicate seed, PCA once: it is deterministic), and each kept
/// representation of each training replicate under each method.
pub fn plan_projections(catalogue: &Catalogue, profile: &Profile, run_seed: u64, training: &[Job]) -> Vec<ProjectionJob> {
    let mut jobs = Vec::new();
    for assignment in &catalogue.assignments {
        let Some(config) = &assignment.analysis else { continue };
        let sources: Vec<&Job> =
            training.iter().filter(|j| j.spec.assignment == assignment.id && j.spec.activations.is_some()).collect();
        if !training.iter().any(|j| j.spec.assignment == assignment.id) {
            continue; // the assignment is not selected
        }
        let base = |representation: &str, source: Option<&Job>, replicate: usize, method: Method, seed: u64| ProjectionSpec {
            assignment: assignment.id.clone(),
            dataset: config.dataset.clone(),
            representation: representation.to_string(),
            source_job: source.map(|j| j.id.clone()),
            replicate,
            method,
            points: profile.analysis_points,
            tsne: (method == Method::Tsne).then(|| TsneSettings::with_seed(seed)),
            k: config.k,
            k_max: config.k_max,
        };
        for &method in &config.methods {
            let replicates = if method == Method::Tsne { profile.replicates_for(None) } else { 1 };
            for replicate in 1..=replicates {
                let seed = replicate_seed(run_seed, &format!("{}/{RAW}/t-SNE", assignment.id), replicate);
                jobs.push(job(base(RAW, None, replicate, method, seed)));
            }
            for source in &sources {
                let seed = replicate_seed(source.spec.seed, "t-SNE", 1);
                jobs.push(job(base(&source.spec.experiment, Some(source), source.spec.replicate, method, seed)));
            }
        }
    }
    jobs
}

fn job(spec: ProjectionSpec) -> ProjectionJob {
    ProjectionJob { id: content_hash(&spec)[..16].to_string(), spec }
}

/// Where projection results live in a run directory.
pub fn analysis_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("analysis")
}

fn result_path(run_dir: &Path, id: &str) -> PathBuf {
    analysis_dir(run_dir).join(format!("{id}.json"))
}

pub fn load_result(run_dir: &Path, job: &ProjectionJob) -> Result<ProjectionResult> {
    let path = result_path(run_dir, &job.id);
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {} ({})", path.display(), job.label()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a valid projection result", path.display()))
}

pub struct AnalysisOutcome {
    pub ran: usize,
    pub reused: usize,
    pub reused_ids: Vec<String>,
    /// Projections whose input does not exist: dataset unavailable or source job not run.
    pub skipped: Vec<(String, String)>,
}

/// Runs every projection the run directory does not already hold, `threads` at a time (each one is
/// deterministic on its own, so running them side by side changes no result).
pub fn run_projections(
    jobs: &[ProjectionJob],
    store: &RunStore,
    training: &[Job],
    data: &mut DataCache,
    threads: usize,
) -> Result<AnalysisOutcome> {
    std::fs::create_dir_all(analysis_dir(store.root()))?;
    let mut outcome = AnalysisOutcome { ran: 0, reused: 0, reused_ids: Vec::new(), skipped: Vec::new() };
    let mut pending = Vec::new();
    for job in jobs {
        if load_result(store.root(), job).is_ok_and(|r| r.spec == job.spec) {
            outcome.reused += 1;
            outcome.reused_ids.push(job.id.clone());
            continue;
        }
        match gather_input(job, store, training, data) {
            Ok(input) => pending.push((job, input)),
            Err(err) if err.downcast_ref::<DatasetUnavailable>().is_some() || err.downcast_ref::<SourceMissing>().is_some() => {
                outcome.skipped.push((job.label(), err.to_string()));
            }
            Err(err) => return Err(err),
        }
    }
    if pending.is_empty() {
        return Ok(outcome);
    }
    let progress = Progress::new(pending.len());
    progress.println(format!("analysis: {} projections to compute, {} reused", pending.len(), outcome.reused));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads.max(1)).build()?;
    let results: Vec<Result<()>> = pool.install(|| {
        pending
            .par_iter()
            .map(|(job, input)| {
                progress.job_started(&job.label());
                let result = project(job, input)
                    .with_context(|| format!("projection {} ({}) failed; nothing was stored for it", job.id, job.label()))?;
                write_json(&result_path(store.root(), &job.id), &result)?;
                progress.println(format!(
                    "  {}: NH(k={}) {:.3}, hull IoU {:.3}, ellipse BC {:.3} ({:.1} s)",
                    job.label(),
                    result.metrics.k,
                    result.metrics.nh,
                    result.metrics.hull_mean_iou,
                    result.metrics.ellipse_mean_bc,
                    result.projection_seconds
                ));
                progress.job_finished();
                Ok(())
            })
            .collect()
    });
    progress.finish();
    for result in results {
        result?;
    }
    outcome.ran = pending.len();
    Ok(outcome)
}

/// A projection's input: row-major features and their labels.
struct Input {
    rows: usize,
    cols: usize,
    values: Vec<f32>,
    labels: Vec<u8>,
}

/// The source training job of a projection did not finish (its dataset was unavailable).
#[derive(Debug, thiserror::Error)]
#[error("source job {0} has no stored result")]
struct SourceMissing(String);

fn gather_input(job: &ProjectionJob, store: &RunStore, training: &[Job], data: &mut DataCache) -> Result<Input> {
    match &job.spec.source_job {
        None => {
            let test = &data.get(&job.spec.dataset)?.test;
            let rows = job.spec.points.unwrap_or(test.len());
            if rows > test.len() {
                bail!("{}: {rows} points asked but the {} test set has {}", job.label(), job.spec.dataset, test.len());
            }
            let slice = test.slice(0, rows)?;
            let values = slice.x.flatten_all()?.to_vec1::<f32>()?;
            let labels = slice.labels_vec()?.into_iter().map(|l| l as u8).collect();
            Ok(Input { rows, cols: values.len() / rows.max(1), values, labels })
        }
        Some(source) => {
            let Some(training_job) = training.iter().find(|j| &j.id == source) else {
                bail!("{}: source job {source} is not in the plan", job.label());
            };
            if !store.is_complete(source) {
                return Err(SourceMissing(source.clone()).into());
            }
            let activations = store.load_activations(training_job)?;
            Ok(Input {
                rows: activations.info.rows,
                cols: activations.info.cols,
                values: activations.values,
                labels: activations.info.labels,
            })
        }
    }
}

fn project(job: &ProjectionJob, input: &Input) -> Result<ProjectionResult> {
    let features = Features { rows: input.rows, cols: input.cols, values: &input.values };
    let started = Instant::now();
    let points = match (&job.spec.method, &job.spec.tsne) {
        (Method::Tsne, Some(settings)) => nnlab_analysis::tsne_2d(features, &settings.config())?,
        (Method::Pca, None) => nnlab_analysis::pca_2d(features)?,
        (method, _) => bail!("{}: inconsistent projection spec for {}", job.id, method.title()),
    };
    let projection_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let metrics = nnlab_analysis::separation_metrics(&points, &input.labels, job.spec.k, job.spec.k_max)?;
    Ok(ProjectionResult {
        id: job.id.clone(),
        spec: job.spec.clone(),
        input_dims: input.cols,
        metrics: MetricsRecord::of(&metrics),
        points,
        labels: input.labels.clone(),
        projection_seconds,
        metrics_seconds: started.elapsed().as_secs_f64(),
    })
}

/// The analysis settings of an assignment, if it has any.
pub fn config_of<'a>(catalogue: &'a Catalogue, assignment: &str) -> Option<&'a AnalysisConfig> {
    catalogue.assignment(assignment).and_then(|a| a.analysis.as_ref())
}
