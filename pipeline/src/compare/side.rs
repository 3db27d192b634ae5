//! One side of a comparison: a run directory, a `nnlab bench` output directory, or a peer's JSON
//! lines (e.g. the Keras runs of `bench/keras_fidelity.py`), read into one shape: per experiment,
//! sweep point and replicate, the final metrics and (for runs) the per-epoch history.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use polars::prelude::*;
use serde::Deserialize;

use crate::manifest::RunManifest;
use crate::tables::Tables;

/// What a side was read from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A run directory, with its manifest.
    Run(Box<RunManifest>),
    /// A `nnlab bench` output directory: throughput only, one value per timed epoch.
    Bench,
    /// A peer's JSON lines: one trained model per line.
    Peer,
}

/// One trained model (or, for a bench, one timed epoch) of a side.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    pub experiment: String,
    /// Sweep point label, empty outside sweeps.
    pub point: String,
    pub replicate: u32,
    pub seed: Option<u64>,
    pub test_acc: Option<f64>,
    pub test_loss: Option<f64>,
    pub samples_per_s: Option<f64>,
    /// Per epoch: training loss, training accuracy, validation loss, validation accuracy.
    pub history: Vec<EpochValues>,
}

/// Names of the history columns, in [`Record::history`]'s order.
pub const HISTORY_METRICS: [&str; 4] = ["loss", "acc", "val_loss", "val_acc"];

#[derive(Debug, Clone)]
pub struct Side {
    /// How the side is named on the page: its path as given.
    pub label: String,
    pub source: Source,
    /// The profile the side was measured under, where it says.
    pub profile: Option<String>,
    pub records: Vec<Record>,
}

impl Side {
    /// Reads `path`: a directory with `manifest.json` and `tables/` is a run, a directory with
    /// `throughput.jsonl` a bench output, a file a peer's JSON lines.
    pub fn load(path: &Path) -> Result<Side> {
        let label = path.display().to_string();
        if path.is_file() {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {label}"))?;
            let (profile, records) = parse_peer(&text).with_context(|| label.clone())?;
            return Ok(Side { label, source: Source::Peer, profile, records });
        }
        if path.join("manifest.json").is_file() {
            let text = std::fs::read_to_string(path.join("manifest.json"))?;
            let manifest: RunManifest = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a valid run manifest", path.join("manifest.json").display()))?;
            let tables = Tables::read(&path.join("tables"))?;
            let records = run_records(&tables).with_context(|| format!("reading the tables of {label}"))?;
            return Ok(Side { label, profile: Some(manifest.profile.clone()), source: Source::Run(Box::new(manifest)), records });
        }
        if path.join("throughput.jsonl").is_file() {
            let text = std::fs::read_to_string(path.join("throughput.jsonl"))?;
            let records = bench_records(&text).with_context(|| format!("{}", path.join("throughput.jsonl").display()))?;
            return Ok(Side { label, source: Source::Bench, profile: None, records });
        }
        bail!("{label} is neither a run directory (manifest.json), a bench output (throughput.jsonl) nor a JSON-lines file")
    }

    pub fn manifest(&self) -> Option<&RunManifest> {
        match &self.source {
            Source::Run(manifest) => Some(manifest),
            _ => None,
        }
    }
}

/// The final metrics of every job of a run, with each replicate's history.
fn run_records(tables: &Tables) -> Result<Vec<Record>> {
    let finals = &tables.finals;
    let (experiments, points) = (strings(finals, "experiment")?, strings(finals, "point")?);
    let (replicates, seeds) = (u64s(finals, "replicate")?, u64s(finals, "seed")?);
    let (acc, loss, speed) = (floats(finals, "test_acc")?, floats(finals, "test_loss")?, floats(finals, "train_samples_per_s")?);
    let mut histories = run_histories(&tables.history)?;
    let mut records = Vec::with_capacity(finals.height());
    for row in 0..finals.height() {
        let replicate = replicates[row].ok_or_else(|| anyhow!("final table: replicate empty at row {row}"))? as u32;
        let key = (experiments[row].clone(), points[row].clone(), replicate);
        records.push(Record {
            history: histories.remove(&key).unwrap_or_default(),
            experiment: key.0,
            point: key.1,
            replicate,
            seed: seeds[row],
            test_acc: acc[row],
            test_loss: loss[row],
            samples_per_s: speed[row],
        });
    }
    Ok(records)
}

type HistoryKey = (String, String, u32);
/// One epoch's loss, accuracy, validation loss and validation accuracy.
type EpochValues = [Option<f64>; 4];

fn run_histories(history: &DataFrame) -> Result<BTreeMap<HistoryKey, Vec<EpochValues>>> {
    let (experiments, points) = (strings(history, "experiment")?, strings(history, "point")?);
    let (replicates, epochs) = (u64s(history, "replicate")?, u64s(history, "epoch")?);
    let metrics: Vec<Vec<Option<f64>>> = HISTORY_METRICS.iter().map(|m| floats(history, m)).collect::<Result<_>>()?;
    let mut rows: BTreeMap<HistoryKey, Vec<(u64, EpochValues)>> = BTreeMap::new();
    for row in 0..history.height() {
        let replicate = replicates[row].ok_or_else(|| anyhow!("history table: replicate empty at row {row}"))? as u32;
        let epoch = epochs[row].ok_or_else(|| anyhow!("history table: epoch empty at row {row}"))?;
        let values = [metrics[0][row], metrics[1][row], metrics[2][row], metrics[3][row]];
        rows.entry((experiments[row].clone(), points[row].clone(), replicate)).or_default().push((epoch, values));
    }
    Ok(rows
        .into_iter()
        .map(|(key, mut epochs)| {
            epochs.sort_by_key(|(epoch, _)| *epoch);
            (key, epochs.into_iter().map(|(_, values)| values).collect())
        })
        .collect())
}

fn column<'a>(df: &'a DataFrame, name: &str) -> Result<&'a Column> {
    df.column(name).map_err(|_| anyhow!("result table lacks column {name}"))
}

fn strings(df: &DataFrame, name: &str) -> Result<Vec<String>> {
    let values = column(df, name)?.str()?.clone();
    Ok((0..values.len()).map(|i| values.get(i).unwrap_or_default().to_string()).collect())
}

fn floats(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>> {
    let cast = column(df, name)?.cast(&DataType::Float64)?;
    let values = cast.f64()?;
    Ok((0..values.len()).map(|i| values.get(i).filter(|v| !v.is_nan())).collect())
}

fn u64s(df: &DataFrame, name: &str) -> Result<Vec<Option<u64>>> {
    let cast = column(df, name)?.cast(&DataType::UInt64)?;
    let values = cast.u64()?;
    Ok((0..values.len()).map(|i| values.get(i)).collect())
}

/// One line of a peer's results; fields beyond these are ignored.
#[derive(Debug, Deserialize)]
struct PeerLine {
    experiment: String,
    #[serde(default)]
    point: String,
    seed: Option<u64>,
    test_acc: Option<f64>,
    test_loss: Option<f64>,
    #[serde(alias = "train_samples_per_s")]
    samples_per_s: Option<f64>,
    /// Per-epoch training loss and accuracy, and validation loss and accuracy.
    #[serde(default)]
    loss: Vec<f64>,
    #[serde(default)]
    acc: Vec<f64>,
    #[serde(default)]
    val_acc: Vec<f64>,
    #[serde(default)]
    val_loss: Vec<f64>,
    profile: Option<String>,
}

/// The peer's JSON lines (blank lines skipped): the records, numbered per experiment and point in
/// line order, and the profile they state (all lines must agree).
pub fn parse_peer(text: &str) -> Result<(Option<String>, Vec<Record>)> {
    let mut records: Vec<Record> = Vec::new();
    let mut profile: Option<String> = None;
    for (i, line) in text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty()) {
        let peer: PeerLine = serde_json::from_str(line).with_context(|| format!("line {}", i + 1))?;
        if let Some(stated) = &peer.profile {
            match &profile {
                Some(first) if first != stated => bail!("line {}: profile {stated}, while earlier lines say {first}", i + 1),
                _ => profile = Some(stated.clone()),
            }
        }
        let replicate = records.iter().filter(|r| r.experiment == peer.experiment && r.point == peer.point).count() as u32;
        let curves = [&peer.loss, &peer.acc, &peer.val_loss, &peer.val_acc];
        let epochs = curves.iter().map(|c| c.len()).max().unwrap_or(0);
        let history = (0..epochs).map(|e| curves.map(|c| c.get(e).copied())).collect();
        records.push(Record {
            experiment: peer.experiment,
            point: peer.point,
            replicate,
            seed: peer.seed,
            test_acc: peer.test_acc,
            test_loss: peer.test_loss,
            samples_per_s: peer.samples_per_s,
            history,
        });
    }
    if records.is_empty() {
        bail!("no results in it");
    }
    Ok((profile, records))
}

/// A bench output's rows: every timed epoch of a model is one record (its replicate number).
fn bench_records(text: &str) -> Result<Vec<Record>> {
    #[derive(Deserialize)]
    struct BenchLine {
        experiment: String,
        runs: Vec<f64>,
    }
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty()) {
        let bench: BenchLine = serde_json::from_str(line).with_context(|| format!("line {}", i + 1))?;
        for (replicate, samples_per_s) in bench.runs.into_iter().enumerate() {
            records.push(Record {
                experiment: bench.experiment.clone(),
                replicate: replicate as u32,
                samples_per_s: Some(samples_per_s),
                ..Record::default()
            });
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_lines_become_numbered_replicates_with_their_curves() {
        let text = "{\"experiment\": \"a1.cnn\", \"seed\": 7, \"test_acc\": 0.98, \"test_loss\": 0.05, \"val_acc\": [0.9, 0.95], \"profile\": \"full\"}\n\n\
                    {\"experiment\": \"a1.cnn\", \"seed\": 8, \"test_acc\": 0.97, \"test_loss\": 0.06, \"samples_per_s\": 500.0, \
                     \"loss\": [0.5, 0.3], \"acc\": [0.8, 0.9], \"val_loss\": [0.4, 0.35]}\n";
        let (profile, records) = parse_peer(text).unwrap();
        assert_eq!(profile.as_deref(), Some("full"));
        assert_eq!(records.iter().map(|r| r.replicate).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(records[0].history, vec![[None, None, None, Some(0.9)], [None, None, None, Some(0.95)]]);
        assert_eq!(records[1].history, vec![[Some(0.5), Some(0.8), Some(0.4), None], [Some(0.3), Some(0.9), Some(0.35), None]]);
        assert_eq!(records[1].samples_per_s, Some(500.0));
    }

    #[test]
    fn peer_lines_that_disagree_or_do_not_parse_are_named() {
        let mixed = "{\"experiment\": \"x\", \"profile\": \"full\"}\n{\"experiment\": \"x\", \"profile\": \"smoke\"}\n";
        assert!(parse_peer(mixed).unwrap_err().to_string().contains("line 2: profile smoke"));
        assert!(parse_peer("{\"experiment\": 3}").unwrap_err().to_string().contains("line 1"));
        assert!(parse_peer("\n").unwrap_err().to_string().contains("no results"));
    }

    #[test]
    fn bench_runs_are_replicates_of_throughput() {
        let records = bench_records("{\"experiment\": \"a1.cnn\", \"batch_size\": 128, \"runs\": [600.0, 610.0]}\n").unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!((records[1].replicate, records[1].samples_per_s), (1, Some(610.0)));
    }
}
