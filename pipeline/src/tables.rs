//! The aggregation stage: every finished job's history and final metrics gathered into polars tables,
//! summarised per experiment (and per epoch) as mean / std / n / min / max across replicates, and
//! written as Parquet and CSV under `runs/<run>/tables/`. The report reads these files back, so
//! every number it prints is a number of these tables.

use std::fs::File;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use polars::prelude::*;
use serde::Serialize;

use crate::store::JobResult;

/// Metrics recorded per epoch.
pub const EPOCH_METRICS: [&str; 5] = ["loss", "acc", "val_loss", "val_acc", "seconds"];
/// Metrics recorded once per job.
pub const FINAL_METRICS: [&str; 5] = ["test_loss", "test_acc", "train_samples_per_s", "epoch_seconds", "wall_seconds"];

/// Summary of one metric across replicates. `std` is the sample standard deviation (n - 1), absent for n = 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stat {
    pub mean: f64,
    pub std: Option<f64>,
    pub n: usize,
    pub min: f64,
    pub max: f64,
}

/// One point of a per-epoch curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CurvePoint {
    pub epoch: usize,
    pub mean: f64,
    pub std: Option<f64>,
}

pub struct Tables {
    pub history: DataFrame,
    pub history_summary: DataFrame,
    pub finals: DataFrame,
    pub final_summary: DataFrame,
}

const NAMES: [&str; 4] = ["history", "history_summary", "final", "final_summary"];

impl Tables {
    /// Builds every table from the jobs' results.
    pub fn aggregate(results: &[JobResult]) -> Result<Self> {
        if results.is_empty() {
            bail!("no finished jobs to aggregate");
        }
        let history = history_frame(results)?;
        let finals = finals_frame(results)?;
        let history_summary = summarise(&history, &["experiment", "epoch"], &EPOCH_METRICS)?;
        let final_summary = summarise(&finals, &["experiment"], &FINAL_METRICS)?;
        Ok(Tables { history, history_summary, finals, final_summary })
    }

    /// Writes `<name>.parquet` and `<name>.csv` for each table, each file atomically.
    pub fn write(&mut self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        for (name, frame) in
            NAMES.into_iter().zip([&mut self.history, &mut self.history_summary, &mut self.finals, &mut self.final_summary])
        {
            write_frame(frame, &dir.join(format!("{name}.parquet")), |f, df| ParquetWriter::new(f).finish(df).map(|_| ()))?;
            write_frame(frame, &dir.join(format!("{name}.csv")), |f, df| CsvWriter::new(f).finish(df))?;
        }
        Ok(())
    }

    /// Reads the Parquet tables back.
    pub fn read(dir: &Path) -> Result<Self> {
        let read = |name: &str| -> Result<DataFrame> {
            let path = dir.join(format!("{name}.parquet"));
            let file = File::open(&path).with_context(|| format!("cannot open {} (run the pipeline first)", path.display()))?;
            ParquetReader::new(file).finish().map_err(|e| anyhow!("{} is not a valid table: {e}", path.display()))
        };
        Ok(Tables {
            history: read(NAMES[0])?,
            history_summary: read(NAMES[1])?,
            finals: read(NAMES[2])?,
            final_summary: read(NAMES[3])?,
        })
    }

    /// The across-replicate summary of a final metric of an experiment.
    pub fn stat(&self, experiment: &str, metric: &str) -> Result<Stat> {
        let df = rows_of(&self.final_summary, experiment)?;
        if df.height() != 1 {
            bail!("final_summary has {} rows for experiment {experiment}", df.height());
        }
        Ok(Stat {
            mean: f64_at(&df, &format!("{metric}_mean"), 0)?.ok_or_else(|| anyhow!("{experiment}: {metric} has no mean"))?,
            std: f64_at(&df, &format!("{metric}_std"), 0)?,
            n: u32_at(&df, "n", 0)? as usize,
            min: f64_at(&df, &format!("{metric}_min"), 0)?.unwrap_or(f64::NAN),
            max: f64_at(&df, &format!("{metric}_max"), 0)?.unwrap_or(f64::NAN),
        })
    }

    /// The per-epoch mean ± std curve of a metric (empty if the metric was never recorded, e.g. no validation).
    pub fn curve(&self, experiment: &str, metric: &str) -> Result<Vec<CurvePoint>> {
        let df = rows_of(&self.history_summary, experiment)?;
        let mut points = Vec::with_capacity(df.height());
        for row in 0..df.height() {
            if let Some(mean) = f64_at(&df, &format!("{metric}_mean"), row)? {
                points.push(CurvePoint {
                    epoch: u32_at(&df, "epoch", row)? as usize,
                    mean,
                    std: f64_at(&df, &format!("{metric}_std"), row)?,
                });
            }
        }
        Ok(points)
    }

    /// Each replicate's value of a final metric, in replicate order.
    pub fn replicate_values(&self, experiment: &str, metric: &str) -> Result<Vec<f64>> {
        let df = rows_of(&self.finals, experiment)?;
        (0..df.height()).map(|row| f64_at(&df, metric, row)?.ok_or_else(|| anyhow!("{experiment}: {metric} missing"))).collect()
    }

    /// One replicate's per-epoch rows: (epoch, loss, acc, val_loss, val_acc, seconds).
    pub fn replicate_history(&self, experiment: &str, replicate: u32) -> Result<Vec<[Option<f64>; 6]>> {
        let df = rows_of(&self.history, experiment)?.lazy().filter(col("replicate").eq(lit(replicate))).collect()?;
        let mut rows = Vec::with_capacity(df.height());
        for row in 0..df.height() {
            let mut values = [Some(u32_at(&df, "epoch", row)? as f64), None, None, None, None, None];
            for (slot, metric) in values[1..].iter_mut().zip(EPOCH_METRICS) {
                *slot = f64_at(&df, metric, row)?;
            }
            rows.push(values);
        }
        Ok(rows)
    }
}

fn history_frame(results: &[JobResult]) -> Result<DataFrame> {
    let rows: Vec<(&JobResult, &nnlab_nn::EpochRecord)> =
        results.iter().flat_map(|r| r.history.iter().map(move |e| (r, e))).collect();
    Ok(df!(
        "experiment" => rows.iter().map(|(r, _)| r.experiment.as_str()).collect::<Vec<_>>(),
        "replicate" => rows.iter().map(|(r, _)| r.replicate as u32).collect::<Vec<_>>(),
        "seed" => rows.iter().map(|(r, _)| r.seed).collect::<Vec<_>>(),
        "epoch" => rows.iter().map(|(_, e)| e.epoch as u32).collect::<Vec<_>>(),
        "loss" => rows.iter().map(|(_, e)| e.loss).collect::<Vec<_>>(),
        "acc" => rows.iter().map(|(_, e)| e.acc).collect::<Vec<_>>(),
        "val_loss" => rows.iter().map(|(_, e)| e.val_loss).collect::<Vec<_>>(),
        "val_acc" => rows.iter().map(|(_, e)| e.val_acc).collect::<Vec<_>>(),
        "seconds" => rows.iter().map(|(_, e)| e.seconds).collect::<Vec<_>>(),
        "train_seconds" => rows.iter().map(|(_, e)| e.train_seconds).collect::<Vec<_>>(),
    )?)
}

fn finals_frame(results: &[JobResult]) -> Result<DataFrame> {
    let epoch_seconds = |r: &JobResult| r.history.iter().map(|e| e.seconds).sum::<f64>() / r.history.len().max(1) as f64;
    Ok(df!(
        "experiment" => results.iter().map(|r| r.experiment.as_str()).collect::<Vec<_>>(),
        "replicate" => results.iter().map(|r| r.replicate as u32).collect::<Vec<_>>(),
        "seed" => results.iter().map(|r| r.seed).collect::<Vec<_>>(),
        "job" => results.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        "test_loss" => results.iter().map(|r| r.test.loss).collect::<Vec<_>>(),
        "test_acc" => results.iter().map(|r| r.test.acc).collect::<Vec<_>>(),
        "params" => results.iter().map(|r| r.params as u64).collect::<Vec<_>>(),
        "flops_per_sample" => results.iter().map(|r| r.flops_per_sample as u64).collect::<Vec<_>>(),
        "train_samples" => results.iter().map(|r| r.train_samples as u64).collect::<Vec<_>>(),
        "train_samples_per_s" => results.iter().map(|r| r.train_samples_per_s).collect::<Vec<_>>(),
        "epoch_seconds" => results.iter().map(epoch_seconds).collect::<Vec<_>>(),
        "wall_seconds" => results.iter().map(|r| r.wall_seconds).collect::<Vec<_>>(),
    )?)
}

/// Group by `keys` (in first-seen order) and summarise each metric: mean, std (ddof 1), min, max; n = group size.
pub(crate) fn summarise(frame: &DataFrame, keys: &[&str], metrics: &[&str]) -> Result<DataFrame> {
    let mut aggs = vec![len().alias("n")];
    for m in metrics {
        aggs.push(col(*m).mean().alias(format!("{m}_mean")));
        aggs.push(col(*m).std(1).alias(format!("{m}_std")));
        aggs.push(col(*m).min().alias(format!("{m}_min")));
        aggs.push(col(*m).max().alias(format!("{m}_max")));
    }
    let key_exprs: Vec<Expr> = keys.iter().map(|k| col(*k)).collect();
    Ok(frame.clone().lazy().group_by_stable(key_exprs).agg(aggs).collect()?)
}

fn rows_of(frame: &DataFrame, experiment: &str) -> Result<DataFrame> {
    let df = frame.clone().lazy().filter(col("experiment").eq(lit(experiment))).collect()?;
    if df.height() == 0 {
        bail!("the result tables hold no rows for experiment {experiment}");
    }
    Ok(df)
}

pub(crate) fn f64_at(df: &DataFrame, column: &str, row: usize) -> Result<Option<f64>> {
    let column = df.column(column).map_err(|_| anyhow!("result table lacks column {column}"))?;
    Ok(column.cast(&DataType::Float64)?.f64()?.get(row).filter(|v| !v.is_nan()))
}

pub(crate) fn u32_at(df: &DataFrame, name: &str, row: usize) -> Result<u32> {
    let column = df.column(name).map_err(|_| anyhow!("result table lacks column {name}"))?;
    column.cast(&DataType::UInt32)?.u32()?.get(row).ok_or_else(|| anyhow!("{name} is empty at row {row}"))
}

pub(crate) fn write_frame(
    frame: &mut DataFrame,
    path: &Path,
    writer: impl FnOnce(&mut File, &mut DataFrame) -> PolarsResult<()>,
) -> Result<()> {
    let tmp = path.with_extension(format!("{}.tmp", path.extension().and_then(|e| e.to_str()).unwrap_or("")));
    let mut file = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    writer(&mut file, frame).map_err(|e| anyhow!("cannot write {}: {e}", path.display()))?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nnlab_nn::{EpochRecord, Evaluation};

    fn result(experiment: &str, replicate: usize, acc: f64) -> JobResult {
        let epoch = |e: usize, v: f64| EpochRecord {
            epoch: e,
            loss: 1.0 / v,
            acc: v,
            val_loss: Some(2.0 / v),
            val_acc: Some(v - 0.01),
            seconds: 1.0,
            train_seconds: 0.8,
        };
        JobResult {
            id: format!("{experiment}-{replicate}"),
            experiment: experiment.into(),
            replicate,
            seed: replicate as u64,
            history: vec![epoch(1, acc - 0.1), epoch(2, acc)],
            test: Evaluation { loss: 0.3, acc },
            params: 10,
            flops_per_sample: 20,
            train_samples: 100,
            validation_samples: 25,
            test_samples: 50,
            train_samples_per_s: 1000.0 * replicate as f64,
            wall_seconds: 2.0,
            threads: 1,
            activations: None,
        }
    }

    #[test]
    fn summaries_are_mean_std_n_and_survive_parquet() {
        let results = vec![result("x.a", 1, 0.90), result("x.a", 2, 0.92), result("x.a", 3, 0.94), result("x.b", 1, 0.5)];
        let mut tables = Tables::aggregate(&results).unwrap();
        let dir = tempfile::tempdir().unwrap();
        tables.write(dir.path()).unwrap();
        assert!(dir.path().join("final_summary.csv").is_file());
        let tables = Tables::read(dir.path()).unwrap();

        let acc = tables.stat("x.a", "test_acc").unwrap();
        assert!((acc.mean - 0.92).abs() < 1e-12);
        assert!((acc.std.unwrap() - 0.02).abs() < 1e-12);
        assert_eq!((acc.n, acc.min, acc.max), (3, 0.90, 0.94));
        // A single replicate has no sample standard deviation.
        assert_eq!(tables.stat("x.b", "test_acc").unwrap().std, None);

        let curve = tables.curve("x.a", "val_acc").unwrap();
        assert_eq!(curve.len(), 2);
        assert_eq!(curve[1].epoch, 2);
        assert!((curve[1].mean - 0.91).abs() < 1e-12);
        assert_eq!(tables.replicate_values("x.a", "train_samples_per_s").unwrap(), vec![1000.0, 2000.0, 3000.0]);
        assert_eq!(tables.replicate_history("x.a", 2).unwrap()[1][2], Some(0.92));
        assert!(tables.stat("x.zzz", "test_acc").is_err());
    }
}
