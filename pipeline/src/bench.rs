//! Training throughput of every catalogue model on synthetic inputs of its shape and batch size:
//! the numbers behind "performance is a feature". Only training steps are timed (no data loading,
//! no validation), as the median of several timed epochs after a warm-up epoch.

use anyhow::{Context, Result};
use candle_core::Device;
use nnlab_nn::{fit, rng_stream, Dataset, Model, Silent, TrainConfig};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::catalogue::Experiment;

#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    pub experiment: String,
    pub batch_size: usize,
    pub params: usize,
    pub flops_per_sample: usize,
    /// Samples per second of each timed epoch.
    pub runs: Vec<f64>,
    pub median_samples_per_s: f64,
}

/// Batches per timed epoch: enough that per-epoch overhead (shuffling) is negligible.
const BATCHES_PER_EPOCH: usize = 16;

/// Times `experiment`'s training step: one warm-up epoch, then epochs until `min_runs` are done and
/// `min_seconds` have passed.
pub fn bench_experiment(experiment: &Experiment, min_runs: usize, min_seconds: f64) -> Result<BenchRow> {
    let device = Device::Cpu;
    let spec = &experiment.model;
    let batch_size = experiment.train.batch_size;
    let n = batch_size * BATCHES_PER_EPOCH;
    let mut rng = rng_stream(0, 7);
    let pixels: Vec<u8> = (0..n * spec.input_len()).map(|_| rng.random()).collect();
    let labels: Vec<u8> = (0..n).map(|_| rng.random_range(0..10)).collect();
    let data = Dataset::from_u8(&pixels, &labels, &spec.input, &device)?;
    let model = Model::build(spec, &mut rng_stream(0, 0), &device)?;
    let config = TrainConfig { epochs: 1, ..experiment.train.clone() };

    let mut train_rng = rng_stream(0, 1);
    fit(&model, &data, None, &config, &mut train_rng, &mut Silent)?; // warm-up
    let mut runs = Vec::new();
    let mut elapsed = 0.0;
    while runs.len() < min_runs || elapsed < min_seconds {
        let history = fit(&model, &data, None, &config, &mut train_rng, &mut Silent)?;
        let seconds = history[0].train_seconds;
        elapsed += seconds;
        runs.push(n as f64 / seconds);
    }
    let summary = nnlab_nn::Summary::of(spec)?;
    Ok(BenchRow {
        experiment: experiment.id.clone(),
        batch_size,
        params: summary.total_params,
        flops_per_sample: summary.flops_per_sample,
        median_samples_per_s: median(&runs),
        runs,
    })
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// The table as Markdown, headed by the machine's fingerprint.
pub fn markdown(rows: &[BenchRow], fingerprint: &str) -> String {
    let mut out = format!("# Training throughput\n\n{fingerprint}\n\n");
    out += "| model | batch | params | MFLOP/sample (fwd) | samples/s (median) | runs |\n|---|---:|---:|---:|---:|---:|\n";
    for r in rows {
        out += &format!(
            "| {} | {} | {} | {:.2} | {:.0} | {} |\n",
            r.experiment,
            r.batch_size,
            nnlab_nn::summary::group_thousands(r.params),
            r.flops_per_sample as f64 / 1e6,
            r.median_samples_per_s,
            r.runs.len()
        );
    }
    out
}

pub fn csv(rows: &[BenchRow]) -> String {
    let mut out = String::from("model,batch,params,flops_per_sample,samples_per_s_median,runs\n");
    for r in rows {
        out += &format!(
            "{},{},{},{},{:.1},{}\n",
            r.experiment,
            r.batch_size,
            r.params,
            r.flops_per_sample,
            r.median_samples_per_s,
            r.runs.len()
        );
    }
    out
}

/// Every row as one JSON object per line, each timed epoch's samples/s included: what `nnlab
/// compare` reads to compare two bench outputs with statistics.
pub fn json_lines(rows: &[BenchRow]) -> Result<String> {
    let mut out = String::new();
    for row in rows {
        out += &serde_json::to_string(row)?;
        out.push('\n');
    }
    Ok(out)
}

/// One model's throughput under the Keras/TensorFlow peer (`bench/keras_peer.py`, one JSON object
/// per line); fields beyond these are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct PeerRow {
    pub model: String,
    pub samples_per_s: f64,
}

/// The peer's JSON lines; blank lines are skipped.
pub fn parse_peer(text: &str) -> Result<Vec<PeerRow>> {
    let lines = text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty());
    lines.map(|(i, line)| serde_json::from_str(line).with_context(|| format!("peer results, line {}", i + 1))).collect()
}

/// One model both sides measured: nnlab's median samples/s and the peer's.
struct Paired<'a> {
    row: &'a BenchRow,
    peer: f64,
}

impl Paired<'_> {
    fn ratio(&self) -> f64 {
        self.row.median_samples_per_s / self.peer
    }
}

/// The models both sides measured, in nnlab's order.
fn paired<'a>(rows: &'a [BenchRow], peers: &[PeerRow]) -> Vec<Paired<'a>> {
    let peer_of = |r: &BenchRow| peers.iter().find(|p| p.model == r.experiment).map(|p| p.samples_per_s);
    rows.iter().filter_map(|row| peer_of(row).map(|peer| Paired { row, peer })).collect()
}

/// The side-by-side table as Markdown: nnlab's median samples/s, the peer's, and their ratio.
pub fn comparison_markdown(rows: &[BenchRow], peers: &[PeerRow], fingerprint: &str) -> String {
    let mut out = format!("# Training throughput: nnlab vs Keras/TensorFlow (CPU)\n\n{fingerprint}\n\n");
    out += "| model | batch | nnlab samples/s | Keras samples/s | nnlab / Keras |\n|---|---:|---:|---:|---:|\n";
    for p in paired(rows, peers) {
        let r = p.row;
        out += &format!(
            "| {} | {} | {:.0} | {:.0} | {:.2} |\n",
            r.experiment,
            r.batch_size,
            r.median_samples_per_s,
            p.peer,
            p.ratio()
        );
    }
    out
}

pub fn comparison_csv(rows: &[BenchRow], peers: &[PeerRow]) -> String {
    let mut out = String::from("model,batch,nnlab_samples_per_s,keras_samples_per_s,ratio\n");
    for p in paired(rows, peers) {
        let r = p.row;
        out += &format!("{},{},{:.1},{:.1},{:.3}\n", r.experiment, r.batch_size, r.median_samples_per_s, p.peer, p.ratio());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(experiment: &str, samples_per_s: f64) -> BenchRow {
        BenchRow {
            experiment: experiment.into(),
            batch_size: 128,
            params: 10,
            flops_per_sample: 20,
            runs: vec![samples_per_s],
            median_samples_per_s: samples_per_s,
        }
    }

    #[test]
    fn comparison_pairs_models_measured_by_both() {
        let peers = parse_peer(
            "{\"model\": \"a1.cnn\", \"batch\": 128, \"samples_per_s\": 400.0}\n\n{\"model\": \"x\", \"samples_per_s\": 1}\n",
        )
        .unwrap();
        let rows = [row("a1.cnn", 600.0), row("tp.mlp", 9000.0)];
        let csv = comparison_csv(&rows, &peers);
        assert_eq!(csv, "model,batch,nnlab_samples_per_s,keras_samples_per_s,ratio\na1.cnn,128,600.0,400.0,1.500\n");
        assert!(comparison_markdown(&rows, &peers, "m").contains("| a1.cnn | 128 | 600 | 400 | 1.50 |"));
        assert!(parse_peer("{\"model\": 3}").unwrap_err().to_string().contains("line 1"));
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }
}
