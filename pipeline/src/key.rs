//! The answer key of a run: every answer its report pages print (`{{answer …}}`), with the value
//! behind it and the interval a grader accepts. A replicate summary is accepted within the 95%
//! prediction interval for one new replicate, mean ± t(n−1)·s·√(1 + 1/n); an exact value (a
//! parameter count, a chosen setting) within half a unit of the last decimal the page prints, which
//! also widens every interval, so that a figure copied from the page at its printed precision
//! always passes. Categorical answers (which model, which cell) are matched as text.
//!
//! The key depends only on the run's tables, catalogue and templates: the same run gives a
//! byte-identical key.

use std::path::Path;

use anyhow::{bail, Context, Result};
use nnlab_report::RecordedAnswer;
use serde::{Deserialize, Serialize};

use crate::manifest::RunManifest;
use crate::stats::prediction_interval_of;

/// The file name of a key beside a run's reports.
pub const KEY_FILE: &str = "key.toml";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnswerKey {
    pub run: KeyRun,
    pub rules: KeyRules,
    #[serde(rename = "answer")]
    pub answers: Vec<KeyAnswer>,
}

/// Which run the key was taken from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRun {
    pub profile: String,
    pub seed: u64,
    pub commit: String,
    pub finished_at: String,
}

/// How a grader reads a submission, stated in the key itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRules {
    pub percent: String,
    pub interval: String,
    pub category: String,
    pub machine_dependent: String,
}

impl Default for KeyRules {
    fn default() -> Self {
        KeyRules {
            percent: "an answer with unit \"fraction\" accepts a fraction (0.9772) or a percentage: a value above 1, \
                      or one written with %, is divided by 100"
                .into(),
            interval: "numbers are accepted within [low, high]: the 95% prediction interval of one new replicate, \
                       mean ± t(n−1)·s·√(1 + 1/n), widened to at least half a unit of the last printed decimal"
                .into(),
            category: "categories are matched as text, ignoring case and surrounding spaces".into(),
            machine_dependent: "answers marked machine_dependent (times, speeds) are graded like the others but \
                                counted apart: they describe the machine that ran the reference"
                .into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerKind {
    /// A replicate summary: mean, std, n.
    Replicates,
    /// One exact number.
    Exact,
    Category,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyAnswer {
    pub id: String,
    /// The report page that prints it.
    pub page: String,
    pub kind: AnswerKind,
    /// What the page shows.
    pub shown: String,
    /// `fraction` for answers printed as percentages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub std: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high: Option<f64>,
    /// The category, for categorical answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// For a choice: how many replicates, each on its own, make the same choice, of how many.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agree: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub of: Option<u64>,
    /// A time or a speed: it describes the machine that ran the reference more than the model, so
    /// a grader reads it as information, not as a right or wrong answer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub machine_dependent: bool,
}

impl AnswerKey {
    /// The key of the answers `pages` printed: (page name, its answers in print order). An id
    /// printed twice must show the same value both times.
    pub fn new(manifest: &RunManifest, pages: &[(String, Vec<RecordedAnswer>)]) -> Result<AnswerKey> {
        let mut answers: Vec<KeyAnswer> = Vec::new();
        for (page, recorded) in pages {
            for answer in recorded {
                let entry = key_answer(page, answer).with_context(|| format!("answer {} on page {page}", answer.id))?;
                match answers.iter().find(|a| a.id == entry.id) {
                    Some(earlier) if earlier.shown == entry.shown => {}
                    Some(earlier) => {
                        bail!(
                            "answer {} is printed as `{}` and as `{}`: one id, one answer",
                            entry.id,
                            earlier.shown,
                            entry.shown
                        )
                    }
                    None => answers.push(entry),
                }
            }
        }
        let run = KeyRun {
            profile: manifest.profile.clone(),
            seed: manifest.seed,
            commit: manifest.git_commit.clone(),
            finished_at: manifest.finished_at.clone().unwrap_or_else(|| "unfinished".into()),
        };
        Ok(AnswerKey { run, rules: KeyRules::default(), answers })
    }

    pub fn to_toml(&self) -> Result<String> {
        Ok(toml::to_string(self)?)
    }

    pub fn read(path: &Path) -> Result<AnswerKey> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the answer key {}", path.display()))?;
        toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is not an answer key: {}", path.display(), one_line(&e.to_string())))
    }

    pub fn answer(&self, id: &str) -> Option<&KeyAnswer> {
        self.answers.iter().find(|a| a.id == id)
    }
}

/// A multi-line parser message on one line.
pub(crate) fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn key_answer(page: &str, answer: &RecordedAnswer) -> Result<KeyAnswer> {
    let scale = if answer.percent { 100.0 } else { 1.0 };
    let mut entry = KeyAnswer {
        id: answer.id.clone(),
        page: page.to_string(),
        kind: AnswerKind::Exact,
        shown: answer.text.clone(),
        unit: answer.percent.then(|| "fraction".to_string()),
        mean: None,
        std: None,
        n: None,
        low: None,
        high: None,
        value: None,
        agree: None,
        of: None,
        machine_dependent: answer.timing,
    };
    if let Some(agreement) = &answer.agreement {
        let count = |name: &str| agreement.get(name).and_then(serde_json::Value::as_u64);
        let (agree, of) = (count("agree"), count("of"));
        anyhow::ensure!(agree.is_some() && of.is_some(), "agreement {agreement} is not {{agree, of}}");
        (entry.agree, entry.of) = (agree, of);
    }
    // Half a unit of the last printed decimal, in the value's own unit.
    let rounding = |decimals: usize| 0.5 * 10f64.powi(-(decimals as i32)) / scale;
    match &answer.value {
        serde_json::Value::Object(summary) => {
            let number = |name: &str| summary.get(name).and_then(serde_json::Value::as_f64);
            let mean = number("mean").context("summary without a mean")?;
            let n = summary.get("n").and_then(serde_json::Value::as_u64).context("summary without n")?;
            let std = number("std");
            let floor = rounding(answer.decimals.context("a summary printed without decimals")?);
            let (low, high) = std
                .and_then(|s| prediction_interval_of(mean, s, n as usize))
                .map_or((mean - floor, mean + floor), |(low, high)| (low.min(mean - floor), high.max(mean + floor)));
            entry.kind = AnswerKind::Replicates;
            (entry.mean, entry.std, entry.n, entry.low, entry.high) = (Some(mean), std, Some(n), Some(low), Some(high));
        }
        serde_json::Value::Number(number) => {
            let x = number.as_f64().context("not a finite number")?;
            let decimals = answer.decimals.unwrap_or_else(|| printed_decimals(&number.to_string()));
            let floor = rounding(decimals);
            (entry.mean, entry.low, entry.high) = (Some(x), Some(x - floor), Some(x + floor));
        }
        serde_json::Value::String(text) => match text.trim().parse::<f64>() {
            // A number that reached the page as text (a sweep value) is still a number.
            Ok(x) if x.is_finite() => {
                let floor = rounding(printed_decimals(text.trim()));
                (entry.mean, entry.low, entry.high) = (Some(x), Some(x - floor), Some(x + floor));
            }
            _ => {
                entry.kind = AnswerKind::Category;
                entry.value = Some(text.clone());
            }
        },
        other => bail!("cannot key a value {other}"),
    }
    Ok(entry)
}

/// Decimals after the point in a number as printed (`0.001` → 3, `1e-4` → 4, `12` → 0).
fn printed_decimals(text: &str) -> usize {
    let lower = text.to_ascii_lowercase();
    let (mantissa, exponent) = match lower.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (lower.as_str(), 0),
    };
    let fraction = mantissa.split_once('.').map_or(0, |(_, f)| f.len() as i32);
    (fraction - exponent).max(0) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn recorded(id: &str, value: serde_json::Value, percent: bool, decimals: Option<usize>) -> RecordedAnswer {
        RecordedAnswer { id: id.into(), text: value.to_string(), value, percent, decimals, agreement: None, timing: false }
    }

    fn manifest() -> RunManifest {
        serde_json::from_value(json!({
            "run_dir": "runs/x", "profile": "smoke", "profile_description": "", "seed": 42, "assignments": [],
            "hardware": {"cpu_model": "cpu", "logical_cores": 2, "memory_gib": 1.0, "threads_used": 1},
            "os": "", "rustc": "", "crates": [], "nnlab_version": "0", "git_commit": "abc",
            "started_at": "t0", "finished_at": "t1", "wall_seconds": 1.0, "jobs": []
        }))
        .unwrap()
    }

    #[test]
    fn each_kind_of_answer_gets_its_interval() {
        let pages = vec![(
            "a1".to_string(),
            vec![
                recorded("acc", json!({"mean": 0.9, "std": 0.01, "n": 3, "min": 0.89, "max": 0.91}), true, Some(2)),
                recorded("params", json!(203530), false, None),
                recorded("lr", json!("0.05"), false, None),
                RecordedAnswer {
                    agreement: Some(json!({"agree": 2, "of": 3})),
                    ..recorded("best", json!("a7a.cnn3"), false, None)
                },
                recorded("single", json!({"mean": 0.5, "std": null, "n": 1}), false, Some(3)),
            ],
        )];
        let key = AnswerKey::new(&manifest(), &pages).unwrap();
        let acc = key.answer("acc").unwrap();
        // t(0.975, 2) = 4.3027, √(4/3): half-width 0.04968.
        assert_eq!((acc.kind, acc.unit.as_deref()), (AnswerKind::Replicates, Some("fraction")));
        assert!((acc.high.unwrap() - 0.94968).abs() < 1e-4 && (acc.low.unwrap() - 0.85032).abs() < 1e-4);
        let params = key.answer("params").unwrap();
        assert_eq!((params.low, params.high), (Some(203529.5), Some(203530.5)));
        let lr = key.answer("lr").unwrap();
        assert_eq!(lr.kind, AnswerKind::Exact);
        assert!((lr.high.unwrap() - 0.055).abs() < 1e-12);
        let best = key.answer("best").unwrap();
        assert_eq!((best.value.as_deref(), best.agree, best.of), (Some("a7a.cnn3"), Some(2), Some(3)));
        let single = key.answer("single").unwrap();
        assert!((single.high.unwrap() - 0.5005).abs() < 1e-12, "n = 1: the printed rounding only");
        // Written and read back unchanged.
        let text = key.to_toml().unwrap();
        assert_eq!(toml::from_str::<AnswerKey>(&text).unwrap(), key);
    }

    #[test]
    fn one_id_printed_with_two_values_is_refused() {
        let pages = vec![
            ("a1".to_string(), vec![recorded("x", json!(1), false, None)]),
            ("a2".to_string(), vec![recorded("x", json!(1), false, None), recorded("x", json!(2), false, None)]),
        ];
        let message = AnswerKey::new(&manifest(), &pages).unwrap_err().to_string();
        assert!(message.contains("answer x is printed as"), "{message}");
    }

    #[test]
    fn decimals_as_printed() {
        assert_eq!(printed_decimals("0.001"), 3);
        assert_eq!(printed_decimals("1e-4"), 4);
        assert_eq!(printed_decimals("2.5E-3"), 4);
        assert_eq!(printed_decimals("12"), 0);
    }
}
