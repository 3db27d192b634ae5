//! Local scale-out for a workstation without Slurm: the plan's unfinished training jobs run as
//! `nnlab job` processes, N at a time, against the same run directory (one training rarely keeps
//! many cores busy). Each worker's output goes to `<run>/workers/<job>.log`; the run store's atomic
//! job directories make the workers independent of each other.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::plan::Job;
use crate::store::RunStore;

/// Runs every unfinished job of `jobs` in `workers` parallel `nnlab job` processes of `threads`
/// threads each; `arguments` select the plan (`--profile … --seed … --only …` and sources). Returns
/// how many ran; fails, naming each failed job and its log, if any did.
pub fn run_jobs_in_workers(
    exe: &Path,
    arguments: &[String],
    run_dir: &Path,
    jobs: &[Job],
    workers: usize,
    threads: usize,
) -> Result<usize> {
    let store = RunStore::open(run_dir)?;
    let logs = run_dir.join("workers");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let mut queue: Vec<&Job> = jobs.iter().filter(|j| !store.is_complete(&j.id)).rev().collect();
    let total = queue.len();
    eprintln!("{total} jobs in {workers} worker processes of {threads} threads; logs in {}", logs.display());
    let mut running: Vec<(Child, &Job, PathBuf)> = Vec::new();
    let mut failed = Vec::new();
    let mut done = 0;
    while !queue.is_empty() || !running.is_empty() {
        while running.len() < workers {
            let Some(job) = queue.pop() else { break };
            let log = logs.join(format!("{}.log", job.id));
            let file = std::fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
            let child = Command::new(exe)
                .arg("job")
                .arg(&job.id)
                .args(arguments)
                .arg("--run-dir")
                .arg(run_dir)
                .arg("--threads")
                .arg(threads.to_string())
                .stdout(Stdio::null())
                .stderr(file)
                .spawn()
                .with_context(|| format!("cannot start {} job {}", exe.display(), job.id))?;
            running.push((child, job, log));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        let mut index = 0;
        while index < running.len() {
            if let Some(status) = running[index].0.try_wait()? {
                let (_, job, log) = running.swap_remove(index);
                done += 1;
                let label = format!("{} #{} ({})", job.spec.experiment, job.spec.replicate, job.id);
                if status.success() {
                    eprintln!("[{done}/{total}] {label} finished");
                } else {
                    eprintln!("[{done}/{total}] {label} failed ({status}); see {}", log.display());
                    failed.push(format!("{label}: see {}", log.display()));
                }
            } else {
                index += 1;
            }
        }
    }
    if !failed.is_empty() {
        bail!("{} of {total} worker jobs failed: {}", failed.len(), failed.join("; "));
    }
    Ok(total)
}
