//! The stages wired together, as the CLI runs them.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::Device;

use crate::analysis::{load_result, plan_projections, run_projections, ProjectionJob, ProjectionResult};
use crate::catalogue::Catalogue;
use crate::choice::{self, Chosen};
use crate::datasets::{DataCache, DataConfig};
use crate::execute::{run_evaluations, run_jobs};
use crate::follow_up::{self, Choice};
use crate::key::AnswerKey;
use crate::manifest::{self, Hardware, ProjectionEntry, RunManifest};
use crate::plan::{plan, plan_evaluations, plan_follow_up, selects, EvalJob, Job, Selection};
use crate::profile::Profile;
use crate::render::{render_run, RenderInput};
use crate::separation::SeparationTables;
use crate::store::{EvalResult, JobResult, RunStore};
use crate::tables::Tables;

/// Where the pipeline reads its inputs from; the defaults are the source tree's own files.
#[derive(Debug, Clone)]
pub struct Sources {
    pub catalogue: PathBuf,
    pub profiles: PathBuf,
    pub templates: PathBuf,
    pub data: DataConfig,
}

impl Default for Sources {
    fn default() -> Self {
        Sources {
            catalogue: Catalogue::default_dir(),
            profiles: Profile::default_dir(),
            templates: crate::render::default_templates_dir(),
            data: DataConfig::in_source_tree(),
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub profile: String,
    pub seed: u64,
    pub assignments: Vec<String>,
    pub run_dir: PathBuf,
    pub threads: usize,
    /// When the run began: the manifest's start and wall time count from here, so that jobs trained
    /// in worker processes before [`run`] collects them are part of the run's time.
    pub started: Started,
}

#[derive(Debug, Clone)]
pub struct Started {
    pub at: String,
    pub instant: Instant,
}

impl Started {
    pub fn now() -> Self {
        Started { at: manifest::utc_now(), instant: Instant::now() }
    }
}

pub fn load_plan(sources: &Sources, profile: &str, seed: u64, assignments: &[String]) -> Result<(Profile, Vec<Job>)> {
    let catalogue = Catalogue::load(&sources.catalogue)?;
    let profile = Profile::load(&sources.profiles, profile)?;
    let jobs = plan(&catalogue, &profile, seed, assignments)?;
    Ok((profile, jobs))
}

/// Runs every missing job of the plan, aggregates all of them into the result tables and records the
/// run manifest. Returns the manifest.
pub fn run(sources: &Sources, request: &RunRequest) -> Result<RunManifest> {
    let catalogue = Catalogue::load(&sources.catalogue)?;
    let profile = Profile::load(&sources.profiles, &request.profile)?;
    let jobs = plan(&catalogue, &profile, request.seed, &request.assignments)?;
    let store = RunStore::open(&request.run_dir)?;
    let (rustc, crates) = manifest::build_versions();
    let mut run_manifest = RunManifest {
        run_dir: request.run_dir.display().to_string(),
        profile: profile.name.clone(),
        profile_description: profile.description.clone(),
        seed: request.seed,
        assignments: assignments_of(&catalogue, &request.assignments),
        hardware: Hardware::detect(request.threads),
        os: manifest::os_description(),
        rustc,
        crates,
        nnlab_version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: manifest::git_commit(),
        started_at: request.started.at.clone(),
        finished_at: None,
        wall_seconds: None,
        jobs: Vec::new(),
        projections: Vec::new(),
    };
    store.write_json("plan.json", &jobs)?;
    store.write_json("manifest.json", &run_manifest)?;

    let mut data = DataCache::new(sources.data.clone(), Device::Cpu);
    let mut outcome = run_jobs(&jobs, &store, &mut data, &Device::Cpu, request.threads)?;
    let finished: Vec<Job> = jobs.iter().filter(|j| store.is_complete(&j.id)).cloned().collect();
    let tables = aggregate(&store, &finished, &[])?;

    // Follow-ups, now that the sweeps they choose from are aggregated.
    let mut jobs = jobs;
    let mut choices = Vec::new();
    if let Some(tables) = &tables {
        for (choice, follow_up_jobs) in plan_follow_ups(&catalogue, &profile, request, tables)? {
            outcome.absorb(run_jobs(&follow_up_jobs, &store, &mut data, &Device::Cpu, request.threads)?);
            jobs.extend(follow_up_jobs);
            choices.push(choice);
        }
    }
    store.write_json(follow_up::CHOICES_FILE, &choices)?;
    store.write_json("plan.json", &jobs)?;
    eprintln!("{} jobs ran, {} reused from earlier runs", outcome.ran, outcome.reused);
    if outcome.unavailable > 0 {
        eprintln!(
            "{} jobs not run: their dataset is unavailable (see above); their questions render as not run",
            outcome.unavailable
        );
    }
    let finished: Vec<Job> = jobs.iter().filter(|j| store.is_complete(&j.id)).cloned().collect();

    // Choices between experiments, now that follow-ups are in too.
    let chosen = match aggregate(&store, &finished, &[])? {
        Some(tables) => make_choices(&catalogue, request, &tables)?,
        None => Vec::new(),
    };
    store.write_json(choice::CHOICES_FILE, &chosen)?;

    // Evaluations of the trained models.
    let evaluation_jobs = plan_evaluations(&catalogue, &request.assignments, &finished, &chosen, request.seed)?;
    let mut evaluated = Vec::new();
    if !evaluation_jobs.is_empty() {
        store.write_json("evaluations.json", &evaluation_jobs)?;
        let ran = run_evaluations(&evaluation_jobs, &store, &mut data, &Device::Cpu)?;
        eprintln!("{} evaluation jobs ran, {} reused from earlier runs", ran.ran, ran.reused);
        evaluated = evaluation_jobs.iter().filter(|j| store.is_complete(&j.id)).cloned().collect();
    }
    let playground_jobs = crate::playground::plan(&catalogue, &profile, request.seed, &request.assignments)?;
    if aggregate(&store, &finished, &evaluated)?.is_none() && playground_jobs.is_empty() {
        anyhow::bail!("no finished jobs to aggregate: every job of the plan was skipped (see above)");
    }
    run_manifest.jobs = outcome.entries;

    let projections = plan_projections(&catalogue, &profile, request.seed, &jobs);
    if !projections.is_empty() {
        store.write_json("projections.json", &projections)?;
        let analysed = run_projections(&projections, &store, &jobs, &mut data, request.threads)?;
        eprintln!("{} projections computed, {} reused from earlier runs", analysed.ran, analysed.reused);
        for (label, why) in &analysed.skipped {
            eprintln!("projection {label} not run: {why}");
        }
        run_manifest.projections = projections
            .iter()
            .map(|p| {
                let skipped = analysed.skipped.iter().find(|(label, _)| *label == p.label());
                let status = match skipped {
                    Some((_, why)) => format!("not run: {why}"),
                    None if analysed.reused_ids.contains(&p.id) => "reused".to_string(),
                    None => "ran".to_string(),
                };
                ProjectionEntry { id: p.id.clone(), label: p.label(), status }
            })
            .collect();
    }
    // Always re-aggregated: tables of an earlier run into this directory must not outlive their plan.
    aggregate_projections(&store, &projections)?;

    if !playground_jobs.is_empty() {
        let ran = crate::playground::run(&playground_jobs, &store, request.threads)?;
        eprintln!("{} playground jobs ran, {} reused from earlier runs", ran.ran, ran.reused);
        crate::playground::write_table(&store.tables_dir(), &ran.results)?;
    } else {
        // A Playground plan of an earlier run into this directory must not outlive it.
        crate::playground::forget(&store)?;
    }
    run_manifest.finished_at = Some(manifest::utc_now());
    run_manifest.wall_seconds = Some(request.started.instant.elapsed().as_secs_f64());
    store.write_json("manifest.json", &run_manifest)?;
    Ok(run_manifest)
}

/// The follow-up jobs of the selection that can be planned now (their sweeps have finished) and have
/// not run yet: the second wave of a cluster submission.
pub fn pending_follow_ups(sources: &Sources, request: &RunRequest) -> Result<Vec<Job>> {
    let catalogue = Catalogue::load(&sources.catalogue)?;
    let profile = Profile::load(&sources.profiles, &request.profile)?;
    let jobs = plan(&catalogue, &profile, request.seed, &request.assignments)?;
    let store = RunStore::open(&request.run_dir)?;
    let finished: Vec<Job> = jobs.iter().filter(|j| store.is_complete(&j.id)).cloned().collect();
    let Some(tables) = aggregate(&store, &finished, &[])? else { return Ok(Vec::new()) };
    Ok(plan_follow_ups(&catalogue, &profile, request, &tables)?
        .into_iter()
        .flat_map(|(_, jobs)| jobs)
        .filter(|j| !store.is_complete(&j.id))
        .collect())
}

/// The choice and jobs of every selected follow-up whose sweep the tables hold; a follow-up whose
/// sweep has not finished is reported and skipped.
fn plan_follow_ups(
    catalogue: &Catalogue,
    profile: &Profile,
    request: &RunRequest,
    tables: &Tables,
) -> Result<Vec<(Choice, Vec<Job>)>> {
    let selection = Selection::new(catalogue, &request.assignments)?;
    let mut planned = Vec::new();
    for experiment in catalogue.assignments.iter().flat_map(|a| &a.experiments) {
        if experiment.follow_up.is_none() || !selection.trains(&experiment.id) {
            continue;
        }
        let choice = match follow_up::choose(catalogue, profile, experiment, tables) {
            Ok(choice) => choice,
            Err(why) => {
                eprintln!("follow-up {} not run: {why:#}", experiment.id);
                continue;
            }
        };
        eprintln!(
            "follow-up {}: {} of {} is best on {} ({:.4})",
            experiment.id, choice.chosen.label, choice.of, choice.metric, choice.chosen.stat.mean
        );
        let jobs = plan_follow_up(catalogue, experiment, choice.chosen.point.clone(), profile, request.seed)?;
        planned.push((choice, jobs));
    }
    Ok(planned)
}

/// Every selected choice whose candidates have all finished; one that cannot be made yet is reported
/// and skipped.
fn make_choices(catalogue: &Catalogue, request: &RunRequest, tables: &Tables) -> Result<Vec<Chosen>> {
    let selection = Selection::new(catalogue, &request.assignments)?;
    let mut made = Vec::new();
    for spec in catalogue.assignments.iter().flat_map(|a| &a.choices) {
        if !spec.among.iter().all(|id| selection.trains(id)) {
            continue;
        }
        match choice::choose(spec, tables) {
            Ok(chosen) => {
                eprintln!(
                    "choice {}: {} is best on {} ({:.4})",
                    spec.id,
                    chosen.experiment(),
                    spec.metric,
                    chosen.ranking[0].stat.mean
                );
                made.push(chosen);
            }
            Err(why) => eprintln!("choice {} not made: {why:#}", spec.id),
        }
    }
    Ok(made)
}

/// Runs one job of a plan (skipped if already finished), without aggregating: for job arrays
/// sharing a run directory.
pub fn run_single(sources: &Sources, job: &Job, run_dir: &Path, threads: usize) -> Result<()> {
    let store = RunStore::open(run_dir)?;
    let mut data = DataCache::new(sources.data.clone(), Device::Cpu);
    let outcome = run_jobs(std::slice::from_ref(job), &store, &mut data, &Device::Cpu, threads)?;
    eprintln!("{} jobs ran, {} reused from earlier runs", outcome.ran, outcome.reused);
    Ok(())
}

/// Collects the plan's finished jobs and evaluations into the result tables (none if no job finished).
pub fn aggregate(store: &RunStore, jobs: &[Job], evaluations: &[EvalJob]) -> Result<Option<Tables>> {
    if jobs.is_empty() {
        return Ok(None);
    }
    let results: Vec<JobResult> = jobs.iter().map(|job| store.load(job)).collect::<Result<_>>()?;
    let evaluated: Vec<EvalResult> = evaluations.iter().map(|job| store.load_evaluation(job)).collect::<Result<_>>()?;
    let mut tables = Tables::aggregate(&results, &evaluated)?;
    tables.write(&store.tables_dir())?;
    Ok(Some(tables))
}

/// Collects the finished projections into the separation tables.
pub fn aggregate_projections(store: &RunStore, projections: &[ProjectionJob]) -> Result<Option<SeparationTables>> {
    let results: Vec<ProjectionResult> = projections.iter().filter_map(|p| load_result(store.root(), p).ok()).collect();
    if results.is_empty() {
        SeparationTables::remove(&store.tables_dir())?;
        return Ok(None);
    }
    let mut tables = SeparationTables::aggregate(&results)?;
    tables.write(&store.tables_dir())?;
    Ok(Some(tables))
}

/// Renders the reports of a finished run into `out_dir`.
pub fn render(sources: &Sources, run_dir: &Path, out_dir: &Path) -> Result<Vec<PathBuf>> {
    with_render_input(sources, run_dir, out_dir, |input| render_run(input, &sources.templates))
}

/// The answer key of a finished run (its pages rendered in memory; nothing is written).
pub fn answer_key(sources: &Sources, run_dir: &Path) -> Result<AnswerKey> {
    with_render_input(sources, run_dir, run_dir, |input| crate::render::answer_key(input, &sources.templates))
}

/// Loads what rendering a finished run needs and hands it to `f`.
fn with_render_input<T>(
    sources: &Sources,
    run_dir: &Path,
    out_dir: &Path,
    f: impl FnOnce(&RenderInput<'_>) -> Result<T>,
) -> Result<T> {
    let manifest_path = run_dir.join("manifest.json");
    let text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("cannot read {} (has this run been started?)", manifest_path.display()))?;
    let run_manifest: RunManifest =
        serde_json::from_str(&text).with_context(|| format!("{} is not a valid run manifest", manifest_path.display()))?;
    anyhow::ensure!(
        run_manifest.finished_at.is_some(),
        "the run in {} has not finished: run `nnlab run` again to complete it before rendering",
        run_dir.display()
    );
    let catalogue = Catalogue::load(&sources.catalogue)?;
    let tables = Tables::read(&run_dir.join("tables"))?;
    let separation = SeparationTables::read(&run_dir.join("tables"))?;
    let input = RenderInput {
        catalogue: &catalogue,
        tables: &tables,
        separation: separation.as_ref(),
        manifest: &run_manifest,
        run_dir,
        out_dir,
    };
    f(&input)
}

/// Points `<reports>/latest` at `out_dir` (a relative symlink), replacing the previous one atomically.
pub fn update_latest_link(out_dir: &Path) -> Result<()> {
    let (Some(parent), Some(name)) = (out_dir.parent(), out_dir.file_name()) else { return Ok(()) };
    let link = parent.join("latest");
    if name == "latest" {
        return Ok(());
    }
    let tmp = parent.join(format!(".latest.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    #[cfg(unix)]
    std::os::unix::fs::symlink(name, &tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    std::fs::rename(&tmp, &link).with_context(|| format!("cannot update {}", link.display()))?;
    Ok(())
}

/// The assignments whose every experiment the selection takes: only those can be reported.
fn assignments_of(catalogue: &Catalogue, only: &[String]) -> Vec<String> {
    catalogue
        .assignments
        .iter()
        .filter(|a| a.experiments.iter().all(|e| selects(only, &a.id, &e.id)))
        .map(|a| a.id.clone())
        .collect()
}
