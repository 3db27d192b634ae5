//! `nnlab`: regenerates every answer of the neural-network assignments, reproducibly.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use nnlab::datasets;
use nnlab::stages::{self, RunRequest, Sources};

#[derive(Parser)]
#[command(
    name = "nnlab",
    version,
    about = "Trains every assignment model with seeded replicates and renders one report per assignment",
    long_about = "Trains every assignment model with seeded replicates and renders one report per assignment.\n\n\
        Stages: plan (catalogue × profile → jobs) → fetch (verified datasets) → run (train/evaluate each job, \
        aggregate the replicates) → render (Markdown + HTML reports). `nnlab run` does all of them; finished \
        jobs are kept in the run directory and never recomputed, so an interrupted run resumes where it stopped. \
        Sweeps expand into one job per point and replicate; follow-ups (train a sweep's best point again) are \
        planned once their sweep has finished; choices pick the best of several experiments once they have \
        finished; evaluation jobs re-test kept models (of an experiment or a choice) on transformed test sets.\n\n\
        Datasets are looked up in data/, then in $NNLAB_DATA_MIRROR (a local copy laid out as <dataset>/<file>), \
        then downloaded from their canonical URLs (unless NNLAB_OFFLINE=1); every file is checked against the \
        SHA-256 in data/manifest.toml."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    sources: SourceArgs,
}

/// Inputs other than the source tree's own (for trying a modified catalogue or profile).
#[derive(Args)]
struct SourceArgs {
    /// Experiment catalogue directory (one TOML per assignment) [default: pipeline/catalogue]
    #[arg(long, global = true)]
    catalogue: Option<PathBuf>,
    /// Profiles directory [default: pipeline/profiles]
    #[arg(long, global = true)]
    profiles: Option<PathBuf>,
    /// Dataset cache directory [default: data/ of the source tree]
    #[arg(long, global = true, env = "NNLAB_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

impl SourceArgs {
    fn sources(self) -> Sources {
        let mut sources = Sources::default();
        if let Some(dir) = self.catalogue {
            sources.catalogue = dir;
        }
        if let Some(dir) = self.profiles {
            sources.profiles = dir;
        }
        if let Some(dir) = self.data_dir {
            sources.data.data_dir = dir;
        }
        sources
    }
}

#[derive(Subcommand)]
enum Command {
    /// List the jobs a profile implies (one line each: id, experiment, replicate, seed, epochs)
    Plan {
        #[command(flatten)]
        selection: Selection,
        /// Print the job ids only, one per line (for job arrays: `nnlab job <id>`)
        #[arg(long)]
        ids: bool,
    },
    /// Verify the dataset files, downloading those missing
    Fetch {
        /// Datasets to fetch
        #[arg(long = "dataset", default_values = ["mnist", "cifar10"])]
        datasets: Vec<String>,
    },
    /// Run the whole pipeline: train every missing job, aggregate, render the reports
    Run {
        #[command(flatten)]
        selection: Selection,
        #[command(flatten)]
        dirs: Dirs,
        #[command(flatten)]
        threads: Threads,
        /// Stop after aggregating; do not render the reports
        #[arg(long)]
        no_render: bool,
        /// Train the plan's jobs in this many parallel `nnlab job` processes (each with --threads /
        /// N threads), then go on as usual; for workstations without Slurm
        #[arg(long, default_value_t = 1)]
        jobs: usize,
    },
    /// Run one job of the plan into the run directory (for job arrays: `nnlab plan --ids` lists them;
    /// a final `nnlab run` with the same options aggregates and renders, reusing every finished job)
    Job {
        /// The job id, as printed by `nnlab plan`
        #[arg(required_unless_present = "from")]
        id: Option<String>,
        /// Run entry --index of a frozen job list (JSON, as `nnlab slurm` writes) instead of a job of
        /// the plan: follow-ups are not in the plan
        #[arg(long, requires = "index", conflicts_with = "id")]
        from: Option<PathBuf>,
        /// The entry of --from to run (0-based)
        #[arg(long)]
        index: Option<usize>,
        #[command(flatten)]
        selection: Selection,
        /// Run directory holding the jobs and tables [default: runs/<profile>]
        #[arg(long)]
        run_dir: Option<PathBuf>,
        #[command(flatten)]
        threads: Threads,
    },
    /// Submit the plan to Slurm: the unfinished training jobs as job arrays (task k runs entry k of a
    /// job list frozen into <run-dir>/slurm/<n>/, each through `nnlab job`), then a continuation job
    /// after all of them: it submits the follow-ups their sweeps now determine as a second wave (with
    /// another continuation), else collects: `nnlab run` on the same run directory (choices,
    /// evaluations, projections and the Playground study run there), aggregate and render. Returns at once;
    /// `nnlab status` follows the run. Submitting again submits only what is not finished. The run
    /// directory must be on a filesystem every node sees
    Slurm {
        #[command(flatten)]
        selection: Selection,
        #[command(flatten)]
        dirs: Dirs,
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Write the scripts and print how to submit them, but do not call sbatch
        #[arg(long)]
        dry_run: bool,
    },
    /// The continuation job of a Slurm submission (written into its collect.sh by `nnlab slurm`)
    #[command(hide = true)]
    SlurmNext {
        /// The submission directory, <run-dir>/slurm/<n>
        #[arg(long)]
        submission: PathBuf,
        #[command(flatten)]
        selection: Selection,
    },
    /// How far a run directory's training jobs have got: finished, started (running, or left by a
    /// killed worker) and missing, from the run store alone
    Status {
        /// The run directory
        run_dir: PathBuf,
    },
    /// Measure training throughput (samples/s) of the catalogue's models on synthetic data; writes
    /// a Markdown and a CSV table with the machine's fingerprint
    Bench {
        /// Only these experiments (repeatable; default: all)
        #[arg(long = "experiment")]
        experiments: Vec<String>,
        /// Minimum timed epochs per model (each 16 batches)
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Minimum timed seconds per model
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Output directory for throughput.md and throughput.csv (and comparison.md/.csv with --peer)
        #[arg(long, default_value = "reports/bench")]
        out_dir: PathBuf,
        /// JSON lines of the Keras peer (bench/keras_peer.py): adds a side-by-side comparison table
        #[arg(long)]
        peer: Option<PathBuf>,
        #[command(flatten)]
        threads: Threads,
    },
    /// Compare B against A: two run directories (two machines, builds or thread counts), two `nnlab
    /// bench` output directories, or a run and a peer's JSON lines (e.g. `bench/keras_fidelity.py`).
    /// Per experiment and sweep point: each side's mean ± std (n) of test accuracy, test loss and
    /// throughput, the change with a 95% interval, Welch's test and a verdict (no change, within
    /// noise, improved, regressed); which same-seed histories are bit-identical; the two manifests.
    /// Writes compare.md, compare.html, compare.csv and figures/ into --out-dir
    Compare {
        /// Side A (the baseline)
        a: PathBuf,
        /// Side B
        b: PathBuf,
        /// Output directory
        #[arg(long, default_value = "reports/compare")]
        out_dir: PathBuf,
        /// Accuracy changes smaller than this (points of percentage) are noise
        #[arg(long, default_value_t = nnlab::compare::Noise::default().acc_points)]
        acc_noise: f64,
        /// Loss changes smaller than this fraction of A's loss are noise
        #[arg(long, default_value_t = nnlab::compare::Noise::default().loss_relative)]
        loss_noise: f64,
        /// Throughput ratios within 1 ± this are noise
        #[arg(long, default_value_t = nnlab::compare::Noise::default().speed_relative)]
        speed_noise: f64,
    },
    /// Write the answer key of a finished run: every answer its report pages print, with mean, std, n,
    /// unit and the interval a grader accepts (the 95% prediction interval of one new replicate,
    /// widened to the printed precision), and categorical answers as text. The same run gives a
    /// byte-identical key; `nnlab run` and `nnlab render` also write it as key.toml beside the reports
    Key {
        /// The run directory
        run_dir: PathBuf,
        /// Write the key here instead of to standard output
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Grade a submission against an answer key: a TOML (`"a1.q5.test_acc" = 97.7`) or CSV
    /// (`id,value`) file; percentages and fractions are both read, as the key states. Writes
    /// grade.md, grade.html and grade.csv: per answer within / outside / missing / unknown id
    Grade {
        /// The answer key (key.toml of a rendered run, or `nnlab key` output)
        key: PathBuf,
        /// The submission (.toml or .csv)
        submission: PathBuf,
        /// Output directory
        #[arg(long, default_value = "reports/grade")]
        out_dir: PathBuf,
    },
    /// Render the reports of a finished run
    Render {
        #[command(flatten)]
        dirs: Dirs,
        /// Profile whose default run directory to render (when --run-dir is not given)
        #[arg(long, default_value = "full")]
        profile: String,
    },
    /// Print the catalogue as resolved JSON: every experiment with `extends` and `insert` applied and
    /// every sweep point expanded (one entry each, with its `point`); follow-ups are left out, since
    /// their point is chosen by a run. For tools outside the pipeline, such as the Keras peers.
    Catalogue,
}

#[derive(Args)]
struct Selection {
    /// Profile: full (the assignments' settings), quick (minutes) or smoke (seconds, for tests)
    #[arg(long, default_value = "full")]
    profile: String,
    /// Run seed; every replicate's seed derives from it
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Only these assignments or experiments (repeatable, e.g. `--only a1 --only tp.mlp`; default:
    /// all); `a1.playground` selects a1's Playground study (x2, x3) alone. Reports are rendered for
    /// the assignments selected whole.
    #[arg(long = "only", alias = "assignment")]
    assignments: Vec<String>,
}

/// What a Slurm cluster needs to know (each becomes an `#SBATCH` line of every task).
#[derive(Args)]
struct ClusterArgs {
    /// Slurm partition
    #[arg(long)]
    partition: Option<String>,
    /// Slurm account
    #[arg(long)]
    account: Option<String>,
    /// Time limit per task, in Slurm's format (e.g. 2:00:00)
    #[arg(long)]
    time: Option<String>,
    /// CPUs per task; also the threads each job trains with
    #[arg(long, default_value_t = 1)]
    cpus_per_task: usize,
    /// CPUs (and threads) of the continuation job, which collects: runs the evaluations, projections
    /// and the Playground study, aggregates and renders [default: --cpus-per-task]
    #[arg(long)]
    collect_cpus: Option<usize>,
    /// Memory per task, in Slurm's format (e.g. 4G)
    #[arg(long)]
    mem: Option<String>,
    /// At most this many tasks at once (the array's %P)
    #[arg(long)]
    parallel: Option<usize>,
    /// The cluster's MaxArraySize (`scontrol show config`): longer job lists become several arrays
    #[arg(long, default_value_t = 1000)]
    max_array_size: usize,
    /// A further #SBATCH option, e.g. --sbatch=--qos=long (repeatable)
    #[arg(long = "sbatch", allow_hyphen_values = true)]
    extra: Vec<String>,
}

impl Selection {
    /// The run of this selection into `run_dir`.
    fn request(&self, run_dir: &std::path::Path, threads: usize) -> RunRequest {
        RunRequest {
            profile: self.profile.clone(),
            seed: self.seed,
            assignments: self.assignments.clone(),
            run_dir: run_dir.to_path_buf(),
            threads,
            started: stages::Started::now(),
        }
    }
}

#[derive(Args)]
struct Dirs {
    /// Run directory holding the jobs and tables [default: runs/<profile>]
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// Report directory [default: reports/<run directory name>; reports/latest points at it]
    #[arg(long)]
    report_dir: Option<PathBuf>,
}

#[derive(Args)]
struct Threads {
    /// Compute threads [default: all logical cores]
    #[arg(long)]
    threads: Option<usize>,
}

impl Dirs {
    fn run_dir(&self, profile: &str) -> PathBuf {
        self.run_dir.clone().unwrap_or_else(|| PathBuf::from("runs").join(profile))
    }

    fn report_dir(&self, run_dir: &std::path::Path) -> PathBuf {
        self.report_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("reports").join(run_dir.file_name().unwrap_or(std::ffi::OsStr::new("run"))))
    }
}

fn absolute(path: &std::path::Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot make {} absolute", path.display()))
}

/// The options that make `nnlab job` (or `nnlab run`) in another process select this plan, every
/// source named absolutely (a worker may start in another directory, on another node).
fn job_arguments(sources: &Sources, selection: &Selection) -> Result<Vec<String>> {
    let mut arguments =
        vec!["--profile".to_string(), selection.profile.clone(), "--seed".to_string(), selection.seed.to_string()];
    for only in &selection.assignments {
        arguments.extend(["--only".to_string(), only.clone()]);
    }
    for (flag, path) in
        [("--catalogue", &sources.catalogue), ("--profiles", &sources.profiles), ("--data-dir", &sources.data.data_dir)]
    {
        arguments.extend([flag.to_string(), absolute(path)?.display().to_string()]);
    }
    Ok(arguments)
}

fn slurm(sources: &Sources, selection: &Selection, dirs: &Dirs, cluster: ClusterArgs, dry_run: bool) -> Result<()> {
    // The collect job renders: a report that would lack a page must not cost a cluster run first.
    let catalogue = nnlab::catalogue::Catalogue::load(&sources.catalogue)?;
    nnlab::render::check_pages(&catalogue, &sources.templates)?;
    let (_, jobs) = stages::load_plan(sources, &selection.profile, selection.seed, &selection.assignments)?;
    let run_dir = dirs.run_dir(&selection.profile);
    let store = nnlab::store::RunStore::open(&run_dir)?;
    let report_dir = absolute(&dirs.report_dir(&run_dir))?;
    let arguments = job_arguments(sources, selection)?;
    let invocation = nnlab::slurm::Invocation {
        exe: std::env::current_exe().context("cannot find the nnlab binary's own path")?,
        selection: arguments,
        run_dir: absolute(&run_dir)?,
        report_dir: report_dir.clone(),
    };
    let options = nnlab::slurm::ClusterOptions {
        partition: cluster.partition,
        account: cluster.account,
        time: cluster.time,
        cpus_per_task: cluster.cpus_per_task,
        collect_cpus: cluster.collect_cpus.unwrap_or(cluster.cpus_per_task),
        mem: cluster.mem,
        parallel: cluster.parallel,
        max_array_size: cluster.max_array_size,
        extra: cluster.extra,
    };
    let submission = nnlab::slurm::Submission { wave: 1, invocation, options };
    let prepared = nnlab::slurm::prepare(&jobs, &store, &submission)?;
    println!(
        "{} training jobs to run ({} already finished); scripts in {}",
        prepared.pending,
        prepared.finished,
        prepared.dir.display()
    );
    if dry_run {
        for script in prepared.arrays.iter().chain([&prepared.collect]) {
            println!("  {}", script.display());
        }
        println!("submit with: sbatch <array script> for each, then sbatch --dependency=afterany:<their ids> collect.sh");
        return Ok(());
    }
    let submitted = nnlab::slurm::submit(&prepared)?;
    println!("submitted array job(s) {} and continuation job {}", submitted.arrays.join(", "), submitted.collect);
    println!("follow with: nnlab status {}   (or squeue -j {})", run_dir.display(), submitted.arrays.join(","));
    println!("logs in {}; reports will be in {}", prepared.dir.join("logs").display(), report_dir.display());
    Ok(())
}

/// Entry `index` of a frozen job list, checked against its own id (a list edited by hand, or of
/// another version, is refused rather than trained under the wrong id).
fn frozen_job(list: &std::path::Path, index: usize) -> Result<nnlab::plan::Job> {
    let jobs: Vec<nnlab::plan::Job> = nnlab::store::read_list(list)?;
    let job = jobs.into_iter().nth(index).with_context(|| format!("{} has no entry {index}", list.display()))?;
    let id = &nnlab::plan::content_hash(&job.spec)[..16];
    anyhow::ensure!(job.id == id, "{} entry {index}: id {} does not match its spec (hash {id})", list.display(), job.id);
    Ok(job)
}

/// The continuation of a Slurm submission: in wave 1, the follow-ups the finished sweeps now
/// determine go out as wave 2 (with another continuation); otherwise it collects in this job.
fn slurm_next(sources: &Sources, selection: &Selection, dir: &std::path::Path) -> Result<()> {
    let path = dir.join(nnlab::slurm::SUBMISSION_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let submission: nnlab::slurm::Submission =
        serde_json::from_str(&text).with_context(|| format!("{} is not a submission", path.display()))?;
    let threads = set_threads(Some(submission.options.collect_cpus))?;
    let run_dir = submission.invocation.run_dir.clone();
    let request = selection.request(&run_dir, threads);
    if submission.wave == 1 {
        let follow_ups = stages::pending_follow_ups(sources, &request)?;
        if !follow_ups.is_empty() {
            let store = nnlab::store::RunStore::open(&run_dir)?;
            let next = nnlab::slurm::Submission { wave: 2, ..submission };
            let prepared = nnlab::slurm::prepare(&follow_ups, &store, &next)?;
            let submitted = nnlab::slurm::submit(&prepared)?;
            println!(
                "wave 2: {} follow-up jobs in array job(s) {}; continuation job {}",
                prepared.pending,
                submitted.arrays.join(", "),
                submitted.collect
            );
            return Ok(());
        }
    }
    let manifest = stages::run(sources, &request)?;
    eprintln!(
        "run finished in {:.1} s; tables in {}",
        manifest.wall_seconds.unwrap_or_default(),
        run_dir.join("tables").display()
    );
    render(sources, &run_dir, &submission.invocation.report_dir)
}

fn main() -> ExitCode {
    nnlab_nn::allocator::keep_freed_memory();
    let cli = Cli::parse();
    match execute(cli.command, cli.sources.sources()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line: every layer of context, outermost first.
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn execute(command: Command, sources: Sources) -> Result<()> {
    match command {
        Command::Plan { selection, ids } => {
            let (profile, jobs) = stages::load_plan(&sources, &selection.profile, selection.seed, &selection.assignments)?;
            if ids {
                jobs.iter().for_each(|j| println!("{}", j.id));
            } else {
                println!("profile {} ({}), seed {}: {} jobs", profile.name, profile.description, selection.seed, jobs.len());
                for j in &jobs {
                    let point = nnlab::catalogue::point_label(&j.spec.point);
                    println!(
                        "{}  {:<28} replicate {}  seed {:>20}  {} epochs  {point}",
                        j.id, j.spec.experiment, j.spec.replicate, j.spec.seed, j.spec.train.epochs
                    );
                }
            }
            let catalogue = nnlab::catalogue::Catalogue::load(&sources.catalogue)?;
            let selection_of = nnlab::plan::Selection::new(&catalogue, &selection.assignments)?;
            for experiment in catalogue.assignments.iter().flat_map(|a| &a.experiments) {
                if let (Some(f), true) = (&experiment.follow_up, selection_of.trains(&experiment.id)) {
                    eprintln!(
                        "follow-up {} is planned by `nnlab run` once {} has finished (it trains the point best on {})",
                        experiment.id, f.of, f.metric
                    );
                }
            }
            for choice in catalogue.assignments.iter().flat_map(|a| &a.choices) {
                if choice.among.iter().all(|id| selection_of.trains(id)) {
                    eprintln!(
                        "choice {} is made by `nnlab run` once {} have finished (the best on {})",
                        choice.id,
                        choice.among.join(", "),
                        choice.metric
                    );
                }
            }
        }
        Command::Fetch { datasets: names } => {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            for path in datasets::fetch(&sources.data, &names)? {
                println!("ok  {}", path.display());
            }
        }
        Command::Run { selection, dirs, threads, no_render, jobs } => {
            let threads = set_threads(threads.threads)?;
            let run_dir = dirs.run_dir(&selection.profile);
            let request = selection.request(&run_dir, threads);
            if !no_render {
                // Before any training: a report that would lack a page must not cost a run first.
                let catalogue = nnlab::catalogue::Catalogue::load(&sources.catalogue)?;
                nnlab::render::check_pages(&catalogue, &sources.templates)?;
            }
            if jobs == 0 {
                anyhow::bail!("--jobs must be at least 1");
            }
            if jobs > 1 {
                let (_, planned) = stages::load_plan(&sources, &selection.profile, selection.seed, &selection.assignments)?;
                let exe = std::env::current_exe().context("cannot find the nnlab binary's own path")?;
                let arguments = job_arguments(&sources, &selection)?;
                nnlab::workers::run_jobs_in_workers(&exe, &arguments, &run_dir, &planned, jobs, (threads / jobs).max(1))?;
            }
            let manifest = stages::run(&sources, &request)?;
            eprintln!(
                "run finished in {:.1} s; tables in {}",
                manifest.wall_seconds.unwrap_or_default(),
                run_dir.join("tables").display()
            );
            if !no_render {
                render(&sources, &run_dir, &dirs.report_dir(&run_dir))?;
            }
        }
        Command::Job { id, from, index, selection, run_dir, threads } => {
            let threads = set_threads(threads.threads)?;
            let run_dir = run_dir.unwrap_or_else(|| PathBuf::from("runs").join(&selection.profile));
            let job = match (id, from, index) {
                (_, Some(list), Some(index)) => frozen_job(&list, index)?,
                (Some(id), _, _) => {
                    let (_, jobs) = stages::load_plan(&sources, &selection.profile, selection.seed, &selection.assignments)?;
                    jobs.into_iter().find(|j| j.id == id).with_context(|| {
                        format!("no job {id} in the plan of profile {} with seed {}", selection.profile, selection.seed)
                    })?
                }
                _ => anyhow::bail!("give a job id, or --from and --index"),
            };
            stages::run_single(&sources, &job, &run_dir, threads)?;
        }
        Command::SlurmNext { submission, selection } => slurm_next(&sources, &selection, &submission)?,
        Command::Slurm { selection, dirs, cluster, dry_run } => slurm(&sources, &selection, &dirs, cluster, dry_run)?,
        Command::Status { run_dir } => {
            let status = nnlab::slurm::status(&run_dir)?;
            println!(
                "{}: {} of {} training jobs finished, {} started (running, or left by a killed worker), {} missing",
                run_dir.display(),
                status.finished,
                status.planned,
                status.started,
                status.missing
            );
            if status.missing + status.started == 0 {
                println!("every training job is finished; `nnlab run` (or a Slurm submission's continuation job) aggregates and renders");
            }
        }
        Command::Bench { experiments, runs, seconds, out_dir, peer, threads } => {
            let threads = set_threads(threads.threads)?;
            bench(&sources, &experiments, runs, seconds, &out_dir, peer.as_deref(), threads)?;
        }
        Command::Compare { a, b, out_dir, acc_noise, loss_noise, speed_noise } => {
            let noise = nnlab::compare::Noise { acc_points: acc_noise, loss_relative: loss_noise, speed_relative: speed_noise };
            compare(&a, &b, noise, &sources.templates, &out_dir)?;
        }
        Command::Catalogue => {
            let catalogue = nnlab::catalogue::Catalogue::load(&sources.catalogue)?;
            let mut entries = Vec::new();
            for experiment in catalogue.assignments.iter().flat_map(|a| &a.experiments).filter(|e| e.follow_up.is_none()) {
                for point in experiment.points(None) {
                    let mut entry = serde_json::to_value(experiment.at_point(&experiment.sweep, &point)?)?;
                    entry["point"] = nnlab::catalogue::point_label(&point).into();
                    entries.push(entry);
                }
            }
            println!("{}", serde_json::to_string_pretty(&entries)?);
        }
        Command::Key { run_dir, out } => {
            let key = stages::answer_key(&sources, &run_dir)?.to_toml()?;
            match out {
                Some(path) => {
                    nnlab_report::write_atomic(&path, key.as_bytes())?;
                    eprintln!("wrote {}", path.display());
                }
                None => print!("{key}"),
            }
        }
        Command::Grade { key, submission, out_dir } => {
            let answer_key = nnlab::key::AnswerKey::read(&key)?;
            let submitted = nnlab::grade::read_submission(&submission)?;
            let grade = nnlab::grade::grade(&answer_key, &submitted)?;
            let page = nnlab::grade::write(&grade, &answer_key, &key, &submission, &sources.templates, &out_dir)?;
            println!(
                "{} within, {} outside, {} missing, {} unknown ids; machine-dependent (times, speeds), counted apart: {} of {} within; wrote {}",
                grade.within,
                grade.outside,
                grade.missing,
                grade.unknown,
                grade.machine_within,
                grade.machine_total,
                page.display()
            );
        }
        Command::Render { dirs, profile } => {
            let run_dir = dirs.run_dir(&profile);
            render(&sources, &run_dir, &dirs.report_dir(&run_dir))?;
        }
    }
    Ok(())
}

fn render(sources: &Sources, run_dir: &std::path::Path, out_dir: &std::path::Path) -> Result<()> {
    let pages = stages::render(sources, run_dir, out_dir)?;
    if dirs_is_default_reports(out_dir) {
        stages::update_latest_link(out_dir)?;
    }
    for page in pages {
        println!("wrote {}", page.display());
    }
    Ok(())
}

fn bench(
    sources: &Sources,
    only: &[String],
    runs: usize,
    seconds: f64,
    out_dir: &std::path::Path,
    peer: Option<&std::path::Path>,
    threads: usize,
) -> Result<()> {
    // Read before the long benchmark, so that a bad peer file fails at once.
    let peers = match peer {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            Some(nnlab::bench::parse_peer(&text)?)
        }
        None => None,
    };
    let catalogue = nnlab::catalogue::Catalogue::load(&sources.catalogue)?;
    // A sweep is measured at its first point, under its own id; a follow-up trains a sweep's model.
    let experiments: Vec<nnlab::catalogue::Experiment> = catalogue
        .assignments
        .iter()
        .flat_map(|a| &a.experiments)
        .filter(|e| e.follow_up.is_none())
        .filter(|e| only.is_empty() || only.contains(&e.id))
        .map(|e| match e.points(None).first() {
            Some(point) if !point.is_empty() => e.at_point(&e.sweep, point),
            _ => Ok(e.clone()),
        })
        .collect::<Result<_>>()?;
    if let Some(unknown) = only.iter().find(|id| !experiments.iter().any(|e| &e.id == *id)) {
        anyhow::bail!("unknown experiment `{unknown}`");
    }
    let hardware = nnlab::manifest::Hardware::detect(threads);
    let (rustc, _) = nnlab::manifest::build_versions();
    let fingerprint = format!(
        "Machine: {}, {} logical cores, {} compute threads, {} GiB; {}; {}; commit {}; {}.",
        hardware.cpu_model,
        hardware.logical_cores,
        threads,
        hardware.memory_gib,
        nnlab::manifest::os_description(),
        rustc,
        nnlab::manifest::git_commit(),
        nnlab::manifest::utc_now()
    );
    let mut rows = Vec::new();
    for experiment in experiments {
        let row = nnlab::bench::bench_experiment(&experiment, runs, seconds)?;
        eprintln!("{:<24} {:>10.0} samples/s (median of {})", row.experiment, row.median_samples_per_s, row.runs.len());
        rows.push(row);
    }
    std::fs::create_dir_all(out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let table = nnlab::bench::markdown(&rows, &fingerprint);
    nnlab_report::write_atomic(&out_dir.join("throughput.md"), table.as_bytes())?;
    nnlab_report::write_atomic(&out_dir.join("throughput.csv"), nnlab::bench::csv(&rows).as_bytes())?;
    nnlab_report::write_atomic(&out_dir.join("throughput.jsonl"), nnlab::bench::json_lines(&rows)?.as_bytes())?;
    println!("{table}");
    if let Some(peers) = peers {
        let comparison = nnlab::bench::comparison_markdown(&rows, &peers, &fingerprint);
        nnlab_report::write_atomic(&out_dir.join("comparison.md"), comparison.as_bytes())?;
        nnlab_report::write_atomic(&out_dir.join("comparison.csv"), nnlab::bench::comparison_csv(&rows, &peers).as_bytes())?;
        println!("{comparison}");
    }
    Ok(())
}

fn compare(
    a: &std::path::Path,
    b: &std::path::Path,
    noise: nnlab::compare::Noise,
    templates: &std::path::Path,
    out_dir: &std::path::Path,
) -> Result<()> {
    use nnlab::compare::{Comparison, Side};
    let (side_a, side_b) = (Side::load(a)?, Side::load(b)?);
    let comparison = Comparison::new(&side_a, &side_b, noise)?;
    std::fs::create_dir_all(out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let page = nnlab::compare::page::write(&comparison, &side_a, &side_b, templates, out_dir)?;
    for row in comparison.rows.iter().filter(|r| r.verdict != nnlab::compare::Verdict::Identical) {
        let point = if row.point.is_empty() { String::new() } else { format!(" [{}]", row.point) };
        println!("{}{point} {}: {}", row.experiment, row.metric.name(), row.verdict.text());
    }
    let identical = comparison.rows.iter().filter(|r| r.verdict == nnlab::compare::Verdict::Identical).count();
    println!("{identical} of {} rows identical; wrote {}", comparison.rows.len(), page.display());
    Ok(())
}

/// `reports/latest` is maintained only inside the default reports folder.
fn dirs_is_default_reports(out_dir: &std::path::Path) -> bool {
    out_dir.parent() == Some(std::path::Path::new("reports"))
}

/// Fixes the compute thread count before any pool exists: candle reads RAYON_NUM_THREADS, and the
/// global rayon pool is built once. The same thread count is part of "same seed ⇒ same result".
fn set_threads(requested: Option<usize>) -> Result<usize> {
    let threads = match requested {
        Some(0) => anyhow::bail!("--threads must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    // candle runs its element-wise ops on a second pool of its own whose workers spin for a while
    // after every op; between ops they take a core from the matrix products on rayon's pool (on two
    // cores, a7a.weight_decay trained 21% slower for it). One thread leaves those ops on the
    // calling thread; they are element by element, so their results do not depend on it.
    std::env::set_var("CANDLE_NUM_THREADS", "1");
    // Every thread that computes (the pool's and this one, which takes part in parallel work) flushes
    // subnormals to zero, as TensorFlow's do.
    nnlab_nn::float_mode::flush_subnormals_on_this_thread();
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .start_handler(|_| nnlab_nn::float_mode::flush_subnormals_on_this_thread())
        .build_global()
        .context("cannot set up the compute thread pool")?;
    Ok(threads)
}
