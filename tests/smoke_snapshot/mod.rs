//! The tripwire for arithmetic changes: the smoke profile's results, committed.
//!
//! `tests/fixtures/smoke_snapshot.csv` holds every replicate's test accuracy and loss and every
//! projection's separation metrics, to 6 significant digits, from one smoke run. Any change to
//! kernels, RNG draws, optimisers or the loss moves some of them and fails the test. Updating it is a
//! deliberate act: rerun with `NNLAB_UPDATE_SNAPSHOT=1`, and say in the commit why the numbers moved,
//! citing the before/after comparison on real data.
//!
//! Results are bit-reproducible on one CPU, but the matrix products pick their vector kernels by the
//! CPU's features (AVX2, FMA, AVX-512), so another CPU may sum in another order, differ in the last
//! bits and, after a few hundred steps, in the printed digits. The snapshot therefore records the CPU
//! features it was taken with; elsewhere only its keys are checked, and the test says so.

use std::collections::BTreeMap;
use std::path::Path;

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/smoke_snapshot.csv");
const HEADER: &str = "kind,key,metric,value";

/// The CPU features that choose a summation order (vector width, fused multiply-add).
fn cpu_features() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let mut features = vec!["x86_64"];
        for (name, present) in [
            ("avx2", is_x86_feature_detected!("avx2")),
            ("fma", is_x86_feature_detected!("fma")),
            ("avx512f", is_x86_feature_detected!("avx512f")),
        ] {
            if present {
                features.push(name);
            }
        }
        features.join("+")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::env::consts::ARCH.to_string()
    }
}

/// The rows of a CSV file by column name. Fields holding a comma (sweep point labels) are quoted.
fn csv_rows(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header = fields(lines.next().expect("a header line"));
    lines.map(|line| header.iter().cloned().zip(fields(line)).collect()).collect()
}

fn fields(line: &str) -> Vec<String> {
    let (mut out, mut field, mut quoted) = (Vec::new(), String::new(), false);
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    out.push(field);
    out
}

/// `experiment/replicate`, with the sweep point in brackets where there is one (`; ` between axes,
/// so the snapshot stays a plain CSV).
fn job_key(row: &BTreeMap<String, String>) -> String {
    let point = &row["point"];
    let point = if point.is_empty() { String::new() } else { format!("[{}]", point.replace(", ", "; ")) };
    format!("{}{point}/{}", row["experiment"], row["replicate"])
}

fn six_digits(value: &str) -> String {
    let v: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {value}"));
    format!("{v:.5e}")
}

/// `kind,key,metric` → value, from a run's tables.
fn measure(run_dir: &Path) -> BTreeMap<String, String> {
    let tables = run_dir.join("tables");
    let mut values = BTreeMap::new();
    // A metric a model does not have (a reconstruction's accuracy) is an empty field, and left out.
    for row in csv_rows(&tables.join("final.csv")) {
        for metric in ["test_acc", "test_loss"].into_iter().filter(|m| !row[*m].is_empty()) {
            values.insert(format!("final,{},{metric}", job_key(&row)), six_digits(&row[metric]));
        }
    }
    for row in csv_rows(&tables.join("evaluation.csv")) {
        let key =
            format!("{}/{}[{}]/{}", row["evaluation"], row["experiment"], row["transform"].replace(", ", "; "), row["replicate"]);
        let metrics = ["test_acc", "test_loss", "noisy_mse", "denoised_mse", "noisy_acc", "denoised_acc"];
        for metric in metrics.into_iter().filter(|m| !row[*m].is_empty()) {
            values.insert(format!("evaluation,{key},{metric}"), six_digits(&row[metric]));
        }
    }
    // Wall times are not results.
    for row in csv_rows(&tables.join("separation.csv")).into_iter().filter(|row| !row["metric"].ends_with("_seconds")) {
        let key = format!("{}/{}/{}/{}", row["assignment"], row["representation"], row["method"], row["replicate"]);
        values.insert(format!("separation,{key},{}", row["metric"]), six_digits(&row["value"]));
    }
    values
}

fn write(values: &BTreeMap<String, String>, features: &str) {
    let mut text = format!(
        "# The smoke profile's results (run seed 42, 1 thread), 6 significant digits; tests/smoke_snapshot/mod.rs.\n\
         # cpu: {features}\n{HEADER}\n"
    );
    for (key, value) in values {
        text.push_str(&format!("{key},{value}\n"));
    }
    std::fs::write(SNAPSHOT, text).unwrap();
}

/// Checks a finished smoke run of the real catalogue against the committed snapshot.
pub fn check(run_dir: &Path) {
    let measured = measure(run_dir);
    let features = cpu_features();
    if std::env::var_os("NNLAB_UPDATE_SNAPSHOT").is_some() {
        write(&measured, &features);
        eprintln!("smoke snapshot rewritten: {SNAPSHOT} ({} values, cpu {features})", measured.len());
        return;
    }
    let text = std::fs::read_to_string(SNAPSHOT).unwrap_or_else(|e| panic!("{SNAPSHOT}: {e}"));
    let taken_on = text.lines().find_map(|l| l.strip_prefix("# cpu: ")).expect("the snapshot names its CPU features");
    let committed: BTreeMap<String, String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && *l != HEADER)
        .map(|l| {
            let (key, value) = l.rsplit_once(',').unwrap();
            (key.to_string(), value.to_string())
        })
        .collect();
    let keys = |m: &BTreeMap<String, String>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        keys(&measured),
        keys(&committed),
        "the smoke run's experiments and projections differ from the snapshot's (after adding experiments, \
         rewrite it with NNLAB_UPDATE_SNAPSHOT=1; existing values must stay unchanged)"
    );
    if taken_on != features {
        eprintln!("smoke snapshot taken on a {taken_on} CPU, this one is {features}: values not compared, keys only");
        return;
    }
    let moved: Vec<String> = committed
        .iter()
        .filter(|(key, value)| measured[*key] != **value)
        .map(|(key, value)| format!("  {key}: snapshot {value}, now {}", measured[key]))
        .collect();
    assert!(
        moved.is_empty(),
        "{} of {} smoke results moved:\n{}\nIf the arithmetic changed on purpose, compare before/after on real data, \
         then rerun with NNLAB_UPDATE_SNAPSHOT=1 and say why in the commit.",
        moved.len(),
        committed.len(),
        moved.join("\n")
    );
}
