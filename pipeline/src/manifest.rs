//! The run manifest: what ran, where, with what — hardware, threads, versions, commit, profile, seeds, times.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hardware {
    pub cpu_model: String,
    pub logical_cores: usize,
    pub memory_gib: f64,
    pub threads_used: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEntry {
    pub id: String,
    pub experiment: String,
    pub replicate: usize,
    pub seed: u64,
    /// `ran` in this invocation, or `reused` from an earlier one.
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectionEntry {
    pub id: String,
    pub label: String,
    /// `ran`, `reused`, or `not run: <why>`.
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunManifest {
    pub run_dir: String,
    pub profile: String,
    pub profile_description: String,
    pub seed: u64,
    pub assignments: Vec<String>,
    pub hardware: Hardware,
    pub os: String,
    pub rustc: String,
    pub crates: Vec<(String, String)>,
    pub nnlab_version: String,
    pub git_commit: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub wall_seconds: Option<f64>,
    pub jobs: Vec<JobEntry>,
    /// The analysis stage's projections (label, id, status), for assignments that have one.
    #[serde(default)]
    pub projections: Vec<ProjectionEntry>,
}

impl Hardware {
    pub fn detect(threads_used: usize) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_string()))
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        let memory_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                let kib: f64 = m.lines().find(|l| l.starts_with("MemTotal:"))?.split_whitespace().nth(1)?.parse().ok()?;
                Some((kib / (1024.0 * 1024.0) * 10.0).round() / 10.0)
            })
            .unwrap_or(0.0);
        Hardware {
            cpu_model,
            logical_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib,
            threads_used,
        }
    }
}

pub fn os_description() -> String {
    let pretty = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string())));
    format!("{} ({} {})", pretty.unwrap_or_else(|| "unknown".into()), std::env::consts::OS, std::env::consts::ARCH)
}

/// The commit of the source tree, with `-dirty` when it has uncommitted changes.
pub fn git_commit() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "HEAD"]) {
        Some(commit) => match git(&["status", "--porcelain", "--untracked-files=no"]) {
            Some(status) if !status.is_empty() => format!("{commit}-dirty"),
            _ => commit,
        },
        None => "unknown (not a git checkout)".into(),
    }
}

/// Versions recorded at build time (see build.rs).
pub fn build_versions() -> (String, Vec<(String, String)>) {
    let crates = env!("NNLAB_CRATE_VERSIONS")
        .split(';')
        .filter_map(|pair| pair.split_once(' ').map(|(n, v)| (n.to_string(), v.to_string())))
        .collect();
    (env!("NNLAB_RUSTC_VERSION").to_string(), crates)
}

/// Current UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    utc_timestamp(secs)
}

pub fn utc_timestamp(unix_seconds: u64) -> String {
    let days = (unix_seconds / 86_400) as i64;
    let rem = unix_seconds % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 → (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_timestamp(1_795_000_000), "2026-11-18T11:06:40Z");
    }

    #[test]
    fn build_versions_name_the_stack() {
        let (rustc, crates) = build_versions();
        assert!(rustc.starts_with("rustc "), "{rustc}");
        assert!(crates.iter().any(|(n, _)| n == "candle-core"), "{crates:?}");
    }
}
