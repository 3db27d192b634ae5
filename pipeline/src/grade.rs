//! Grading a submission against an answer key: a TOML (`"a1.q5.test_acc" = 97.7`) or CSV (`id,value`)
//! file of answer id → value, each value judged against the key's accepted interval or category.
//! A submission that cannot be read whole — unparseable, a value that is not a number where the key
//! wants one, an id given twice — is refused with one line per problem; nothing is graded around it.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nnlab_report::{Page, Renderer};
use serde::Serialize;

use crate::key::{one_line, AnswerKey, AnswerKind, KeyAnswer};

/// One submitted value as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Submitted {
    /// A number; `percent` when it was written with `%`.
    Number {
        value: f64,
        percent: bool,
    },
    Text(String),
}

impl Submitted {
    fn shown(&self) -> String {
        match self {
            Submitted::Number { value, percent: true } => format!("{value} %"),
            Submitted::Number { value, percent: false } => value.to_string(),
            Submitted::Text(text) => text.clone(),
        }
    }

    /// The number in it, `%` read off a text such as `"97.7 %"`.
    fn number(&self) -> Option<(f64, bool)> {
        match self {
            Submitted::Number { value, percent } => Some((*value, *percent)),
            Submitted::Text(text) => {
                let text = text.trim();
                let (digits, percent) = match text.strip_suffix('%') {
                    Some(digits) => (digits.trim_end(), true),
                    None => (text, false),
                };
                digits.parse::<f64>().ok().filter(|v| v.is_finite()).map(|v| (v, percent))
            }
        }
    }
}

/// Reads a submission: `.toml` (nested tables are read as dotted ids) or `.csv` (`id,value` per line,
/// an optional `id,value` header).
pub fn read_submission(path: &Path) -> Result<Vec<(String, Submitted)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the submission {}", path.display()))?;
    let name = path.display();
    match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => parse_toml(&text).with_context(|| format!("submission {name}")),
        Some("csv") => parse_csv(&text).with_context(|| format!("submission {name}")),
        _ => bail!("submission {name}: expected a .toml or .csv file"),
    }
}

fn parse_toml(text: &str) -> Result<Vec<(String, Submitted)>> {
    let table: toml::Table = toml::from_str(text).map_err(|e| anyhow!("not valid TOML: {}", one_line(&e.to_string())))?;
    let mut out = Vec::new();
    let mut problems = Vec::new();
    flatten("", &table, &mut out, &mut problems);
    if !problems.is_empty() {
        bail!(problems.join("\n"));
    }
    Ok(out)
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<(String, Submitted)>, problems: &mut Vec<String>) {
    for (key, value) in table {
        let id = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match value {
            toml::Value::Table(inner) => flatten(&id, inner, out, problems),
            toml::Value::Float(v) => out.push((id, Submitted::Number { value: *v, percent: false })),
            toml::Value::Integer(v) => out.push((id, Submitted::Number { value: *v as f64, percent: false })),
            toml::Value::String(s) => out.push((id, Submitted::Text(s.clone()))),
            other => problems.push(format!("{id}: {} is not a number or a text", other.type_str())),
        }
    }
}

fn parse_csv(text: &str) -> Result<Vec<(String, Submitted)>> {
    let mut out: Vec<(String, Submitted)> = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (i == 0 && line.replace(' ', "").eq_ignore_ascii_case("id,value")) {
            continue;
        }
        let Some((id, value)) = line.split_once(',') else {
            problems.push(format!("line {}: expected `id,value`, found `{line}`", i + 1));
            continue;
        };
        let unquote = |s: &str| s.trim().trim_matches('"').trim().to_string();
        let (id, value) = (unquote(id), unquote(value));
        if id.is_empty() {
            problems.push(format!("line {}: no answer id", i + 1));
            continue;
        }
        let submitted = match value.parse::<f64>() {
            Ok(v) if v.is_finite() => Submitted::Number { value: v, percent: false },
            _ => Submitted::Text(value),
        };
        out.push((id, submitted));
    }
    if !problems.is_empty() {
        bail!(problems.join("\n"));
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Within,
    Outside,
    Missing,
    UnknownId,
}

impl Status {
    pub fn text(self) -> &'static str {
        match self {
            Status::Within => "within",
            Status::Outside => "outside",
            Status::Missing => "missing",
            Status::UnknownId => "unknown id",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GradeRow {
    pub id: String,
    pub submitted: String,
    /// The value graded, after the key's percentage rule.
    pub read_as: Option<f64>,
    pub accepted: String,
    pub status: Status,
    /// A time or a speed (the key's `machine_dependent`): shown, but not counted with the others.
    pub machine_dependent: bool,
}

/// Counts over the answers that are not machine-dependent (`machine_*` over those that are).
#[derive(Debug, Clone, Serialize)]
pub struct Grade {
    pub rows: Vec<GradeRow>,
    pub within: usize,
    pub outside: usize,
    pub missing: usize,
    pub unknown: usize,
    pub machine_within: usize,
    pub machine_total: usize,
}

/// Grades `submission` against `key`: every key answer in key order, then the unknown ids.
pub fn grade(key: &AnswerKey, submission: &[(String, Submitted)]) -> Result<Grade> {
    let mut problems = Vec::new();
    for (i, (id, _)) in submission.iter().enumerate() {
        if submission[..i].iter().any(|(earlier, _)| earlier == id) {
            problems.push(format!("{id}: given more than once"));
        }
    }
    let mut rows = Vec::new();
    for answer in &key.answers {
        let accepted = accepted_text(answer);
        let Some((_, value)) = submission.iter().find(|(id, _)| *id == answer.id) else {
            rows.push(GradeRow {
                id: answer.id.clone(),
                submitted: String::new(),
                read_as: None,
                accepted,
                status: Status::Missing,
                machine_dependent: answer.machine_dependent,
            });
            continue;
        };
        let (status, read_as) = match answer.kind {
            AnswerKind::Category => {
                let expected = answer.value.as_deref().unwrap_or_default();
                let same = value.shown().trim().eq_ignore_ascii_case(expected.trim());
                (if same { Status::Within } else { Status::Outside }, None)
            }
            AnswerKind::Exact | AnswerKind::Replicates => {
                let Some((mut x, percent)) = value.number() else {
                    problems.push(format!("{}: `{}` is not a number", answer.id, value.shown()));
                    continue;
                };
                if answer.unit.as_deref() == Some("fraction") && (percent || x > 1.0) {
                    x /= 100.0;
                }
                let (low, high) = (answer.low.unwrap_or(f64::NAN), answer.high.unwrap_or(f64::NAN));
                (if (low..=high).contains(&x) { Status::Within } else { Status::Outside }, Some(x))
            }
        };
        rows.push(GradeRow {
            id: answer.id.clone(),
            submitted: value.shown(),
            read_as,
            accepted,
            status,
            machine_dependent: answer.machine_dependent,
        });
    }
    if !problems.is_empty() {
        bail!("the submission cannot be graded:\n{}", problems.join("\n"));
    }
    for (id, value) in submission.iter().filter(|(id, _)| key.answer(id).is_none()) {
        rows.push(GradeRow {
            id: id.clone(),
            submitted: value.shown(),
            read_as: None,
            accepted: "–".into(),
            status: Status::UnknownId,
            machine_dependent: false,
        });
    }
    let count = |status| rows.iter().filter(|r| r.status == status && !r.machine_dependent).count();
    let machine = || rows.iter().filter(|r| r.machine_dependent);
    Ok(Grade {
        within: count(Status::Within),
        outside: count(Status::Outside),
        missing: count(Status::Missing),
        unknown: count(Status::UnknownId),
        machine_within: machine().filter(|r| r.status == Status::Within).count(),
        machine_total: machine().count(),
        rows,
    })
}

fn accepted_text(answer: &KeyAnswer) -> String {
    match (answer.kind, answer.low, answer.high) {
        (AnswerKind::Category, ..) => format!("`{}`", answer.value.as_deref().unwrap_or_default()),
        (_, Some(low), Some(high)) => format!("[{}, {}]", significant(low), significant(high)),
        _ => "–".into(),
    }
}

/// Six significant digits: enough to tell an interval's ends apart from its neighbours.
fn significant(x: f64) -> String {
    let text = format!("{x:.6e}");
    text.parse::<f64>().map_or(text, |v| v.to_string())
}

#[derive(Serialize)]
struct GradeContext<'a> {
    key: String,
    submission: String,
    run: &'a crate::key::KeyRun,
    rules: &'a crate::key::KeyRules,
    grade: &'a Grade,
    rows: Vec<RowView>,
    csv: &'static str,
}

#[derive(Serialize)]
struct RowView {
    id: String,
    submitted: String,
    read_as: String,
    accepted: String,
    status: &'static str,
    within: bool,
    machine_dependent: bool,
}

const CSV_FILE: &str = "grade.csv";

/// Writes `grade.md`, `grade.html` and `grade.csv` into `out_dir`; returns the HTML page's path.
pub fn write(
    grade: &Grade,
    key: &AnswerKey,
    key_path: &Path,
    submission: &Path,
    templates: &Path,
    out_dir: &Path,
) -> Result<PathBuf> {
    std::fs::create_dir_all(out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let rows = grade
        .rows
        .iter()
        .map(|r| RowView {
            id: r.id.clone(),
            submitted: if r.submitted.is_empty() { "–".into() } else { r.submitted.clone() },
            read_as: r.read_as.map_or("".into(), |x| x.to_string()),
            accepted: r.accepted.clone(),
            status: r.status.text(),
            within: r.status == Status::Within,
            machine_dependent: r.machine_dependent,
        })
        .collect();
    let context = GradeContext {
        key: key_path.display().to_string(),
        submission: submission.display().to_string(),
        run: &key.run,
        rules: &key.rules,
        grade,
        rows,
        csv: CSV_FILE,
    };
    let renderer = Renderer::new(templates).with_context(|| format!("loading the templates in {}", templates.display()))?;
    let page = Page {
        name: "grade".into(),
        title: format!("Grade: {}", submission.display()),
        template: "grade".into(),
        context: serde_json::to_value(&context)?,
        profile: key.run.profile.clone(),
        generated_at: crate::manifest::utc_now(),
    };
    nnlab_report::write_atomic(&out_dir.join(CSV_FILE), csv(grade).as_bytes())?;
    renderer.render_page(&page, out_dir)?;
    Ok(out_dir.join("grade.html"))
}

pub fn csv(grade: &Grade) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut out = String::from("id,submitted,read_as,accepted,machine_dependent,status\n");
    for r in &grade.rows {
        out += &format!(
            "{},{},{},{},{},{}\n",
            quote(&r.id),
            quote(&r.submitted),
            r.read_as.map_or(String::new(), |x| x.to_string()),
            quote(&r.accepted),
            r.machine_dependent,
            r.status.text()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{KeyRules, KeyRun};

    fn key() -> AnswerKey {
        let answer = |id: &str, kind, unit: Option<&str>, low, high, value: Option<&str>| KeyAnswer {
            id: id.into(),
            page: "a1".into(),
            kind,
            shown: String::new(),
            unit: unit.map(str::to_string),
            mean: None,
            std: None,
            n: None,
            low,
            high,
            value: value.map(str::to_string),
            agree: None,
            of: None,
            machine_dependent: false,
        };
        AnswerKey {
            run: KeyRun { profile: "smoke".into(), seed: 42, commit: "c".into(), finished_at: "t".into() },
            rules: KeyRules::default(),
            answers: vec![
                answer("a1.acc", AnswerKind::Replicates, Some("fraction"), Some(0.95), Some(0.97), None),
                answer("a1.params", AnswerKind::Exact, None, Some(99.5), Some(100.5), None),
                answer("a1.best", AnswerKind::Category, None, None, None, Some("a7a.cnn3")),
                answer("a1.loss", AnswerKind::Replicates, None, Some(0.1), Some(0.2), None),
                KeyAnswer {
                    machine_dependent: true,
                    ..answer("a1.seconds", AnswerKind::Replicates, None, Some(1.0), Some(2.0), None)
                },
            ],
        }
    }

    #[test]
    fn fractions_percentages_categories_missing_and_unknown_ids() {
        let submission = parse_toml(
            "\"a1.acc\" = \"96 %\"\n\"a1.best\" = \" A7A.CNN3 \"\n\"a1.params\" = 101\nx.y = 3\n\"a1.seconds\" = 1.5\n",
        )
        .unwrap();
        let grade = grade(&key(), &submission).unwrap();
        let status = |id: &str| grade.rows.iter().find(|r| r.id == id).unwrap().status;
        assert_eq!(status("a1.acc"), Status::Within);
        assert_eq!(status("a1.params"), Status::Outside);
        assert_eq!(status("a1.best"), Status::Within);
        assert_eq!(status("a1.loss"), Status::Missing);
        assert_eq!(status("x.y"), Status::UnknownId, "nested TOML tables are dotted ids");
        assert_eq!((grade.within, grade.outside, grade.missing, grade.unknown), (2, 1, 1, 1));
        assert_eq!((grade.machine_within, grade.machine_total), (1, 1), "a time is counted apart");
        assert_eq!((grade.machine_within, grade.machine_total), (1, 1), "a time is counted apart");
        // The same answers as fractions and plain percentages, from CSV.
        let csv = parse_csv("id,value\na1.acc,0.96\na1.loss,0.15\n").unwrap();
        assert_eq!(super::grade(&key(), &csv).unwrap().within, 2);
        let csv = parse_csv("a1.acc,96.0\n").unwrap();
        assert_eq!(super::grade(&key(), &csv).unwrap().rows[0].read_as, Some(0.96));
    }

    #[test]
    fn bad_submissions_are_refused_with_one_line_per_problem() {
        let submission = parse_csv("a1.acc,ninety\na1.params,100\na1.params,100\n").unwrap();
        let message = grade(&key(), &submission).unwrap_err().to_string();
        assert!(message.contains("a1.params: given more than once"), "{message}");
        assert!(message.contains("a1.acc: `ninety` is not a number"), "{message}");
        assert!(parse_csv("a1.acc 0.9\n").unwrap_err().to_string().contains("line 1: expected `id,value`"));
        let message = parse_toml("\"a1.acc\" = [1, 2]\n\"a1.x\" = true").unwrap_err().to_string();
        assert_eq!(message.lines().count(), 2, "{message}");
        assert!(parse_toml("a1.acc = = 3").unwrap_err().to_string().starts_with("not valid TOML"));
        // TOML itself refuses an id given twice.
        assert!(parse_toml("\"a\" = 1\n\"a\" = 2\n").is_err());
    }
}
