//! Scale-out on Slurm: the plan's training jobs as job arrays (task k runs entry k of a frozen job
//! list through `nnlab job --from`), then a continuation job after them (`nnlab slurm-next`): once,
//! it submits the follow-ups their sweeps now determine as a second wave of arrays, with another
//! continuation after it; otherwise it collects, running `nnlab run` on the same run directory: it
//! finds every finished job, runs what is left and what depends on the trainings (choices,
//! evaluations, projections, the Playground study), aggregates and renders.
//!
//! Nothing here relies on Slurm's accounting or on nodes seeing each other's writes at once: a job
//! is finished when its directory, completion marker last, has been renamed into place (see
//! `store.rs`), so resubmitting the same run submits only what is missing and a task whose job is
//! already finished exits at once.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::plan::Job;
use crate::store::RunStore;

/// What the cluster needs to know, passed through to `#SBATCH` lines.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClusterOptions {
    pub partition: Option<String>,
    pub account: Option<String>,
    /// Per task, in Slurm's format (e.g. `2:00:00`).
    pub time: Option<String>,
    /// Per task; also the threads each `nnlab job` uses.
    pub cpus_per_task: usize,
    /// The collect job's CPUs (and threads): it runs the follow-ups, evaluations, projections and
    /// the Playground study on one node, so it may want more than a task.
    pub collect_cpus: usize,
    /// Per task, in Slurm's format (e.g. `4G`).
    pub mem: Option<String>,
    /// At most this many array tasks at once (`%P`); none: as many as the cluster gives.
    pub parallel: Option<usize>,
    /// The cluster's MaxArraySize: longer job lists are split into several arrays.
    pub max_array_size: usize,
    /// Further `#SBATCH` lines, without the prefix (e.g. `--qos=long`).
    pub extra: Vec<String>,
}

/// How every task and the collect job call nnlab: the binary and the options that select the plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Invocation {
    pub exe: PathBuf,
    /// `--profile … --seed … --only …` and source options, as `nnlab job` and `nnlab run` take them.
    pub selection: Vec<String>,
    pub run_dir: PathBuf,
    pub report_dir: PathBuf,
}

/// What the continuation job of a submission needs: how to call nnlab, the cluster's options, and
/// which wave this is (1: the plan's jobs; 2: the follow-ups; a wave-2 continuation always collects).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Submission {
    pub wave: usize,
    pub invocation: Invocation,
    pub options: ClusterOptions,
}

/// The file of a submission directory that holds its [`Submission`].
pub const SUBMISSION_FILE: &str = "submission.json";

/// The scripts of one submission, written under `<run>/slurm/<n>/`.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub dir: PathBuf,
    /// Training jobs not yet finished, in plan order (entry k of jobs.json is task k overall).
    pub pending: usize,
    pub finished: usize,
    /// One array script per chunk of at most `max_array_size` tasks.
    pub arrays: Vec<PathBuf>,
    pub collect: PathBuf,
}

/// What `sbatch` said.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub arrays: Vec<String>,
    pub collect: String,
}

/// Freezes the unfinished jobs of `jobs` (the plan's in wave 1, the follow-ups in wave 2) and writes
/// the array and continuation scripts.
pub fn prepare(jobs: &[Job], store: &RunStore, submission: &Submission) -> Result<Prepared> {
    let options = &submission.options;
    if options.cpus_per_task == 0 || options.collect_cpus == 0 || options.max_array_size == 0 || options.parallel == Some(0) {
        bail!("--cpus-per-task, --collect-cpus, --max-array-size and --parallel must be at least 1");
    }
    let pending: Vec<&Job> = jobs.iter().filter(|j| !store.is_complete(&j.id)).collect();
    let dir = next_submission_dir(store.root())?;
    std::fs::create_dir_all(dir.join("logs"))?;
    if submission.wave == 1 {
        store.write_json("plan.json", &jobs)?;
    }
    // The specs themselves, not ids: a follow-up's job is known only once its sweep has finished.
    crate::store::write_json(&dir.join("jobs.json"), &pending)?;
    let list: String = pending.iter().map(|j| format!("{} {} #{}\n", j.id, j.spec.experiment, j.spec.replicate)).collect();
    nnlab_report::write_atomic(&dir.join("jobs.txt"), list.as_bytes())?;
    crate::store::write_json(&dir.join(SUBMISSION_FILE), submission)?;

    let mut arrays = Vec::new();
    for (chunk, start) in (0..pending.len()).step_by(options.max_array_size).enumerate() {
        let len = options.max_array_size.min(pending.len() - start);
        let path = dir.join(format!("array-{chunk}.sh"));
        write_script(&path, &array_script(&dir, &submission.invocation, options, start, len)?)?;
        arrays.push(path);
    }
    let collect = dir.join("collect.sh");
    write_script(&collect, &collect_script(&dir, &submission.invocation, options)?)?;
    Ok(Prepared { dir, pending: pending.len(), finished: jobs.len() - pending.len(), arrays, collect })
}

/// Submits the arrays, then the collect job after all of them (`afterany`: it runs whatever the
/// tasks left, reports what is still missing, and a resubmission picks that up).
pub fn submit(prepared: &Prepared) -> Result<Submitted> {
    let mut arrays = Vec::new();
    for script in &prepared.arrays {
        arrays.push(sbatch(&[], script)?);
    }
    let dependency = (!arrays.is_empty()).then(|| format!("--dependency=afterany:{}", arrays.join(":")));
    let collect = sbatch(dependency.as_deref().into_iter().collect::<Vec<_>>().as_slice(), &prepared.collect)?;
    Ok(Submitted { arrays, collect })
}

fn sbatch(args: &[&str], script: &Path) -> Result<String> {
    let output = Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .arg(script)
        .output()
        .context("cannot run sbatch (is Slurm's client installed and on PATH?)")?;
    if !output.status.success() {
        bail!("sbatch {} failed: {}", script.display(), String::from_utf8_lossy(&output.stderr).trim().replace('\n', " "));
    }
    // --parsable prints "jobid" or "jobid;cluster".
    let text = String::from_utf8_lossy(&output.stdout);
    let id = text.trim().split(';').next().unwrap_or_default().to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!("sbatch {} printed no job id: {text:?}", script.display());
    }
    Ok(id)
}

/// `<run>/slurm/1`, `2`, …: each submission keeps its own job list, scripts and logs.
fn next_submission_dir(run_dir: &Path) -> Result<PathBuf> {
    let base = run_dir.join("slurm");
    std::fs::create_dir_all(&base).with_context(|| format!("cannot create {}", base.display()))?;
    let used = std::fs::read_dir(&base)?.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<usize>().ok()).max().unwrap_or(0);
    Ok(base.join((used + 1).to_string()))
}

/// The `#SBATCH` lines of a script; `array` is the array's range (with its `%P`), if it is one.
fn header(name: &str, dir: &Path, options: &ClusterOptions, output: &str, cpus: usize, array: Option<String>) -> String {
    let mut lines = vec!["#!/bin/bash".to_string()];
    lines.extend(array.map(|range| format!("#SBATCH --array={range}")));
    lines.extend([
        format!("#SBATCH --job-name={name}"),
        format!("#SBATCH --output={}", dir.join("logs").join(output).display()),
        format!("#SBATCH --cpus-per-task={cpus}"),
        // A preempted or timed-out task may run again: its partial directory is abandoned and the
        // job starts over; a finished one exits at once.
        "#SBATCH --requeue".to_string(),
    ]);
    let optional =
        [("partition", &options.partition), ("account", &options.account), ("time", &options.time), ("mem", &options.mem)];
    for (key, value) in optional {
        if let Some(value) = value {
            lines.push(format!("#SBATCH --{key}={value}"));
        }
    }
    lines.extend(options.extra.iter().map(|extra| format!("#SBATCH {extra}")));
    lines.join("\n") + "\n"
}

fn quoted(path: &Path) -> Result<String> {
    let text = path.to_str().with_context(|| format!("{} is not valid UTF-8", path.display()))?;
    Ok(shell_quote(text))
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn array_script(dir: &Path, invocation: &Invocation, options: &ClusterOptions, start: usize, len: usize) -> Result<String> {
    // The array is submitted with its range in the script, so sbatch needs no arguments.
    let parallel = options.parallel.map_or(String::new(), |p| format!("%{p}"));
    let range = format!("0-{}{parallel}", len - 1);
    let mut script = header("nnlab-job", dir, options, "task-%A_%a.out", options.cpus_per_task, Some(range));
    let selection: Vec<String> = invocation.selection.iter().map(|a| shell_quote(a)).collect();
    script += &format!(
        r#"set -euo pipefail
# Task k of this array runs entry {start} + k of the frozen job list (jobs.txt lists them for people).
exec {exe} job --from {jobs} --index $(( {start} + SLURM_ARRAY_TASK_ID )) {selection} --run-dir {run_dir} --threads {threads}
"#,
        jobs = quoted(&dir.join("jobs.json"))?,
        exe = quoted(&invocation.exe)?,
        selection = selection.join(" "),
        run_dir = quoted(&invocation.run_dir)?,
        threads = options.cpus_per_task,
    );
    Ok(script)
}

fn collect_script(dir: &Path, invocation: &Invocation, options: &ClusterOptions) -> Result<String> {
    let mut script = header("nnlab-next", dir, options, "next-%j.out", options.collect_cpus, None);
    let selection: Vec<String> = invocation.selection.iter().map(|a| shell_quote(a)).collect();
    script += &format!(
        "set -euo pipefail\n# Submits the next wave (the follow-ups) if there is one, else collects: runs what is still\n\
         # missing and everything that depends on the trainings, aggregates, renders.\n\
         exec {exe} slurm-next --submission {dir} {selection}\n",
        exe = quoted(&invocation.exe)?,
        dir = quoted(dir)?,
        selection = selection.join(" "),
    );
    Ok(script)
}

fn write_script(path: &Path, text: &str) -> Result<()> {
    nnlab_report::write_atomic(path, text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// How far a run directory's plan has got, from the run store alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub planned: usize,
    pub finished: usize,
    /// Jobs with a partial directory (running now, or abandoned by a killed worker).
    pub started: usize,
    pub missing: usize,
}

/// Counts the planned training jobs of `run_dir` (its `plan.json`) by state.
pub fn status(run_dir: &Path) -> Result<Status> {
    let plan_path = run_dir.join("plan.json");
    if !plan_path.exists() {
        bail!("{} has no plan.json: nothing was run or submitted into it", run_dir.display());
    }
    let jobs: Vec<Job> = crate::store::read_list(&plan_path)?;
    let store = RunStore::open(run_dir)?;
    let partial_ids: std::collections::BTreeSet<String> = std::fs::read_dir(run_dir.join("jobs"))?
        .filter_map(|e| Some(e.ok()?.file_name().to_str()?.split_once(".partial-")?.0.to_string()))
        .collect();
    let finished = jobs.iter().filter(|j| store.is_complete(&j.id)).count();
    let started = jobs.iter().filter(|j| !store.is_complete(&j.id) && partial_ids.contains(&j.id)).count();
    Ok(Status { planned: jobs.len(), finished, started, missing: jobs.len() - finished - started })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_survives_quotes_and_spaces() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn the_array_script_picks_its_line_and_passes_the_cluster_options() {
        let tmp = tempfile::tempdir().unwrap();
        let invocation = Invocation {
            exe: PathBuf::from("/opt/nnlab"),
            selection: vec!["--profile".into(), "smoke".into(), "--seed".into(), "7".into()],
            run_dir: PathBuf::from("/shared/run"),
            report_dir: PathBuf::from("/shared/report"),
        };
        let options = ClusterOptions {
            partition: Some("cpu".into()),
            time: Some("1:00:00".into()),
            cpus_per_task: 2,
            collect_cpus: 4,
            parallel: Some(3),
            max_array_size: 1000,
            extra: vec!["--qos=long".into()],
            ..ClusterOptions::default()
        };
        let script = array_script(tmp.path(), &invocation, &options, 1000, 5).unwrap();
        assert!(script.starts_with("#!/bin/bash\n#SBATCH --array=0-4%3\n"), "{script}");
        for line in ["#SBATCH --partition=cpu", "#SBATCH --time=1:00:00", "#SBATCH --cpus-per-task=2", "#SBATCH --qos=long"] {
            assert!(script.contains(line), "{line} missing:\n{script}");
        }
        let expected = format!(
            "exec '/opt/nnlab' job --from '{}' --index $(( 1000 + SLURM_ARRAY_TASK_ID )) '--profile' 'smoke' '--seed' '7' \
             --run-dir '/shared/run' --threads 2",
            tmp.path().join("jobs.json").display()
        );
        assert!(script.contains(&expected), "{script}");
        let collect = collect_script(tmp.path(), &invocation, &options).unwrap();
        assert!(collect.contains("#SBATCH --partition=cpu") && collect.contains("#SBATCH --cpus-per-task=4"));
        let next = format!("exec '/opt/nnlab' slurm-next --submission '{}' '--profile' 'smoke'", tmp.path().display());
        assert!(!collect.contains("--array") && collect.contains(&next), "{collect}");
    }

    #[test]
    fn a_submission_freezes_only_unfinished_jobs_and_splits_long_lists() {
        let tmp = tempfile::tempdir().unwrap();
        let (_, jobs) = crate::stages::load_plan(&crate::stages::Sources::default(), "smoke", 42, &["tp".into()]).unwrap();
        assert!(jobs.len() >= 5, "tp's smoke plan has {} jobs", jobs.len());
        let store = RunStore::open(tmp.path()).unwrap();
        // The first job finished earlier; another was started and abandoned.
        std::fs::create_dir_all(tmp.path().join("jobs").join(&jobs[0].id)).unwrap();
        std::fs::write(tmp.path().join("jobs").join(&jobs[0].id).join(crate::store::DONE_MARKER), "{}").unwrap();
        std::fs::create_dir_all(tmp.path().join("jobs").join(format!("{}.partial-host-1", jobs[1].id))).unwrap();
        let invocation = Invocation {
            exe: PathBuf::from("nnlab"),
            selection: vec![],
            run_dir: tmp.path().to_path_buf(),
            report_dir: tmp.path().join("report"),
        };
        let options = ClusterOptions { cpus_per_task: 1, collect_cpus: 1, max_array_size: 2, ..ClusterOptions::default() };
        let submission = Submission { wave: 1, invocation, options };
        let prepared = prepare(&jobs, &store, &submission).unwrap();
        assert_eq!((prepared.pending, prepared.finished), (jobs.len() - 1, 1));
        let list = std::fs::read_to_string(prepared.dir.join("jobs.txt")).unwrap();
        let listed: Vec<&str> = list.lines().map(|l| l.split(' ').next().unwrap()).collect();
        assert_eq!(listed, jobs[1..].iter().map(|j| j.id.as_str()).collect::<Vec<_>>());
        let frozen: Vec<Job> = crate::store::read_list(&prepared.dir.join("jobs.json")).unwrap();
        assert_eq!(frozen, jobs[1..].to_vec());
        assert_eq!(prepared.arrays.len(), (jobs.len() - 1).div_ceil(2));
        let last = std::fs::read_to_string(prepared.arrays.last().unwrap()).unwrap();
        let start = 2 * (prepared.arrays.len() - 1);
        assert!(last.contains(&format!("--index $(( {start} + SLURM_ARRAY_TASK_ID ))")), "{last}");
        // A second submission gets its own directory.
        assert!(prepare(&jobs, &store, &submission).unwrap().dir.ends_with("slurm/2"));
        assert_eq!(status(tmp.path()).unwrap(), Status { planned: jobs.len(), finished: 1, started: 1, missing: jobs.len() - 2 });
    }
}
