//! Fidelity to Keras in distribution: an nnlab run's replicates beside the Keras peer's
//! (`bench/keras_fidelity.py`, the same experiments with the catalogue's own settings), per
//! experiment: test accuracy and loss as mean ± std (n), Welch's test of each difference, and how
//! much validation accuracy moves from one epoch to the next (a curve that jumps where the other is
//! smooth points at a different update rule even when the means agree).

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::stats::{welch, Welch};
use crate::tables::Tables;

/// One model trained by the peer; fields beyond these are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct PeerRun {
    pub experiment: String,
    pub test_acc: f64,
    pub test_loss: f64,
    #[serde(default)]
    pub val_acc: Vec<f64>,
}

/// The peer's JSON lines; blank lines are skipped.
pub fn parse_peer(text: &str) -> Result<Vec<PeerRun>> {
    let lines = text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty());
    lines.map(|(i, line)| serde_json::from_str(line).with_context(|| format!("peer results, line {}", i + 1))).collect()
}

/// Replicate values of one side.
#[derive(Debug, Clone, Default)]
pub struct Side {
    pub test_acc: Vec<f64>,
    pub test_loss: Vec<f64>,
    /// Per replicate, the largest |validation accuracy change| between consecutive epochs.
    pub val_acc_jump: Vec<f64>,
}

/// One experiment both sides trained.
#[derive(Debug, Clone)]
pub struct Row {
    pub experiment: String,
    pub nnlab: Side,
    pub keras: Side,
}

impl Row {
    pub fn acc_test(&self) -> Option<Welch> {
        welch(&self.nnlab.test_acc, &self.keras.test_acc)
    }
    pub fn loss_test(&self) -> Option<Welch> {
        welch(&self.nnlab.test_loss, &self.keras.test_loss)
    }
}

/// The largest |change| between consecutive values (0 for fewer than two).
pub fn largest_jump(curve: &[f64]) -> f64 {
    curve.windows(2).map(|w| (w[1] - w[0]).abs()).fold(0.0, f64::max)
}

/// The experiments of `peer` that the run also trained, in the peer's order.
pub fn pair(tables: &Tables, peer: &[PeerRun]) -> Result<Vec<Row>> {
    let mut rows: Vec<Row> = Vec::new();
    for run in peer {
        let row = match rows.iter_mut().position(|r| r.experiment == run.experiment) {
            Some(i) => &mut rows[i],
            None => {
                let Ok(test_acc) = tables.replicate_values(&run.experiment, "test_acc") else { continue };
                let test_loss = tables.replicate_values(&run.experiment, "test_loss")?;
                let val_acc_jump = (0..test_acc.len() as u32)
                    .map(|replicate| {
                        let history = tables.replicate_history(&run.experiment, replicate)?;
                        Ok(largest_jump(&history.iter().filter_map(|h| h[4]).collect::<Vec<_>>()))
                    })
                    .collect::<Result<_>>()?;
                let nnlab = Side { test_acc, test_loss, val_acc_jump };
                rows.push(Row { experiment: run.experiment.clone(), nnlab, keras: Side::default() });
                rows.last_mut().expect("just pushed")
            }
        };
        row.keras.test_acc.push(run.test_acc);
        row.keras.test_loss.push(run.test_loss);
        row.keras.val_acc_jump.push(largest_jump(&run.val_acc));
    }
    Ok(rows)
}

fn mean_std(xs: &[f64], scale: f64) -> String {
    let n = xs.len();
    let mean = xs.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return format!("{:.2} (n = 1)", mean * scale);
    }
    let std = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    format!("{:.2} ± {:.2} (n = {n})", mean * scale, std * scale)
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len().max(1) as f64
}

fn p_value(w: Option<Welch>) -> String {
    w.map_or("–".into(), |w| format!("{:.3}", w.p))
}

/// The table as Markdown under a heading that names both sides.
pub fn markdown(rows: &[Row], run: &str, peer: &str) -> String {
    let mut out = format!(
        "# Fidelity: nnlab vs Keras, in distribution\n\nnnlab run: `{run}`; Keras peer: `{peer}`. Test accuracy in %, \
         test loss ×100; p: Welch's two-sided test of the difference of means; jump: the largest change of \
         validation accuracy between consecutive epochs, in points, averaged over replicates.\n\n"
    );
    out += "| experiment | nnlab test acc | Keras test acc | p | nnlab test loss | Keras test loss | p | jump nnlab | jump Keras |\n";
    out += "|---|---|---|---:|---|---|---:|---:|---:|\n";
    for r in rows {
        out += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.2} | {:.2} |\n",
            r.experiment,
            mean_std(&r.nnlab.test_acc, 100.0),
            mean_std(&r.keras.test_acc, 100.0),
            p_value(r.acc_test()),
            mean_std(&r.nnlab.test_loss, 100.0),
            mean_std(&r.keras.test_loss, 100.0),
            p_value(r.loss_test()),
            mean(&r.nnlab.val_acc_jump) * 100.0,
            mean(&r.keras.val_acc_jump) * 100.0,
        );
    }
    out
}

pub fn csv(rows: &[Row]) -> String {
    let mut out = String::from(
        "experiment,nnlab_n,nnlab_test_acc,keras_n,keras_test_acc,acc_p,nnlab_test_loss,keras_test_loss,loss_p,nnlab_val_acc_jump,keras_val_acc_jump\n",
    );
    let p = |w: Option<Welch>| w.map_or(String::new(), |w| format!("{:.4}", w.p));
    for r in rows {
        out += &format!(
            "{},{},{:.6},{},{:.6},{},{:.6},{:.6},{},{:.6},{:.6}\n",
            r.experiment,
            r.nnlab.test_acc.len(),
            mean(&r.nnlab.test_acc),
            r.keras.test_acc.len(),
            mean(&r.keras.test_acc),
            p(r.acc_test()),
            mean(&r.nnlab.test_loss),
            mean(&r.keras.test_loss),
            p(r.loss_test()),
            mean(&r.nnlab.val_acc_jump),
            mean(&r.keras.val_acc_jump),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_and_peer_lines() {
        assert_eq!(largest_jump(&[0.90, 0.92, 0.905, 0.93]), 0.025000000000000022);
        assert_eq!(largest_jump(&[0.9]), 0.0);
        let peer = parse_peer(
            "{\"experiment\": \"a\", \"seed\": 1, \"test_acc\": 0.9, \"test_loss\": 0.3, \"val_acc\": [0.8, 0.9]}\n\n",
        )
        .unwrap();
        assert_eq!(peer.len(), 1);
        assert_eq!(peer[0].val_acc, vec![0.8, 0.9]);
        assert!(parse_peer("{\"experiment\": \"a\"}").unwrap_err().to_string().contains("line 1"));
    }

    #[test]
    fn the_table_states_means_and_the_test() {
        let side = |acc: &[f64]| Side { test_acc: acc.to_vec(), test_loss: vec![0.3, 0.31, 0.29], val_acc_jump: vec![0.01; 3] };
        let row = Row { experiment: "m".into(), nnlab: side(&[0.92, 0.93, 0.94]), keras: side(&[0.80, 0.81, 0.82]) };
        let md = markdown(std::slice::from_ref(&row), "runs/x", "peer.jsonl");
        assert!(md.contains("| m | 93.00 ± 1.00 (n = 3) | 81.00 ± 1.00 (n = 3) | 0.000 |"), "{md}");
        // Identical loss distributions: p = 1.
        assert!(md.contains("| 1.000 | 1.00 | 1.00 |"), "{md}");
    }
}
