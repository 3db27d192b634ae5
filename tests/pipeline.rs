//! The whole pipeline on the smoke profile, on real MNIST from the mirror, through the `nnlab` binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nnlab::analysis::ProjectionResult;
use nnlab::manifest::RunManifest;
use nnlab::separation::SeparationTables;
use nnlab::tables::Tables;
use polars::prelude::{col, lit, IntoLazy};

mod common;
mod smoke_snapshot;

use common::mirror;

fn nnlab(args: &[&str], extra_env: &[(&str, &Path)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nnlab"));
    cmd.args(args).env("NNLAB_DATA_MIRROR", mirror()).env("NNLAB_OFFLINE", "1");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd
}

/// A small catalogue (a dense net with dropout, a tiny CNN) for the tests of the run mechanics, so
/// they do not pay for the assignment CNNs; returns its directory.
fn test_catalogue(dir: &Path) -> PathBuf {
    write_test_catalogue(dir, "")
}

/// The same catalogue with an analysis stage: the MLP keeps its hidden layer's activations, which
/// are projected (t-SNE and PCA) beside the raw pixels.
fn test_catalogue_with_analysis(dir: &Path) -> PathBuf {
    write_test_catalogue(dir, "\n[analysis]\ndataset = \"mnist\"\nmethods = [\"tsne\", \"pca\"]\nk = 10\nk_max = 30\n")
}

fn write_test_catalogue(dir: &Path, analysis: &str) -> PathBuf {
    let catalogue = dir.join("catalogue");
    std::fs::create_dir_all(&catalogue).unwrap();
    std::fs::write(
        catalogue.join("t1.toml"),
        r#"id = "t1"
title = "run mechanics"

[[experiment]]
id = "t1.mlp"
description = "dense with dropout"
dataset = "mnist"
validation = { split = 0.2 }
{activations}
model = { input = [784], layers = [
  { type = "dense", units = 64, activation = "relu" }, { type = "dropout", rate = 0.2 },
  { type = "dense", units = 10, activation = "softmax" } ] }
train = { epochs = 12, batch_size = 128, optimizer = { name = "rmsprop" }, loss = "categorical_crossentropy" }

[[experiment]]
id = "t1.cnn"
description = "tiny CNN"
dataset = "mnist"
validation = "test"
model = { input = [28, 28, 1], layers = [
  { type = "conv2d", filters = 4, kernel = [3, 3], padding = "same", activation = "relu" },
  { type = "max_pool2d", pool = [2, 2] }, { type = "flatten" },
  { type = "dense", units = 10, activation = "softmax" } ] }
train = { epochs = 6, batch_size = 128, optimizer = { name = "adadelta" }, loss = "categorical_crossentropy" }
"#
        .replace("{activations}", if analysis.is_empty() { "" } else { "activations = { layer = \"dense\" }" })
            + analysis,
    )
    .unwrap();
    catalogue
}

fn run_ok(args: &[&str]) -> Output {
    let out = nnlab(args, &[]).output().expect("nnlab runs");
    assert!(out.status.success(), "nnlab {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn manifest(run_dir: &Path) -> RunManifest {
    serde_json::from_str(&std::fs::read_to_string(run_dir.join("manifest.json")).unwrap()).unwrap()
}

/// The text of `<span class="answer" data-answer="ID">…</span>` in a page.
fn answer(html: &str, id: &str) -> String {
    let marker = format!("data-answer=\"{id}\">");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no answer {id} in the page")) + marker.len();
    html[start..start + html[start..].find("</span>").unwrap()].to_string()
}

/// The first two decimal numbers of a text, e.g. "91.23 ± 0.45 % (n = 2)" → (91.23, 0.45).
fn two_numbers(text: &str) -> (f64, f64) {
    let nums: Vec<f64> = text
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter(|s| !s.is_empty() && s.contains('.'))
        .map(|s| s.parse().unwrap())
        .collect();
    (nums[0], nums[1])
}

#[test]
fn smoke_pipeline_end_to_end_then_a_rerun_recomputes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    let report_dir = tmp.path().join("report");
    let args = [
        "run",
        "--profile",
        "smoke",
        "--seed",
        "42",
        "--threads",
        "1",
        "--run-dir",
        run_dir.to_str().unwrap(),
        "--report-dir",
        report_dir.to_str().unwrap(),
    ];
    run_ok(&args);

    // What the shipped catalogue implies, so the test follows the catalogue as assignments are added.
    let sources = nnlab::stages::Sources::default();
    let (profile, planned_jobs) = nnlab::stages::load_plan(&sources, "smoke", 42, &[]).unwrap();
    let catalogue = nnlab::catalogue::Catalogue::load(&sources.catalogue).unwrap();
    let planned_projections = nnlab::analysis::plan_projections(&catalogue, &profile, 42, &planned_jobs);
    let ids = |ids: Vec<&String>| ids.into_iter().cloned().collect::<std::collections::BTreeSet<_>>();

    let first = manifest(&run_dir);
    assert_eq!(first.profile, "smoke");
    assert!(planned_jobs.len() >= 18, "a1: 6 experiments, tp: 3, × 2 replicates at least");
    // Each follow-up trains the point of its sweep that the tables say is best.
    let tables = Tables::read(&run_dir.join("tables")).unwrap();
    let choices = nnlab::follow_up::load_choices(&run_dir).unwrap();
    let mut expected_jobs = planned_jobs.clone();
    for experiment in catalogue.assignments.iter().flat_map(|a| &a.experiments).filter(|e| e.follow_up.is_some()) {
        let follow_up = experiment.follow_up.as_ref().unwrap();
        let choice = choices.iter().find(|c| c.experiment == experiment.id).expect("every follow-up records its choice");
        let stats = tables.point_stats(&follow_up.of, &follow_up.metric).unwrap();
        let best = stats.iter().fold(&stats[0], |best, s| if s.1.mean > best.1.mean { s } else { best });
        assert_eq!(choice.chosen.label, best.0, "{}", experiment.id);
        assert_eq!(choice.chosen.stat, best.1);
        let runner_up = choice.runner_up.as_ref().unwrap();
        assert!(runner_up.label != best.0 && runner_up.stat.mean <= best.1.mean);
        expected_jobs
            .extend(nnlab::plan::plan_follow_up(&catalogue, experiment, choice.chosen.point.clone(), &profile, 42).unwrap());
    }
    assert_eq!(ids(first.jobs.iter().map(|j| &j.id).collect()), ids(expected_jobs.iter().map(|j| &j.id).collect()));
    assert!(first.jobs.iter().all(|j| j.status == "ran"));
    assert_eq!(first.hardware.threads_used, 1);

    // Every reported figure comes from the aggregated table.
    let html = std::fs::read_to_string(report_dir.join("a1.html")).unwrap();
    for (id, experiment) in [
        ("a1.q5.test_acc", "a1.dense_linear"),
        ("a1.q10.test_acc", "a1.dense_relu"),
        ("a1.q13.test_acc", "a1.cnn"),
        ("a1.q15.test_acc", "a1.cnn_dropout"),
        ("a1.q17.test_acc", "a1.cifar_cnn"),
    ] {
        let stat = tables.stat(experiment, "test_acc").unwrap();
        let (mean, std) = two_numbers(&answer(&html, id));
        assert!((mean - stat.mean * 100.0).abs() <= 0.005 + 1e-9, "{id}: page {mean} vs table {}", stat.mean);
        assert!((std - stat.std.unwrap() * 100.0).abs() <= 0.005 + 1e-9, "{id}: page std {std}");
        assert_eq!(stat.n, 2);
        // 800 images and 2 epochs are far from convergence; MNIST models are already well above
        // chance (10%). CIFAR-10 at RMSprop's 1e-4 barely moves in that time, so only its range is checked.
        if experiment.ends_with("cifar_cnn") {
            assert!((0.0..=1.0).contains(&stat.mean));
        } else {
            assert!(stat.mean > 0.3, "{experiment} test accuracy {}", stat.mean);
        }
    }
    let seconds = tables.stat("a1.dense_linear", "epoch_seconds").unwrap();
    let (mean, _) = two_numbers(&answer(&html, "a1.q2.epoch_seconds"));
    assert!((mean - seconds.mean).abs() <= 0.005 + 1e-9);

    // Data preparation: the first MNIST label is 5, one-hot encoded; the profile is on the page.
    assert!(html.contains("0 0 0 0 0 1 0 0 0 0"), "first one-hot row missing");
    assert!(html.contains("smoke"));
    assert!(html.contains("dense_1 (Dense)") && html.contains("203,530"));
    // Each model states how it was trained, the loss convention included.
    assert!(html.contains("RMSprop (lr 0.001, ρ 0.9, ε 1e-7)") && html.contains("Adadelta (lr 1, ρ 0.95, ε 1e-7)"));
    assert!(html.contains("categorical cross-entropy from the logits, unclipped (Keras 3)"));
    assert!(report_dir.join("figures/a1.dense_relu-acc.svg").is_file());
    // Exercise 3's worked example is computed by the run and printed step by step.
    for anchor in ["a1.q20", "a1.q21", "a1.q22", "a1.q23", "a1.q24", "a1.q25"] {
        assert!(html.contains(&format!("id=\"{anchor}\"")), "{anchor} missing");
    }
    assert!(html.contains("0.09 0.24 0.67"), "stable softmax of extreme inputs missing");
    let index = std::fs::read_to_string(report_dir.join("index.html")).unwrap();
    assert!(index.contains("a1.html"));
    let run_page = std::fs::read_to_string(report_dir.join("run.html")).unwrap();
    assert!(run_page.contains(&first.hardware.cpu_model) && run_page.contains(&first.jobs[0].id));

    check_tp_report(&run_dir, &report_dir, &tables);
    // tp alone: raw pixels (2 t-SNE seeds and one PCA), MLP and CNN hidden layers (2 replicates × 2 methods each).
    assert!(planned_projections.len() >= 11);
    assert_eq!(ids(first.projections.iter().map(|p| &p.id).collect()), ids(planned_projections.iter().map(|p| &p.id).collect()));
    assert!(first.projections.iter().all(|p| p.status == "ran"));
    check_a7b_report(&run_dir, &report_dir, &tables, &catalogue);
    check_a7a_report(&run_dir, &report_dir, &tables);
    check_playground_report(&run_dir, &report_dir);
    check_answer_key_and_grading(&run_dir, &report_dir, &tables);
    smoke_snapshot::check(&run_dir);

    // A second invocation finds every job and projection finished and recomputes nothing.
    let final_csv = std::fs::read_to_string(run_dir.join("tables/final.csv")).unwrap();
    let separation_csv = std::fs::read_to_string(run_dir.join("tables/separation.csv")).unwrap();
    let out = run_ok(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("0 jobs ran, {} reused", expected_jobs.len())), "{stderr}");
    assert!(stderr.contains(" evaluation jobs ran,") && stderr.contains("0 evaluation jobs ran"), "{stderr}");
    assert!(stderr.contains(&format!("0 projections computed, {} reused", planned_projections.len())), "{stderr}");
    assert!(stderr.contains("0 playground jobs ran"), "{stderr}");
    let second = manifest(&run_dir);
    assert!(second.jobs.iter().all(|j| j.status == "reused"));
    assert!(second.projections.iter().all(|p| p.status == "reused"));
    assert_eq!(std::fs::read_to_string(run_dir.join("tables/final.csv")).unwrap(), final_csv);
    assert_eq!(std::fs::read_to_string(run_dir.join("tables/separation.csv")).unwrap(), separation_csv);
}

/// a1's extra questions: the fixed PNAS summary marked as such, every Playground figure the page links,
/// and its numbers as the run's table of the sweeps gives them.
fn check_playground_report(run_dir: &Path, report_dir: &Path) {
    let html = std::fs::read_to_string(report_dir.join("a1.html")).unwrap();
    for anchor in ["a1.x1", "a1.x2", "a1.x3", "a1.x2.hidden", "a1.x2.learning_rate"] {
        assert!(html.contains(&format!("id=\"{anchor}\"")), "{anchor} missing");
    }
    assert!(html.contains("the report's one fixed text"));
    for figure in ["a1_x2_hidden_boundaries.svg", "a1_x2_noise_test_loss.svg", "a1_x2_features_curves.svg"] {
        let svg = std::fs::read_to_string(report_dir.join("figures").join(figure)).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{figure}");
        assert!(html.contains(&format!("figures/{figure}")), "{figure} not linked");
    }
    // tables/playground.csv: dataset,knob,value,parameters,seed,epochs,final_train_loss,final_test_loss,dead_links
    let csv = std::fs::read_to_string(run_dir.join("tables/playground.csv")).unwrap();
    let rows: Vec<Vec<String>> = csv
        .lines()
        .skip(1)
        .map(|line| {
            let (head, rest) = line.split_once(",\"").unwrap();
            let (value, tail) = rest.split_once("\",").unwrap();
            head.split(',').map(String::from).chain([value.to_string()]).chain(tail.split(',').map(String::from)).collect()
        })
        .collect();
    let losses = |dataset: &str, knob: &str, value: &str| -> Vec<f64> {
        rows.iter().filter(|r| r[0] == dataset && r[1] == knob && r[2] == value).map(|r| r[7].parse().unwrap()).collect()
    };
    let mean_std = |xs: &[f64]| {
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        (mean, (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt())
    };
    for dataset in ["circle", "xor", "gaussians", "spiral"] {
        // The default network is the activation knob's tanh.
        let default = losses(dataset, "activation", "tanh");
        assert_eq!(default.len(), 2, "{dataset}: one row per seed");
        let (mean, std) = mean_std(&default);
        let (page_mean, page_std) = two_numbers(&answer(&html, &format!("a1.x2.default.{dataset}.test_loss")));
        assert!((page_mean - mean).abs() <= 5e-5 + 1e-12 && (page_std - std).abs() <= 5e-5 + 1e-12, "{dataset}");
        // The best batch size is the one with the lowest mean test loss.
        let mut values: Vec<&String> = rows.iter().filter(|r| r[0] == dataset && r[1] == "batch_size").map(|r| &r[2]).collect();
        values.dedup();
        let best = values
            .iter()
            .min_by(|a, b| {
                mean_std(&losses(dataset, "batch_size", a)).0.total_cmp(&mean_std(&losses(dataset, "batch_size", b)).0)
            })
            .unwrap();
        assert_eq!(&&answer(&html, &format!("a1.x2.batch_size.{dataset}.best")), best, "{dataset}");
    }
    let results = nnlab::playground::load_all(run_dir).unwrap().expect("the run had a Playground stage");
    let search = results
        .iter()
        .find_map(|r| match &r.outcome {
            nnlab::playground::Outcome::Search { outcome, .. } => Some(outcome),
            _ => None,
        })
        .unwrap();
    assert_eq!(answer(&html, "a1.x3.networks_trained"), search.networks_trained.to_string());
    assert!(search.networks_trained >= search.tried.len() && !search.tried.is_empty());
}

/// The answer key beside the reports lists every answer the pages print, as printed and with the
/// table's values; `nnlab key` gives it byte for byte again; a submission of the run's own values
/// grades all within, and shifted, missing and unknown answers grade exactly as such.
fn check_answer_key_and_grading(run_dir: &Path, report_dir: &Path, tables: &Tables) {
    use nnlab::key::{AnswerKey, AnswerKind};
    let key_path = report_dir.join("key.toml");
    let key = AnswerKey::read(&key_path).unwrap();
    assert_eq!(key.run.profile, "smoke");
    for keyed in &key.answers {
        let html = std::fs::read_to_string(report_dir.join(format!("{}.html", keyed.page))).unwrap();
        assert_eq!(nnlab_text(&answer(&html, &keyed.id)), keyed.shown, "{}", keyed.id);
    }
    let q5 = key.answer("a1.q5.test_acc").expect("a1.q5.test_acc is keyed");
    let stat = tables.stat("a1.dense_linear", "test_acc").unwrap();
    assert_eq!((q5.mean, q5.std, q5.n), (Some(stat.mean), stat.std, Some(stat.n as u64)));
    assert_eq!(q5.unit.as_deref(), Some("fraction"));
    assert!(q5.low.unwrap() < stat.mean && stat.mean < q5.high.unwrap());
    assert!(key.answers.iter().any(|a| a.kind == AnswerKind::Category), "a chosen model or cell is keyed as a category");
    // Every choice states how many replicates, each on its own, make it too.
    for id in [
        "a7b.q2b.best_lr",
        "a7b.q2c.best_cell",
        "a7b.q3b.best_l2",
        "a7a.q2d.best_factor",
        "a7a.q3a.best_cnn",
        "tp.m2.better",
        "tp.m3.best",
    ] {
        let choice = key.answer(id).unwrap_or_else(|| panic!("{id} is keyed"));
        let (agree, of) = (choice.agree.unwrap_or_else(|| panic!("{id} has no agreement")), choice.of.unwrap());
        assert!(of >= 1 && agree <= of, "{id}: {agree} of {of}");
    }
    assert!(key.answers.len() >= 30, "{} answers", key.answers.len());

    let tmp = tempfile::tempdir().unwrap();
    let again = tmp.path().join("key.toml");
    run_ok(&["key", run_dir.to_str().unwrap(), "--out", again.to_str().unwrap()]);
    assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(&key_path).unwrap(), "same run, byte-identical key");

    // The run's own values: fractions as percentages, categories as text.
    let mut own = String::new();
    for answer in &key.answers {
        let value = match (answer.kind, answer.unit.as_deref()) {
            (AnswerKind::Category, _) => format!("{:?}", answer.value.as_ref().unwrap()),
            (_, Some("fraction")) => format!("\"{} %\"", answer.mean.unwrap() * 100.0),
            _ => format!("{:?}", answer.mean.unwrap()),
        };
        own += &format!("\"{}\" = {value}\n", answer.id);
    }
    let grade = |name: &str, text: &str| {
        let submission = tmp.path().join(name);
        std::fs::write(&submission, text).unwrap();
        let out_dir = tmp.path().join(format!("grade-{name}"));
        let out =
            run_ok(&["grade", key_path.to_str().unwrap(), submission.to_str().unwrap(), "--out-dir", out_dir.to_str().unwrap()]);
        assert!(out_dir.join("grade.html").is_file());
        (String::from_utf8_lossy(&out.stdout).to_string(), std::fs::read_to_string(out_dir.join("grade.csv")).unwrap())
    };
    // Times and speeds are keyed, marked and counted apart.
    let timed: Vec<_> = key.answers.iter().filter(|a| a.machine_dependent).collect();
    assert!(timed.iter().any(|a| a.id == "a1.q2.epoch_seconds"), "epoch times are machine-dependent");
    let total = key.answers.len() - timed.len();
    let (summary, _) = grade("own.toml", &own);
    let expected = format!("{total} within, 0 outside, 0 missing, 0 unknown ids; machine-dependent (times, speeds), counted apart: {0} of {0} within", timed.len());
    assert!(summary.starts_with(&expected), "{summary}");

    // One value far off, one left out, one id the key does not know.
    let numeric: Vec<_> = key.answers.iter().filter(|a| a.kind != AnswerKind::Category && !a.machine_dependent).collect();
    let (shifted, left_out) = (numeric[0], numeric[1]);
    let mut csv = String::from("id,value\n");
    for answer in &key.answers {
        if answer.id == left_out.id {
            continue;
        }
        let value = match answer.kind {
            AnswerKind::Category => answer.value.clone().unwrap(),
            _ if answer.id == shifted.id => {
                (answer.high.unwrap() + 10.0 * (answer.high.unwrap() - answer.low.unwrap()) + 2.0).to_string()
            }
            _ => answer.mean.unwrap().to_string(),
        };
        csv += &format!("{},\"{value}\"\n", answer.id);
    }
    csv += "a1.q99.no_such_answer,1\n";
    let (summary, rows) = grade("shifted.csv", &csv);
    assert!(summary.starts_with(&format!("{} within, 1 outside, 1 missing, 1 unknown ids", total - 2)), "{summary}");
    let status =
        |id: &str| rows.lines().find(|l| l.starts_with(&format!("\"{id}\","))).unwrap().rsplit(',').next().unwrap().to_string();
    assert_eq!(status(&shifted.id), "outside");
    assert_eq!(status(&left_out.id), "missing");
    assert_eq!(status("a1.q99.no_such_answer"), "unknown id");

    // A submission that cannot be read is refused, one line per problem.
    let bad = tmp.path().join("bad.csv");
    std::fs::write(&bad, format!("{0},ninety\n{0},1\n", numeric[0].id)).unwrap();
    let out = nnlab(&["grade", key_path.to_str().unwrap(), bad.to_str().unwrap()], &[]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("given more than once") && stderr.contains("`ninety` is not a number"), "{stderr}");
    check_reference_keys(&key);
}

/// The committed reference solution (`reports/reference/<assignment>/key.toml`) must key exactly the
/// answers the templates print today: an answer added, removed or renamed since it was rendered
/// makes it stale, and this says which and how to regenerate it.
fn check_reference_keys(smoke_key: &nnlab::key::AnswerKey) {
    use std::collections::BTreeSet;
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/reference");
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&reference).expect("reports/reference/ is committed").flatten() {
        let assignment = entry.file_name().to_string_lossy().to_string();
        let committed = nnlab::key::AnswerKey::read(&entry.path().join("key.toml")).unwrap();
        assert_eq!(committed.run.profile, "full", "the reference of {assignment} is a full-profile run");
        let then: BTreeSet<&str> = committed.answers.iter().map(|a| a.id.as_str()).collect();
        let now: BTreeSet<&str> = smoke_key.answers.iter().filter(|a| a.page == assignment).map(|a| a.id.as_str()).collect();
        assert!(
            then == now,
            "reports/reference/{assignment}/key.toml is stale: the templates now also print {:?} and no longer {:?}; \
             regenerate it with `make reference ASSIGNMENT={assignment}`",
            now.difference(&then).collect::<Vec<_>>(),
            then.difference(&now).collect::<Vec<_>>()
        );
        assert!(entry.path().join(format!("{assignment}.html")).is_file() && entry.path().join("manifest.json").is_file());
        checked.push(assignment);
    }
    assert!(!checked.is_empty(), "no reference solution under {}", reference.display());
}

/// The HTML-escaped text of a page back as the page's Markdown printed it.
fn nnlab_text(html: &str) -> String {
    html.replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// The a7b report: sweeps, the follow-up's choice and the shift evaluations, each answer checked
/// against the tables; evaluation at a shift of 0 reproduces the trained model's own test accuracy,
/// which proves the stored weights are the trained ones.
fn check_a7b_report(run_dir: &Path, report_dir: &Path, tables: &Tables, catalogue: &nnlab::catalogue::Catalogue) {
    let html = std::fs::read_to_string(report_dir.join("a7b.html")).unwrap();
    assert_eq!(answer(&html, "a7b.q1a.params"), "116,285");
    let stat = tables.stat("a7b.dense125", "test_acc").unwrap();
    let (mean, _) = two_numbers(&answer(&html, "a7b.q1b.test_acc"));
    assert!((mean - stat.mean * 100.0).abs() <= 0.005 + 1e-9);

    // The smoke profile keeps 3 of the 8 learning rates; the page names the best of them.
    let lr = catalogue.experiment("a7b.lr_sweep").unwrap();
    let stats = tables.point_stats("a7b.lr_sweep", "test_acc").unwrap();
    assert_eq!(stats.len(), lr.points(Some(3)).len());
    let best = stats.iter().fold(&stats[0], |b, s| if s.1.mean > b.1.mean { s } else { b });
    assert_eq!(format!("lr={}", answer(&html, "a7b.q2b.best_lr")), best.0);
    let choices = nnlab::follow_up::load_choices(run_dir).unwrap();
    assert_eq!(answer(&html, "a7b.q2c.best_cell"), choices[0].chosen.label);
    // The grid's table holds one column per axis: the chosen cell's units and lr are in its row.
    let chosen = tables.finals.clone().lazy().filter(col("experiment").eq(lit("a7b.grid_best"))).collect().unwrap();
    let units = chosen.column("units").unwrap().f64().unwrap().get(0).unwrap();
    assert_eq!(choices[0].chosen.point[0].value.as_f64(), Some(units));

    for model in ["a7b.cnn", "a7b.dense100"] {
        let shifts = tables.evaluation_stats("a7b.shift", "test_acc").unwrap();
        let unshifted = tables.stat(model, "test_acc").unwrap();
        for direction in ["right", "left", "up", "down"] {
            let zero = shifts.iter().find(|(m, t, _)| m == model && *t == format!("direction={direction}, pixels=0")).unwrap();
            assert_eq!(zero.2.mean, unshifted.mean, "{model}: evaluation of the stored weights differs from training's test");
        }
        let three = shifts.iter().find(|(m, t, _)| m == model && t == "direction=right, pixels=3").unwrap();
        let id = format!("a7b.q4b.{}", model.trim_start_matches("a7b."));
        let (mean, _) = two_numbers(&answer(&html, &id));
        assert!((mean - three.2.mean * 100.0).abs() <= 0.005 + 1e-9, "{id}");
    }
    for figure in ["a7b.grid-heat.svg", "a7b.grid-lines.svg", "a7b.shift.svg", "a7b.lr_sweep.svg", "a7b.grid_best-acc.svg"] {
        assert!(report_dir.join("figures").join(figure).is_file(), "{figure} missing");
    }
    assert!(run_dir.join("jobs").read_dir().unwrap().flatten().any(|d| d.path().join("model.safetensors").is_file()));
}

/// The a7a report: the weight-decay rows, the six CNNs, the pipeline's choice of the best CNN and
/// the shift evaluation of the model it chose, each checked against the tables.
fn check_a7a_report(run_dir: &Path, report_dir: &Path, tables: &Tables) {
    let html = std::fs::read_to_string(report_dir.join("a7a.html")).unwrap();
    assert_eq!(answer(&html, "a7a.q2a.params"), "55,050");
    let base = tables.stat("a7a.base", "test_acc").unwrap();
    let (mean, _) = two_numbers(&answer(&html, "a7a.q2c.val_acc"));
    assert!((mean - base.mean * 100.0).abs() <= 0.005 + 1e-9);

    // Weight decay: the best factor by mean final accuracy, as the page names it.
    let decay = tables.point_stats("a7a.weight_decay", "test_acc").unwrap();
    assert_eq!(decay.len(), 3, "the smoke profile keeps 3 of the 5 factors");
    let best = decay.iter().fold(&decay[0], |b, s| if s.1.mean > b.1.mean { s } else { b });
    assert_eq!(format!("l2={}", answer(&html, "a7a.q2d.best_factor")), best.0);
    let (mean, _) = two_numbers(&answer(&html, "a7a.q2d.best_final"));
    assert!((mean - best.1.mean * 100.0).abs() <= 0.005 + 1e-9);
    // Each factor's maximum validation accuracy is its best epoch, never below the final one.
    for (label, final_acc) in &decay {
        let max = tables.point_stats("a7a.weight_decay", "val_acc_max").unwrap();
        let max = max.iter().find(|(l, _)| l == label).unwrap().1;
        assert!(max.min >= final_acc.min - 1e-12 && max.mean >= final_acc.mean - 1e-12, "{label}");
    }

    // The best CNN is the one with the highest mean final accuracy, recorded with its ranking.
    let chosen = nnlab::choice::load(run_dir).unwrap();
    let best_cnn = chosen.iter().find(|c| c.choice == "a7a.best_cnn").expect("the run records the choice");
    let cnns: Vec<(String, f64)> =
        (1..=6).map(|i| format!("a7a.cnn{i}")).map(|id| (id.clone(), tables.stat(&id, "test_acc").unwrap().mean)).collect();
    let top = cnns.iter().fold(&cnns[0], |b, c| if c.1 > b.1 { c } else { b });
    assert_eq!(best_cnn.experiment(), top.0);
    assert_eq!(best_cnn.ranking.len(), 6);
    assert_eq!(answer(&html, "a7a.q3a.best_cnn"), top.0);

    // q3b evaluates the chosen CNN: its unshifted evaluation reproduces its test accuracy.
    let shifts = tables.evaluation_stats("a7a.shift", "test_acc").unwrap();
    assert!(shifts.iter().all(|(m, _, _)| m == &top.0 || m == "a7a.base"), "only the chosen CNN and the base are evaluated");
    // The chosen CNN's answer is anchored by the choice's name, whichever CNN won.
    for (model, id) in [(top.0.as_str(), "a7a.q3b.best_cnn"), ("a7a.base", "a7a.q3b.base")] {
        let zero = shifts.iter().find(|(m, t, _)| m == model && t == "direction=up, pixels=0").unwrap();
        assert_eq!(zero.2.mean, tables.stat(model, "test_acc").unwrap().mean, "{model}");
        let three = shifts.iter().find(|(m, t, _)| m == model && t == "direction=right, pixels=3").unwrap();
        let (mean, _) = two_numbers(&answer(&html, id));
        assert!((mean - three.2.mean * 100.0).abs() <= 0.005 + 1e-9, "{id}");
    }
    for figure in ["a7a.weight_decay.svg", "a7a.cnns.svg", "a7a.shift.svg", "a7a.base-acc.svg"] {
        assert!(report_dir.join("figures").join(figure).is_file(), "{figure} missing");
    }

    // The denoising study: every level evaluated for every autoencoder replicate, classified by the
    // chosen CNN; level 0 leaves the images clean; the page's thresholds follow the tables.
    let levels = ["0.0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1.0"];
    let noisy_acc = tables.evaluation_stats("a7a.denoise", "noisy_acc").unwrap();
    let noisy_mse = tables.evaluation_stats("a7a.denoise", "noisy_mse").unwrap();
    assert_eq!(noisy_acc.len(), levels.len());
    assert!(noisy_acc.iter().all(|(m, _, s)| m == "a7a.autoencoder" && s.n == 2));
    assert_eq!(noisy_mse.iter().find(|(_, t, _)| t == "level=0.0").unwrap().2.mean, 0.0);
    let mse: Vec<f64> =
        levels.iter().map(|l| noisy_mse.iter().find(|(_, t, _)| *t == format!("level={l}")).unwrap().2.mean).collect();
    assert!(mse.windows(2).all(|w| w[1] > w[0]), "more noise, further from the clean images: {mse:?}");
    // At level 0 the noisy images are the clean ones: the classifier's accuracy is its own test accuracy.
    let clean = noisy_acc.iter().find(|(_, t, _)| t == "level=0.0").unwrap().2;
    assert!((clean.mean - tables.stat(&top.0, "test_acc").unwrap().mean).abs() < 1e-12);
    let first_below = noisy_acc.iter().find(|(_, _, s)| s.mean < 0.9).map(|(_, t, _)| t.trim_start_matches("level=").to_string());
    if let Some(level) = first_below {
        assert_eq!(answer(&html, "a7a.q4b.hard_to_read"), level);
    }
    // One test-noise seed for the run, recorded with every job, the same for every replicate.
    let jobs: Vec<nnlab::plan::EvalJob> =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("evaluations.json")).unwrap()).unwrap();
    let seeds: std::collections::BTreeSet<u64> = jobs
        .iter()
        .filter_map(|j| match j.transform {
            nnlab::catalogue::Transform::SaltAndPepper { seed, .. } => Some(seed),
            _ => None,
        })
        .collect();
    assert_eq!(seeds.len(), 1, "{seeds:?}");
    for level in levels {
        let png = std::fs::read(report_dir.join(format!("figures/a7a.denoise-level-{level}.png"))).unwrap();
        // Four 28×28 digits, doubled, in three rows, with 2-pixel gaps.
        assert_eq!(nnlab_report::png_size(&png), Some((4 * 56 + 5 * 2, 3 * 56 + 4 * 2)), "level {level}");
    }
    assert!(report_dir.join("figures/a7a.autoencoder-diagram.svg").is_file());

    // q4d: 4 interpolations of 8 steps and 16 random codes, decoded into grids of doubled digits.
    let interpolations = std::fs::read(report_dir.join("figures/a7a.generate-interpolations.png")).unwrap();
    assert_eq!(nnlab_report::png_size(&interpolations), Some((8 * 56 + 9 * 2, 4 * 56 + 5 * 2)));
    let samples = std::fs::read(report_dir.join("figures/a7a.generate-samples.png")).unwrap();
    assert_eq!(nnlab_report::png_size(&samples), Some((8 * 56 + 9 * 2, 2 * 56 + 3 * 2)));
    assert!(html.contains("0 → 1, 2 → 3, 4 → 5, 6 → 7"));
}

/// The tp report: its accuracies come from the training tables, its separation metrics from the
/// stored projections, and its "best representation" answer from the measured ordering.
fn check_tp_report(run_dir: &Path, report_dir: &Path, tables: &Tables) {
    let html = std::fs::read_to_string(report_dir.join("tp.html")).unwrap();
    for (id, experiment) in [("tp.q1.test_acc", "tp.logreg"), ("tp.q2.test_acc", "tp.mlp"), ("tp.q3.test_acc", "tp.cnn")] {
        let stat = tables.stat(experiment, "test_acc").unwrap();
        let (mean, _) = two_numbers(&answer(&html, id));
        assert!((mean - stat.mean * 100.0).abs() <= 0.005 + 1e-9, "{id}: page {mean} vs table {}", stat.mean);
    }
    assert!(html.contains("366,806") && html.contains("79,510"), "tp parameter counts missing");

    // Each stored projection's neighbourhood hit is recomputed from its stored points.
    for entry in std::fs::read_dir(run_dir.join("analysis")).unwrap().flatten() {
        let result: ProjectionResult = serde_json::from_str(&std::fs::read_to_string(entry.path()).unwrap()).unwrap();
        assert_eq!(result.points.len(), 300, "{}: smoke projects 300 images", result.id);
        let nh = nnlab_analysis::neighbourhood_hit(&result.points, &result.labels, 10).unwrap().overall;
        assert!((nh - result.metrics.nh).abs() < 1e-12, "{}: stored NH {} vs recomputed {nh}", result.id, result.metrics.nh);
    }
    let separation = SeparationTables::read(&run_dir.join("tables")).unwrap().expect("separation tables");
    let candidates = [("raw", "raw"), ("tp.mlp", "tp.mlp"), ("tp.cnn", "tp.cnn")];
    let mut best = ("", f64::MIN);
    for (representation, name) in candidates {
        let nh = separation.stat(representation, "tsne", "nh").unwrap();
        assert!((0.0..=1.0).contains(&nh.mean), "{representation}: NH {}", nh.mean);
        assert_eq!(nh.n, 2);
        if nh.mean > best.1 {
            best = (name, nh.mean);
        }
    }
    // Raw t-SNE of a few hundred digits already groups them far better than chance (0.1).
    assert!(separation.stat("raw", "tsne", "nh").unwrap().mean > 0.4);
    assert!(
        answer(&html, "tp.m3.best").starts_with(best.0),
        "best by NH is {}: page says {}",
        best.0,
        answer(&html, "tp.m3.best")
    );
    let svg = |name: &str| std::fs::read_to_string(report_dir.join(format!("figures/{name}.svg"))).unwrap();
    for figure in ["tp-raw-tsne-plain", "tp-tp_mlp-pca-hulls", "tp-tp_cnn-tsne-ellipses"] {
        assert!(svg(figure).matches("h0").count() >= 300, "{figure}: expected a scatter of 300 points");
    }
    assert!(svg("tp-m3-nh-curve").contains("<path") || svg("tp-m3-nh-curve").contains("<polyline"));
    assert!(html.contains("figures/tp-m3-nh-curve.svg"));
}

/// Every value of every history row except the wall times, column by column, bit for bit.
fn history_without_times(run_dir: &Path) -> Vec<Vec<Option<u64>>> {
    let tables = Tables::read(&run_dir.join("tables")).unwrap();
    ["replicate", "epoch", "loss", "acc", "val_loss", "val_acc"]
        .iter()
        .map(|name| {
            let column = tables.history.column(name).unwrap().cast(&polars::prelude::DataType::Float64).unwrap();
            let values = column.f64().unwrap();
            (0..values.len()).map(|i| values.get(i).map(f64::to_bits)).collect()
        })
        .collect()
}

/// Every stored 2-D projection of a run, by projection id, as the bits of its coordinates.
fn projections(run_dir: &Path) -> BTreeMap<String, Vec<[u64; 2]>> {
    std::fs::read_dir(run_dir.join("analysis"))
        .unwrap()
        .flatten()
        .map(|entry| {
            let result: ProjectionResult = serde_json::from_str(&std::fs::read_to_string(entry.path()).unwrap()).unwrap();
            (result.id, result.points.iter().map(|p| [p[0].to_bits(), p[1].to_bits()]).collect())
        })
        .collect()
}

#[test]
fn same_seed_gives_identical_history_and_projections_another_seed_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let catalogue = test_catalogue_with_analysis(tmp.path());
    let run = |name: &str, seed: &str, threads: &str| {
        let dir = tmp.path().join(name);
        run_ok(&[
            "run",
            "--profile",
            "smoke",
            "--seed",
            seed,
            "--threads",
            threads,
            "--no-render",
            "--catalogue",
            catalogue.to_str().unwrap(),
            "--run-dir",
            dir.to_str().unwrap(),
        ]);
        (history_without_times(&dir), projections(&dir))
    };
    let (history_a, projections_a) = run("a", "7", "1");
    let (history_b, projections_b) = run("b", "7", "1");
    let (history_c, projections_c) = run("c", "8", "1");
    assert_eq!(history_a, history_b, "same seed, same thread count: the histories must be identical");
    assert_ne!(history_a, history_c, "another seed must give another history");
    // raw pixels: 2 t-SNE seeds and one PCA; the MLP's hidden layer: 2 replicates × 2 methods.
    assert_eq!(projections_a.len(), 7);
    assert_eq!(projections_a, projections_b, "same seed: every projection must be identical, bit for bit");
    let shared: Vec<_> = projections_c.values().filter(|p| projections_a.values().any(|q| q == *p)).collect();
    // Only the PCA of the raw pixels depends on no seed.
    assert_eq!(shared.len(), 1, "another seed must give other projections");

    // `nnlab compare` says the same: a and b agree bit for bit, a and c differ.
    let compare = |b: &str| {
        let out_dir = tmp.path().join(format!("compare-{b}"));
        let (a, b) = (tmp.path().join("a"), tmp.path().join(b));
        run_ok(&["compare", a.to_str().unwrap(), b.to_str().unwrap(), "--out-dir", out_dir.to_str().unwrap()]);
        let csv = std::fs::read_to_string(out_dir.join("compare.csv")).unwrap();
        let html = std::fs::read_to_string(out_dir.join("compare.html")).unwrap();
        assert!(out_dir.join("figures/compare_test_acc.svg").is_file());
        (csv, html)
    };
    let (csv, html) = compare("b");
    let acc_rows: Vec<&str> = csv.lines().filter(|l| l.contains(",test_acc,")).collect();
    assert_eq!(acc_rows.len(), 2, "t1.mlp and t1.cnn: {csv}");
    assert!(acc_rows.iter().all(|l| l.ends_with(",identical")), "{csv}");
    // The last epoch's training loss comes from each job's history.
    let train_loss_rows: Vec<&str> = csv.lines().filter(|l| l.contains(",train_loss,")).collect();
    assert_eq!(train_loss_rows.len(), 2, "{csv}");
    assert!(train_loss_rows.iter().all(|l| l.ends_with(",identical")), "{csv}");
    assert!(html.contains("4 models trained with the same seed on both sides; 4 of them have"), "{html}");
    let (csv, html) = compare("c");
    assert!(csv.lines().filter(|l| l.contains(",test_acc,")).all(|l| !l.ends_with(",identical")), "{csv}");
    assert!(!html.contains("trained with the same seed on both sides"), "seeds 7 and 8 share no replicate seed");
}

/// A profile `slow` of several seconds per job of the test catalogue (slow enough to be killed
/// mid-run); returns the profiles directory.
fn slow_profile(dir: &Path) -> PathBuf {
    let profiles = dir.join("profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::write(
        profiles.join("slow.toml"),
        "name = \"slow\"\ndescription = \"kill test\"\nreplicates = 2\nmax_replicates = 2\nmax_epochs = 3\ntrain_samples = 8000\ntest_samples = 1000\n",
    )
    .unwrap();
    profiles
}

#[test]
fn a_killed_run_resumes_without_redoing_finished_jobs() {
    let tmp = tempfile::tempdir().unwrap();
    let profiles = slow_profile(tmp.path());
    let run_dir = tmp.path().join("run");
    let catalogue = test_catalogue(tmp.path());
    let args = [
        "run",
        "--profile",
        "slow",
        "--threads",
        "1",
        "--no-render",
        "--catalogue",
        catalogue.to_str().unwrap(),
        "--profiles",
        profiles.to_str().unwrap(),
        "--run-dir",
        run_dir.to_str().unwrap(),
    ];
    let mut child = nnlab(&args, &[]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();

    let jobs_dir = run_dir.join("jobs");
    let finished = || -> Vec<PathBuf> {
        std::fs::read_dir(&jobs_dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    // A partial directory may already hold its marker just before it is renamed into place.
                    .filter(|p| !p.to_string_lossy().contains(".partial-") && p.join("done.json").is_file())
                    .collect()
            })
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    while finished().is_empty() {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before a job could be observed");
        assert!(Instant::now() < deadline, "no job finished within 300 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(child.try_wait().unwrap().is_none(), "the run must still be going when it is killed");
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();

    let done_before = finished();
    let result_before: Vec<String> =
        done_before.iter().map(|d| std::fs::read_to_string(d.join("result.json")).unwrap()).collect();
    assert!(done_before.len() < 4);

    run_ok(&args);
    let m = manifest(&run_dir);
    let reused = m.jobs.iter().filter(|j| j.status == "reused").count();
    assert_eq!(reused, done_before.len(), "exactly the jobs finished before the kill are reused");
    assert_eq!(m.jobs.len(), 4);
    for (dir, before) in done_before.iter().zip(&result_before) {
        assert_eq!(&std::fs::read_to_string(dir.join("result.json")).unwrap(), before, "a finished job was redone");
    }
    let leftovers: Vec<_> = std::fs::read_dir(&jobs_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".partial-"))
        .collect();
    assert!(leftovers.is_empty(), "partial job directories were left behind");
}

fn one_line_error(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got:\n{stderr}");
    lines[0].to_string()
}

#[test]
fn bad_inputs_give_one_clear_error_line() {
    let tmp = tempfile::tempdir().unwrap();

    // A malformed catalogue names its file.
    let catalogue = tmp.path().join("catalogue");
    std::fs::create_dir_all(&catalogue).unwrap();
    std::fs::write(catalogue.join("a1.toml"), "id = \"a1\"\ntitle = \n").unwrap();
    let out = nnlab(&["plan", "--catalogue", catalogue.to_str().unwrap()], &[]).output().unwrap();
    assert!(one_line_error(&out).contains("a1.toml"));

    // An unknown layer names the layer.
    std::fs::write(
        catalogue.join("a1.toml"),
        "id = \"a1\"\ntitle = \"t\"\n[[experiment]]\nid = \"a1.x\"\ndescription = \"d\"\ndataset = \"mnist\"\nvalidation = \"test\"\nmodel = { input = [784], layers = [{ type = \"conv3d\" }] }\ntrain = { epochs = 1, batch_size = 8, optimizer = { name = \"sgd\" }, loss = \"categorical_crossentropy\" }\n",
    )
    .unwrap();
    let out = nnlab(&["plan", "--catalogue", catalogue.to_str().unwrap()], &[]).output().unwrap();
    assert!(one_line_error(&out).contains("conv3d"));

    // An unknown profile lists the known ones.
    let out = nnlab(&["plan", "--profile", "fastest"], &[]).output().unwrap();
    assert!(one_line_error(&out).contains("smoke"));

    // A truncated dataset file in the mirror is rejected, and nothing is left in the cache.
    let bad_mirror = tmp.path().join("mirror");
    let cache = tmp.path().join("cache");
    std::fs::create_dir_all(bad_mirror.join("mnist")).unwrap();
    for entry in std::fs::read_dir(mirror().join("mnist")).unwrap().flatten() {
        let bytes = std::fs::read(entry.path()).unwrap();
        std::fs::write(bad_mirror.join("mnist").join(entry.file_name()), &bytes[..bytes.len() / 2]).unwrap();
    }
    let out = nnlab(&["fetch", "--data-dir", cache.to_str().unwrap()], &[("NNLAB_DATA_MIRROR", &bad_mirror)]).output().unwrap();
    let line = one_line_error(&out);
    assert!(line.contains("idx") && line.contains(bad_mirror.to_str().unwrap()), "{line}");
    let cached: Vec<_> = std::fs::read_dir(&cache).map(|d| d.flatten().collect()).unwrap_or_default();
    assert!(
        cached.iter().all(|e| e.path().is_dir() && std::fs::read_dir(e.path()).unwrap().next().is_none()),
        "bad files left in the cache"
    );
}

#[test]
fn single_jobs_then_a_run_reuses_them_all() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    let catalogue = test_catalogue(tmp.path());
    let (catalogue, run_dir) = (catalogue.to_str().unwrap(), run_dir.to_str().unwrap());
    let ids = String::from_utf8(run_ok(&["plan", "--profile", "smoke", "--ids", "--catalogue", catalogue]).stdout).unwrap();
    let ids: Vec<&str> = ids.lines().collect();
    assert_eq!(ids.len(), 4);
    for id in &ids {
        run_ok(&["job", id, "--profile", "smoke", "--threads", "1", "--catalogue", catalogue, "--run-dir", run_dir]);
    }
    let out =
        run_ok(&["run", "--profile", "smoke", "--threads", "1", "--no-render", "--catalogue", catalogue, "--run-dir", run_dir]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("0 jobs ran, 4 reused"));

    let out = nnlab(&["job", "0000000000000000", "--profile", "smoke"], &[]).output().unwrap();
    assert!(one_line_error(&out).contains("no job 0000000000000000"));
}

/// Jobs trained by worker processes (`--jobs 2`) before the run collects them are part of the run:
/// the manifest's wall time covers them.
#[test]
fn worker_processes_count_in_the_run_wall_time() {
    let tmp = tempfile::tempdir().unwrap();
    let (run_dir, profiles, catalogue) = (tmp.path().join("run"), slow_profile(tmp.path()), test_catalogue(tmp.path()));
    let [run_dir_arg, profiles, catalogue] = [&run_dir, &profiles, &catalogue].map(|p| p.to_str().unwrap());
    let (jobs, threads) = (["--jobs", "2"], ["--threads", "2"]);
    let dirs = ["--catalogue", catalogue, "--profiles", profiles, "--run-dir", run_dir_arg];
    run_ok(&[&["run", "--profile", "slow", "--no-render"][..], &jobs, &threads, &dirs].concat());
    let job_seconds: Vec<f64> = std::fs::read_dir(run_dir.join("jobs"))
        .unwrap()
        .flatten()
        .map(|job| {
            let result: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(job.path().join("result.json")).unwrap()).unwrap();
            result["wall_seconds"].as_f64().unwrap()
        })
        .collect();
    assert_eq!(job_seconds.len(), 4);
    let longest = job_seconds.iter().cloned().fold(0.0, f64::max);
    let run_seconds = manifest(&run_dir).wall_seconds.unwrap();
    assert!(run_seconds >= longest, "the run took {run_seconds} s by its manifest, a job in it {longest} s");
}

#[test]
fn an_assignment_without_a_report_page_is_refused_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let catalogue = test_catalogue(tmp.path());
    let run_dir = tmp.path().join("run");
    let out = nnlab(
        &["run", "--profile", "smoke", "--catalogue", catalogue.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap()],
        &[],
    )
    .output()
    .unwrap();
    let error = one_line_error(&out);
    assert!(error.contains("assignment t1") && error.contains("no report page"), "{error}");
    assert!(!run_dir.join("jobs").exists(), "nothing was trained");
}

#[test]
fn a_missing_dataset_skips_its_jobs_with_a_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let catalogue = test_catalogue(tmp.path());
    let empty = tmp.path().join("empty-mirror");
    std::fs::create_dir_all(&empty).unwrap();
    let out = nnlab(
        &[
            "run",
            "--profile",
            "smoke",
            "--no-render",
            "--catalogue",
            catalogue.to_str().unwrap(),
            "--data-dir",
            tmp.path().join("cache").to_str().unwrap(),
            "--run-dir",
            tmp.path().join("run").to_str().unwrap(),
        ],
        &[("NNLAB_DATA_MIRROR", &empty)],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("not run: dataset mnist unavailable").count(), 4, "{stderr}");
    assert!(stderr.contains(empty.to_str().unwrap()), "the line says where it looked: {stderr}");
    // With every job skipped there is nothing to aggregate, and that is an error, not an empty report.
    assert!(one_line_error(&out).contains("no finished jobs"));
}
