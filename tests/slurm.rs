//! The smoke profile through a real Slurm: a job array of at most 2 tasks at once, one task cancelled
//! mid-run (and the continuation job with it), a resubmission whose continuation sends the follow-ups
//! out as a second wave and then collects, and results bit-identical to a local `nnlab run` with the
//! same seed and threads, no job having run twice.
//!
//! It needs a running Slurm controller and node, which `.ci/slurm-up.sh` starts (`.ci/run` does, then
//! runs this test with `make test` and NNLAB_SLURM=1); without one it is ignored, visibly.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod common;
use common::mirror;

fn nnlab(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_nnlab"))
        .args(args)
        .env("NNLAB_DATA_MIRROR", mirror())
        .env("NNLAB_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "nnlab {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn slurm_command(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e} (is Slurm installed? .ci/slurm-up.sh starts one)"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The ids `nnlab slurm` printed: the array jobs and the collect job.
fn submitted_ids(stdout: &str) -> (Vec<String>, String) {
    let line = stdout.lines().find(|l| l.starts_with("submitted")).unwrap_or_else(|| panic!("no submission line in {stdout}"));
    // "submitted array job(s) 12, 13 and continuation job 14"
    let (arrays, collect) = line.trim_start_matches("submitted array job(s) ").split_once(" and continuation job ").unwrap();
    let arrays = arrays.split(", ").filter(|s| !s.is_empty()).map(String::from).collect();
    (arrays, collect.trim().to_string())
}

/// Waits until none of `ids` is queued or running any more.
fn wait_until_gone(ids: &[String], limit: Duration) {
    let started = Instant::now();
    loop {
        let queue = slurm_command("squeue", &["-h", "-o", "%i %T", "-j", &ids.join(",")]);
        if queue.trim().is_empty() {
            return;
        }
        assert!(started.elapsed() < limit, "Slurm jobs {ids:?} still queued after {limit:?}:\n{queue}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Waits until Slurm's queue is empty (this test's jobs submit further jobs of their own).
fn wait_until_queue_empty(limit: Duration) {
    let started = Instant::now();
    while !slurm_command("squeue", &["-h", "-o", "%i"]).trim().is_empty() {
        assert!(started.elapsed() < limit, "Slurm's queue is not empty after {limit:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Every training job's history without its wall times, and its test metrics, by job id.
fn histories(run_dir: &Path) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(run_dir.join("jobs")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        // Partial directories, and evaluation jobs (no history), are not training results.
        if name.contains(".partial-") || !path.join("history.csv").is_file() {
            continue;
        }
        let text = std::fs::read_to_string(path.join("history.csv")).unwrap();
        // epoch,loss,acc,val_loss,val_acc,seconds,train_seconds: drop the two times.
        let values: String = text.lines().map(|line| line.rsplitn(3, ',').nth(2).unwrap().to_string() + "\n").collect();
        let result = std::fs::read_to_string(path.join("result.json")).unwrap();
        let result: serde_json::Value = serde_json::from_str(&result).unwrap();
        out.insert(name, format!("{values}{}", result["test"]));
    }
    out
}

/// "N jobs ran" summed over the logs of every task and collect job of the run.
fn jobs_ran(run_dir: &Path) -> usize {
    let mut total = 0;
    for submission in std::fs::read_dir(run_dir.join("slurm")).unwrap() {
        for log in std::fs::read_dir(submission.unwrap().path().join("logs")).unwrap() {
            let text = std::fs::read_to_string(log.unwrap().path()).unwrap();
            total += text
                .lines()
                .filter_map(|l| l.strip_suffix(" reused from earlier runs")?.split(" jobs ran").next()?.parse::<usize>().ok())
                .sum::<usize>();
        }
    }
    total
}

#[test]
#[ignore = "needs a running Slurm (.ci/slurm-up.sh); .ci/run runs it with NNLAB_SLURM=1"]
fn the_smoke_profile_on_slurm_matches_a_local_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (local, cluster) = (tmp.path().join("local"), tmp.path().join("cluster"));
    // a7b has a sweep with a follow-up (a second wave) and evaluation jobs; a1's Playground study
    // runs in the collect step.
    let selection = ["--profile", "smoke", "--seed", "42", "--only", "a7b", "--only", "a1.playground"];
    let only = ["a7b".to_string(), "a1.playground".to_string()];
    let (_, planned) = nnlab::stages::load_plan(&nnlab::stages::Sources::default(), "smoke", 42, &only).unwrap();
    assert!(planned.len() >= 8, "the array should have at least 8 tasks, the plan has {}", planned.len());

    let mut args = vec!["run", "--threads", "1", "--no-render", "--run-dir", local.to_str().unwrap()];
    args.extend(selection);
    nnlab(&args);

    // First submission: at most 2 tasks at once; one task is cancelled while it runs, the
    // continuation job with it, so the run is left unfinished.
    let report = tmp.path().join("report");
    let mut submit = vec!["slurm", "--cpus-per-task", "1", "--parallel", "2", "--run-dir", cluster.to_str().unwrap()];
    submit.extend(["--report-dir", report.to_str().unwrap()]);
    submit.extend(selection);
    let started = Instant::now();
    let stdout = String::from_utf8_lossy(&nnlab(&submit).stdout).to_string();
    let (arrays, collect) = submitted_ids(&stdout);
    let running = loop {
        let queue = slurm_command("squeue", &["-h", "-t", "RUNNING", "-o", "%i", "-j", &arrays.join(",")]);
        if let Some(task) = queue.lines().map(str::trim).find(|id| id.contains('_')) {
            break task.to_string();
        }
        assert!(started.elapsed() < Duration::from_secs(120), "no array task started within 2 minutes");
        std::thread::sleep(Duration::from_millis(200));
    };
    slurm_command("scancel", &[&running, &collect]);
    let mut all = arrays.clone();
    all.push(collect);
    wait_until_gone(&all, Duration::from_secs(600));
    let status = String::from_utf8_lossy(&nnlab(&["status", cluster.to_str().unwrap()]).stdout).to_string();
    assert!(
        !status.contains(&format!("{0} of {0} training jobs finished", planned.len())),
        "the cancel left nothing to do: {status}"
    );

    // The resubmission submits only what is missing; its continuation sends the follow-ups out as a
    // second wave, whose continuation collects and renders.
    let stdout = String::from_utf8_lossy(&nnlab(&submit).stdout).to_string();
    let pending: usize = stdout.split_whitespace().next().unwrap().parse().unwrap();
    assert!(pending >= 1 && pending < planned.len(), "{stdout}");
    wait_until_queue_empty(Duration::from_secs(600));
    let waves = std::fs::read_dir(cluster.join("slurm")).unwrap().count();
    assert_eq!(waves, 3, "submission, resubmission and the follow-ups' wave");
    let follow_ups = std::fs::read_to_string(cluster.join("slurm/3/jobs.txt")).unwrap();
    assert!(follow_ups.lines().count() >= 1 && follow_ups.lines().all(|l| l.contains("a7b.grid_best")), "{follow_ups}");
    let status = String::from_utf8_lossy(&nnlab(&["status", cluster.to_str().unwrap()]).stdout).to_string();
    // The collect's own `nnlab run` records the plan with its follow-ups.
    assert!(status.contains(" 0 started") && status.contains(" 0 missing"), "{status}");
    assert!(report.join("a7b.html").is_file(), "the collect job rendered no report");
    eprintln!(
        "slurm: {} tasks and the follow-ups, one cancelled and resubmitted, in {:.1} s",
        planned.len(),
        started.elapsed().as_secs_f64()
    );

    // Same results as the local run, bit for bit (the follow-ups included), and every training job
    // trained to completion exactly once.
    let trained = histories(&local);
    assert!(trained.len() > planned.len(), "the local run trained the follow-ups too");
    assert_eq!(histories(&cluster), trained);
    assert_eq!(
        std::fs::read_to_string(cluster.join("tables/playground.csv")).unwrap(),
        std::fs::read_to_string(local.join("tables/playground.csv")).unwrap()
    );
    assert_eq!(jobs_ran(&cluster), trained.len(), "a job ran to completion twice (or not at all)");
}
