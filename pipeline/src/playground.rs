//! The Playground stage (a1.x2, a1.x3): each knob's sweep on each data set, and the smallest-network
//! search, as jobs like the others: the id hashes the spec (settings, epochs, seeds), the result is
//! one JSON file under `runs/<run>/playground/`, written atomically, and a rerun reuses it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use nnlab_data::playground::{Point2, Shape};
use nnlab_playground::search::{search, SearchOutcome, SearchRule};
use nnlab_playground::{output_grid, train, Schedule, SearchSpace, Settings, Trained};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::catalogue::{shape_name, value_label, Catalogue, PlaygroundStudy};
use crate::plan::{content_hash, replicate_seed};
use crate::profile::Profile;
use crate::progress::Progress;
use crate::store::{read_list, write_json, RunStore};

/// The plan file of the stage, in the run directory.
pub const PLAN_FILE: &str = "playground.json";

/// One knob value: its printed label and the settings it trains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnobPoint {
    pub label: String,
    pub settings: Settings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlaygroundSpec {
    /// One knob swept on one data set, every value trained on the same seeds.
    Knob {
        assignment: String,
        dataset: Shape,
        knob: String,
        points: Vec<KnobPoint>,
        epochs: usize,
        record: Vec<usize>,
        seeds: Vec<u64>,
        boundary_resolution: usize,
    },
    /// The smallest network reaching `bar`.
    Search {
        assignment: String,
        settings: Settings,
        epochs: usize,
        bar: f64,
        seeds: Vec<u64>,
        needed: usize,
        runners_up: usize,
        space: SearchSpace,
        boundary_resolution: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaygroundJob {
    pub id: String,
    pub spec: PlaygroundSpec,
}

impl PlaygroundJob {
    pub fn label(&self) -> String {
        match &self.spec {
            PlaygroundSpec::Knob { dataset, knob, .. } => format!("playground {} × {knob}", shape_name(*dataset)),
            PlaygroundSpec::Search { settings, .. } => format!("playground search on {}", shape_name(settings.dataset)),
        }
    }
}

/// The network's output over the Playground's square, with the training points it learned from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Boundary {
    pub resolution: usize,
    /// Row-major, top row first (see `nnlab_playground::output_grid`).
    pub values: Vec<f64>,
    pub train_points: Vec<Point2>,
}

/// One knob value's trainings: one per seed, and the first seed's decision boundary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointResult {
    pub label: String,
    pub parameters: usize,
    pub runs: Vec<Trained>,
    pub boundary: Boundary,
}

/// A successful search candidate's picture: the network of its first seed to reach the bar, at
/// the epoch it reached it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Winner {
    pub seed_index: usize,
    pub boundary: Boundary,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Knob { points: Vec<PointResult> },
    Search { outcome: SearchOutcome, pictures: Vec<Winner> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaygroundResult {
    pub id: String,
    pub spec: PlaygroundSpec,
    pub outcome: Outcome,
    /// Wall time of the job, and the threads it ran on.
    pub seconds: f64,
    pub threads: usize,
}

/// Every Playground job of the selected assignments (empty `only` selects all).
pub fn plan(catalogue: &Catalogue, profile: &Profile, run_seed: u64, only: &[String]) -> Result<Vec<PlaygroundJob>> {
    let mut jobs = Vec::new();
    for assignment in &catalogue.assignments {
        let Some(study) = &assignment.playground else { continue };
        if !crate::plan::selects(only, &assignment.id, &crate::plan::playground_id(&assignment.id)) {
            continue;
        }
        let epochs = profile.playground_epochs.map_or(study.epochs, |cap| study.epochs.min(cap));
        let record: Vec<usize> = study.record.iter().copied().filter(|&e| e < epochs).collect();
        let replicates = profile.replicates_for(Some(study.replicates));
        for &dataset in &study.datasets {
            // Every knob of a data set trains on the same seeds: values are compared on the same
            // points and, where the network's shape is the same, from the same initial weights.
            let seeds: Vec<u64> = (1..=replicates)
                .map(|r| replicate_seed(run_seed, &format!("{}/playground/{}", assignment.id, shape_name(dataset)), r))
                .collect();
            for knob in &study.knobs {
                let values = crate::catalogue::thin(&knob.values, profile.max_axis_values);
                let points = values
                    .into_iter()
                    .map(|value| {
                        Ok(KnobPoint { label: value_label(value), settings: study.knob_settings(knob, value, dataset)? })
                    })
                    .collect::<Result<Vec<_>>>()?;
                jobs.push(job(PlaygroundSpec::Knob {
                    assignment: assignment.id.clone(),
                    dataset,
                    knob: knob.id.clone(),
                    points,
                    epochs,
                    record: record.clone(),
                    seeds: seeds.clone(),
                    boundary_resolution: study.boundary_resolution,
                }));
            }
        }
        jobs.push(job(search_spec(&assignment.id, study, profile, run_seed)?));
    }
    Ok(jobs)
}

fn search_spec(assignment: &str, study: &PlaygroundStudy, profile: &Profile, run_seed: u64) -> Result<PlaygroundSpec> {
    let search = &study.search;
    let settings = study.search_settings()?;
    let replicates = profile.replicates_for(Some(search.replicates));
    let seeds = (1..=replicates).map(|r| replicate_seed(run_seed, &format!("{assignment}/playground/search"), r)).collect();
    let mut space = search.space.clone();
    if let Some(cap) = profile.playground_max_parameters {
        space.max_parameters = space.max_parameters.min(cap);
    }
    Ok(PlaygroundSpec::Search {
        assignment: assignment.to_string(),
        settings,
        epochs: profile.playground_epochs.map_or(search.epochs, |cap| search.epochs.min(cap)),
        bar: search.bar,
        seeds,
        needed: search.needed.min(replicates),
        runners_up: search.runners_up,
        space,
        boundary_resolution: study.boundary_resolution,
    })
}

fn job(spec: PlaygroundSpec) -> PlaygroundJob {
    PlaygroundJob { id: content_hash(&spec)[..16].to_string(), spec }
}

fn result_path(root: &Path, id: &str) -> PathBuf {
    root.join("playground").join(format!("{id}.json"))
}

/// A finished job's result, if there is one for exactly this spec.
pub fn load_result(root: &Path, job: &PlaygroundJob) -> Result<PlaygroundResult> {
    let path = result_path(root, &job.id);
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let result: PlaygroundResult =
        serde_json::from_str(&text).with_context(|| format!("{} is not a valid playground result", path.display()))?;
    anyhow::ensure!(result.spec == job.spec, "{} holds another spec than job {}", path.display(), job.id);
    Ok(result)
}

/// The plan and results of a run's Playground stage; `None` when the run had none.
pub fn load_all(run_dir: &Path) -> Result<Option<Vec<PlaygroundResult>>> {
    let plan_path = run_dir.join(PLAN_FILE);
    if !plan_path.exists() {
        return Ok(None);
    }
    let jobs: Vec<PlaygroundJob> = read_list(&plan_path)?;
    let results = jobs.iter().filter_map(|job| load_result(run_dir, job).ok()).collect();
    Ok(Some(results))
}

/// Removes the stage's plan and table from a run directory whose new plan has no Playground jobs
/// (the results stay, to be reused).
pub fn forget(store: &RunStore) -> Result<()> {
    for path in [store.root().join(PLAN_FILE), store.tables_dir().join("playground.csv")] {
        if path.exists() {
            std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    Ok(())
}

/// What the stage did, and every job's result in plan order.
pub struct StageOutcome {
    pub ran: usize,
    pub reused: usize,
    pub results: Vec<PlaygroundResult>,
}

/// Runs every job of the plan that has no result yet, on `threads` threads.
pub fn run(jobs: &[PlaygroundJob], store: &RunStore, threads: usize) -> Result<StageOutcome> {
    std::fs::create_dir_all(store.root().join("playground"))?;
    store.write_json(PLAN_FILE, &jobs)?;
    let mut results: Vec<Option<PlaygroundResult>> = jobs.iter().map(|j| load_result(store.root(), j).ok()).collect();
    let pending = results.iter().filter(|r| r.is_none()).count();
    let reused = jobs.len() - pending;
    if pending > 0 {
        let progress = Progress::new(pending);
        progress.println(format!("playground: {pending} jobs to run, {reused} reused"));
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads.max(1)).build()?;
        for (job, slot) in jobs.iter().zip(&mut results).filter(|(_, r)| r.is_none()) {
            progress.job_started(&job.label());
            let result = pool
                .install(|| run_job(job, threads.max(1), &progress))
                .with_context(|| format!("{} ({}) failed; nothing was stored for it", job.label(), job.id))?;
            write_json(&result_path(store.root(), &job.id), &result)?;
            progress.println(format!("  {} ({:.1} s)", job.label(), result.seconds));
            progress.job_finished();
            *slot = Some(result);
        }
        progress.finish();
    }
    let results = results.into_iter().map(|r| r.expect("every job has run or was reused")).collect();
    Ok(StageOutcome { ran: pending, reused, results })
}

fn run_job(job: &PlaygroundJob, threads: usize, progress: &Progress) -> Result<PlaygroundResult> {
    let started = Instant::now();
    let outcome = match &job.spec {
        PlaygroundSpec::Knob { points, epochs, record, seeds, boundary_resolution, .. } => {
            let schedule = Schedule { epochs: *epochs, record: record.clone(), bar: None, stop_at_bar: false };
            let results = points
                .par_iter()
                .map(|point| train_point(point, seeds, &schedule, *boundary_resolution))
                .collect::<Result<Vec<_>>>()?;
            Outcome::Knob { points: results }
        }
        PlaygroundSpec::Search { settings, epochs, bar, seeds, needed, runners_up, space, boundary_resolution, .. } => {
            let rule = SearchRule {
                base: settings.clone(),
                epochs: *epochs,
                bar: *bar,
                seeds: seeds.clone(),
                needed: *needed,
                runners_up: *runners_up,
            };
            let outcome = search(space, &rule, |done, total| {
                progress.job_started(&format!("{} ({done}/{total} candidates)", job.label()));
            })?;
            let schedule = Schedule { epochs: *epochs, record: Vec::new(), bar: Some(*bar), stop_at_bar: true };
            let pictures = outcome
                .successes()
                .iter()
                .map(|tried| {
                    let seed_index = tried.reached_at.iter().position(Option::is_some).expect("a success reached the bar");
                    let settings = Settings {
                        features: tried.candidate.features.clone(),
                        hidden: tried.candidate.hidden.clone(),
                        ..settings.clone()
                    };
                    let (_, mut network, data) = train(&settings, seeds[seed_index], &schedule)?;
                    let values = output_grid(&mut network, &settings.features, *boundary_resolution);
                    let boundary = Boundary { resolution: *boundary_resolution, values, train_points: data.train };
                    Ok(Winner { seed_index, boundary })
                })
                .collect::<Result<Vec<_>>>()?;
            Outcome::Search { outcome, pictures }
        }
    };
    Ok(PlaygroundResult {
        id: job.id.clone(),
        spec: job.spec.clone(),
        outcome,
        seconds: started.elapsed().as_secs_f64(),
        threads,
    })
}

fn train_point(point: &KnobPoint, seeds: &[u64], schedule: &Schedule, resolution: usize) -> Result<PointResult> {
    let mut runs = Vec::with_capacity(seeds.len());
    let mut boundary = None;
    for &seed in seeds {
        let (trained, mut network, data) =
            train(&point.settings, seed, schedule).with_context(|| format!("value {}", point.label))?;
        if boundary.is_none() {
            let values = output_grid(&mut network, &point.settings.features, resolution);
            boundary = Some(Boundary { resolution, values, train_points: data.train });
        }
        runs.push(trained);
    }
    Ok(PointResult {
        label: point.label.clone(),
        parameters: point.settings.parameters(),
        runs,
        boundary: boundary.expect("at least one seed"),
    })
}

/// The per-run table of the sweeps, one row per (data set, knob, value, seed), for readers of
/// `tables/`.
pub fn write_table(tables_dir: &Path, results: &[PlaygroundResult]) -> Result<()> {
    let mut csv = String::from("dataset,knob,value,parameters,seed,epochs,final_train_loss,final_test_loss,dead_links\n");
    for result in results {
        let (PlaygroundSpec::Knob { dataset, knob, seeds, .. }, Outcome::Knob { points }) = (&result.spec, &result.outcome)
        else {
            continue;
        };
        for point in points {
            for (run, seed) in point.runs.iter().zip(seeds) {
                csv += &format!(
                    "{},{},\"{}\",{},{seed},{},{},{},{}\n",
                    shape_name(*dataset),
                    knob,
                    point.label,
                    point.parameters,
                    run.epochs.last().copied().unwrap_or(0),
                    run.final_train_loss(),
                    run.final_test_loss(),
                    run.dead_links
                );
            }
        }
    }
    std::fs::create_dir_all(tables_dir)?;
    nnlab_report::write_atomic(&tables_dir.join("playground.csv"), csv.as_bytes())
        .with_context(|| format!("cannot write {}", tables_dir.join("playground.csv").display()))
}
