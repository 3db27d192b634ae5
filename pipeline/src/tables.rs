//! The aggregation stage: every finished job's history and final metrics gathered into polars tables,
//! summarised per experiment and sweep point (and per epoch) as mean / std / n / min / max across
//! replicates, and written as Parquet and CSV under `runs/<run>/tables/`. Every row carries its sweep
//! point twice: as a `point` label (`units=100, lr=0.05`, empty outside sweeps) and as one column per
//! sweep axis, so a question such as "test accuracy per lr" is a group-by. Evaluation jobs get
//! tables of their own, with one column per transform parameter. The report reads these files back,
//! so every number it prints is a number of these tables.

use std::fs::File;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use polars::prelude::*;
use serde::Serialize;

use crate::catalogue::{point_label, AxisValue};
use crate::store::{EvalResult, JobResult};

/// Metrics recorded per epoch.
pub const EPOCH_METRICS: [&str; 5] = ["loss", "acc", "val_loss", "val_acc", "seconds"];
/// Metrics recorded once per job. `val_acc_max` is the best epoch's validation accuracy and
/// `val_acc_max_epoch` that epoch (the first, on a tie); both are empty without validation data.
pub const FINAL_METRICS: [&str; 7] =
    ["test_loss", "test_acc", "val_acc_max", "val_acc_max_epoch", "train_samples_per_s", "epoch_seconds", "wall_seconds"];

/// Columns of the tables that no sweep axis may take as its name.
pub const RESERVED_COLUMNS: [&str; 10] =
    ["experiment", "point", "replicate", "seed", "epoch", "job", "evaluation", "transform", "trained_job", "n"];

/// Summary of one metric across replicates. `std` is the sample standard deviation (n - 1), absent for n = 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
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
    /// Evaluation jobs' metrics and their summary per (evaluation, experiment, transform); empty
    /// frames when the run has no evaluations.
    pub evaluations: DataFrame,
    pub evaluation_summary: DataFrame,
}

const NAMES: [&str; 6] = ["history", "history_summary", "final", "final_summary", "evaluation", "evaluation_summary"];

/// Metrics of an evaluation job; the last four only for reconstruction models (squared error of the
/// noisy and the reconstructed images, and a classifier's accuracy on each).
pub const EVALUATION_METRICS: [&str; 6] = ["test_loss", "test_acc", "noisy_mse", "denoised_mse", "noisy_acc", "denoised_acc"];

impl Tables {
    /// Builds every table from the jobs' results.
    pub fn aggregate(results: &[JobResult], evaluations: &[EvalResult]) -> Result<Self> {
        if results.is_empty() {
            bail!("no finished jobs to aggregate");
        }
        let history = history_frame(results)?;
        let finals = finals_frame(results)?;
        let axes = axis_names(results.iter().map(|r| r.point.as_slice()));
        let history_summary = summarise_points(&history, &["experiment", "point", "epoch"], &axes, &EPOCH_METRICS)?;
        let final_summary = summarise_points(&finals, &["experiment", "point"], &axes, &FINAL_METRICS)?;
        let evaluation_frame = evaluations_frame(evaluations)?;
        let columns: Vec<Vec<AxisValue>> = evaluations.iter().map(|e| e.transform.columns()).collect();
        let transform_axes = axis_names(columns.iter().map(Vec::as_slice));
        let evaluation_summary = summarise_points(
            &evaluation_frame,
            &["evaluation", "experiment", "transform"],
            &transform_axes,
            &EVALUATION_METRICS,
        )?;
        Ok(Tables { history, history_summary, finals, final_summary, evaluations: evaluation_frame, evaluation_summary })
    }

    fn frames(&mut self) -> [&mut DataFrame; 6] {
        [
            &mut self.history,
            &mut self.history_summary,
            &mut self.finals,
            &mut self.final_summary,
            &mut self.evaluations,
            &mut self.evaluation_summary,
        ]
    }

    /// Writes `<name>.parquet` and `<name>.csv` for each table, each file atomically.
    pub fn write(&mut self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        for (name, frame) in NAMES.into_iter().zip(self.frames()) {
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
            evaluations: read(NAMES[4])?,
            evaluation_summary: read(NAMES[5])?,
        })
    }

    /// The across-replicate summary of a final metric of an experiment that has one point (no
    /// sweep, or a follow-up).
    pub fn stat(&self, experiment: &str, metric: &str) -> Result<Stat> {
        let df = rows_of(&self.final_summary, experiment)?;
        if df.height() != 1 {
            bail!("final_summary has {} rows for experiment {experiment} (a sweep: ask for a point)", df.height());
        }
        stat_in_row(&df, 0, metric).with_context(|| experiment.to_string())
    }

    /// The summary of a final metric at every point of a sweep, in sweep order: (point label, stat).
    pub fn point_stats(&self, experiment: &str, metric: &str) -> Result<Vec<(String, Stat)>> {
        let df = rows_of(&self.final_summary, experiment)?;
        (0..df.height())
            .map(|row| Ok((str_at(&df, "point", row)?, stat_in_row(&df, row, metric).with_context(|| experiment.to_string())?)))
            .collect()
    }

    /// The summary of an evaluation's metric per (experiment, transform), with the transform's
    /// parameter columns: (experiment, transform label, stat).
    pub fn evaluation_stats(&self, evaluation: &str, metric: &str) -> Result<Vec<(String, String, Stat)>> {
        let df = self.evaluation_summary.clone().lazy().filter(col("evaluation").eq(lit(evaluation))).collect()?;
        if df.height() == 0 {
            bail!("the result tables hold no rows for evaluation {evaluation}");
        }
        (0..df.height())
            .map(|row| Ok((str_at(&df, "experiment", row)?, str_at(&df, "transform", row)?, stat_in_row(&df, row, metric)?)))
            .collect()
    }

    /// The per-epoch mean ± std curve of a metric (empty if the metric was never recorded, e.g. no validation).
    pub fn curve(&self, experiment: &str, metric: &str) -> Result<Vec<CurvePoint>> {
        let df = rows_of(&self.history_summary, experiment)?;
        let points = df.column("point")?.n_unique()?;
        if points != 1 {
            bail!("experiment {experiment} has {points} sweep points: ask for the curve of one");
        }
        curve_of(&df, metric)
    }

    /// The per-epoch curve of a metric at one point of a sweep.
    pub fn point_curve(&self, experiment: &str, point: &str, metric: &str) -> Result<Vec<CurvePoint>> {
        let df = rows_of(&self.history_summary, experiment)?.lazy().filter(col("point").eq(lit(point))).collect()?;
        if df.height() == 0 {
            bail!("experiment {experiment} has no sweep point {point}");
        }
        curve_of(&df, metric)
    }
}

fn curve_of(df: &DataFrame, metric: &str) -> Result<Vec<CurvePoint>> {
    {
        let mut points = Vec::with_capacity(df.height());
        for row in 0..df.height() {
            if let Some(mean) = f64_at(df, &format!("{metric}_mean"), row)? {
                points.push(CurvePoint {
                    epoch: u32_at(df, "epoch", row)? as usize,
                    mean,
                    std: f64_at(df, &format!("{metric}_std"), row)?,
                });
            }
        }
        Ok(points)
    }
}

impl Tables {
    /// A final metric summed over every training job of the run (e.g. `wall_seconds`), with the
    /// number of jobs.
    pub fn total(&self, metric: &str) -> Result<(f64, usize)> {
        let values = (0..self.finals.height()).map(|row| f64_at(&self.finals, metric, row)).collect::<Result<Vec<_>>>()?;
        Ok((values.iter().flatten().sum(), values.len()))
    }

    /// Each replicate's value of a final metric, in replicate order.
    pub fn replicate_values(&self, experiment: &str, metric: &str) -> Result<Vec<f64>> {
        let df = rows_of(&self.finals, experiment)?;
        (0..df.height()).map(|row| f64_at(&df, metric, row)?.ok_or_else(|| anyhow!("{experiment}: {metric} missing"))).collect()
    }

    /// Each replicate's value of a final metric at one sweep point, in replicate order.
    pub fn point_replicate_values(&self, experiment: &str, point: &str, metric: &str) -> Result<Vec<f64>> {
        let df = rows_of(&self.finals, experiment)?.lazy().filter(col("point").eq(lit(point))).collect()?;
        (0..df.height())
            .map(|row| f64_at(&df, metric, row)?.ok_or_else(|| anyhow!("{experiment} {point}: {metric} missing")))
            .collect()
    }

    /// The replicate numbers an experiment's history holds.
    pub fn replicates(&self, experiment: &str) -> Result<Vec<u32>> {
        let df = rows_of(&self.finals, experiment)?;
        (0..df.height()).map(|row| u32_at(&df, "replicate", row)).collect()
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
    let mut frame = df!(
        "experiment" => rows.iter().map(|(r, _)| r.experiment.as_str()).collect::<Vec<_>>(),
        "point" => rows.iter().map(|(r, _)| point_label(&r.point)).collect::<Vec<_>>(),
        "replicate" => rows.iter().map(|(r, _)| r.replicate as u32).collect::<Vec<_>>(),
        "seed" => rows.iter().map(|(r, _)| r.seed).collect::<Vec<_>>(),
        "epoch" => rows.iter().map(|(_, e)| e.epoch as u32).collect::<Vec<_>>(),
        "loss" => rows.iter().map(|(_, e)| e.loss).collect::<Vec<_>>(),
        "acc" => rows.iter().map(|(_, e)| e.acc).collect::<Vec<_>>(),
        "val_loss" => rows.iter().map(|(_, e)| e.val_loss).collect::<Vec<_>>(),
        "val_acc" => rows.iter().map(|(_, e)| e.val_acc).collect::<Vec<_>>(),
        "seconds" => rows.iter().map(|(_, e)| e.seconds).collect::<Vec<_>>(),
        "train_seconds" => rows.iter().map(|(_, e)| e.train_seconds).collect::<Vec<_>>(),
    )?;
    add_axis_columns(&mut frame, &rows.iter().map(|(r, _)| r.point.as_slice()).collect::<Vec<_>>())?;
    Ok(frame)
}

/// The epoch with the highest validation accuracy (the first on a tie) and that accuracy.
fn best_validation_epoch(history: &[nnlab_nn::EpochRecord]) -> Option<(usize, f64)> {
    history.iter().filter_map(|e| Some((e.epoch, e.val_acc?))).fold(None, |best, (epoch, acc)| match best {
        Some((_, best_acc)) if best_acc >= acc => best,
        _ => Some((epoch, acc)),
    })
}

fn finals_frame(results: &[JobResult]) -> Result<DataFrame> {
    let epoch_seconds = |r: &JobResult| r.history.iter().map(|e| e.seconds).sum::<f64>() / r.history.len().max(1) as f64;
    let best: Vec<Option<(usize, f64)>> = results.iter().map(|r| best_validation_epoch(&r.history)).collect();
    let mut frame = df!(
        "experiment" => results.iter().map(|r| r.experiment.as_str()).collect::<Vec<_>>(),
        "point" => results.iter().map(|r| point_label(&r.point)).collect::<Vec<_>>(),
        "replicate" => results.iter().map(|r| r.replicate as u32).collect::<Vec<_>>(),
        "seed" => results.iter().map(|r| r.seed).collect::<Vec<_>>(),
        "job" => results.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        "test_loss" => results.iter().map(|r| r.test.loss).collect::<Vec<_>>(),
        "test_acc" => results.iter().map(|r| r.test.acc).collect::<Vec<_>>(),
        "val_acc_max" => best.iter().map(|b| b.map(|(_, acc)| acc)).collect::<Vec<_>>(),
        "val_acc_max_epoch" => best.iter().map(|b| b.map(|(epoch, _)| epoch as f64)).collect::<Vec<_>>(),
        "params" => results.iter().map(|r| r.params as u64).collect::<Vec<_>>(),
        "flops_per_sample" => results.iter().map(|r| r.flops_per_sample as u64).collect::<Vec<_>>(),
        "train_samples" => results.iter().map(|r| r.train_samples as u64).collect::<Vec<_>>(),
        "train_samples_per_s" => results.iter().map(|r| r.train_samples_per_s).collect::<Vec<_>>(),
        "epoch_seconds" => results.iter().map(epoch_seconds).collect::<Vec<_>>(),
        "wall_seconds" => results.iter().map(|r| r.wall_seconds).collect::<Vec<_>>(),
    )?;
    add_axis_columns(&mut frame, &results.iter().map(|r| r.point.as_slice()).collect::<Vec<_>>())?;
    Ok(frame)
}

fn evaluations_frame(results: &[EvalResult]) -> Result<DataFrame> {
    let columns: Vec<Vec<AxisValue>> = results.iter().map(|r| r.transform.columns()).collect();
    let mut frame = df!(
        "evaluation" => results.iter().map(|r| r.evaluation.as_str()).collect::<Vec<_>>(),
        "experiment" => results.iter().map(|r| r.experiment.as_str()).collect::<Vec<_>>(),
        "transform" => columns.iter().map(|c| point_label(c)).collect::<Vec<_>>(),
        "replicate" => results.iter().map(|r| r.replicate as u32).collect::<Vec<_>>(),
        "job" => results.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        "trained_job" => results.iter().map(|r| r.trained_job.as_str()).collect::<Vec<_>>(),
        "test_loss" => results.iter().map(|r| r.test.loss).collect::<Vec<_>>(),
        "test_acc" => results.iter().map(|r| r.test.acc).collect::<Vec<_>>(),
        "noisy_mse" => results.iter().map(|r| r.reconstruction.as_ref().map(|x| x.noisy_mse)).collect::<Vec<_>>(),
        "denoised_mse" => results.iter().map(|r| r.reconstruction.as_ref().map(|x| x.denoised_mse)).collect::<Vec<_>>(),
        "noisy_acc" => results.iter().map(|r| r.reconstruction.as_ref().and_then(|x| x.noisy_acc)).collect::<Vec<_>>(),
        "denoised_acc" => results.iter().map(|r| r.reconstruction.as_ref().and_then(|x| x.denoised_acc)).collect::<Vec<_>>(),
    )?;
    add_axis_columns(&mut frame, &columns.iter().map(Vec::as_slice).collect::<Vec<_>>())?;
    Ok(frame)
}

/// The axis names of the points, in first-seen order.
fn axis_names<'a>(points: impl Iterator<Item = &'a [AxisValue]>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for value in points.flatten() {
        if !names.contains(&value.axis) {
            names.push(value.axis.clone());
        }
    }
    names
}

/// One column per axis, null where a row's point lacks it: Float64 when every value is a number,
/// text otherwise.
fn add_axis_columns(frame: &mut DataFrame, points: &[&[AxisValue]]) -> Result<()> {
    for axis in axis_names(points.iter().copied()) {
        let values: Vec<Option<&serde_json::Value>> =
            points.iter().map(|p| p.iter().find(|v| v.axis == axis).map(|v| &v.value)).collect();
        let column = if values.iter().flatten().all(|v| v.is_number()) {
            Column::new(axis.as_str().into(), values.iter().map(|v| v.and_then(serde_json::Value::as_f64)).collect::<Vec<_>>())
        } else {
            Column::new(
                axis.as_str().into(),
                values.iter().map(|v| v.map(crate::catalogue::value_text)).collect::<Vec<Option<String>>>(),
            )
        };
        frame.with_column(column)?;
    }
    Ok(())
}

/// [`summarise`] by `keys`, carrying each axis column along (constant within a group).
fn summarise_points(frame: &DataFrame, keys: &[&str], axes: &[String], metrics: &[&str]) -> Result<DataFrame> {
    let mut summary = summarise(frame, keys, metrics)?;
    if axes.is_empty() || frame.height() == 0 {
        return Ok(summary);
    }
    let firsts: Vec<Expr> = axes.iter().map(|a| col(a.as_str()).first()).collect();
    let key_exprs: Vec<Expr> = keys.iter().map(|k| col(*k)).collect();
    let axis_values = frame.clone().lazy().group_by_stable(key_exprs).agg(firsts).collect()?;
    summary = summary.left_join(&axis_values, keys.iter().copied(), keys.iter().copied())?;
    Ok(summary)
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

fn stat_in_row(df: &DataFrame, row: usize, metric: &str) -> Result<Stat> {
    Ok(Stat {
        mean: f64_at(df, &format!("{metric}_mean"), row)?.ok_or_else(|| anyhow!("{metric} has no mean"))?,
        std: f64_at(df, &format!("{metric}_std"), row)?,
        n: u32_at(df, "n", row)? as usize,
        min: f64_at(df, &format!("{metric}_min"), row)?.unwrap_or(f64::NAN),
        max: f64_at(df, &format!("{metric}_max"), row)?.unwrap_or(f64::NAN),
    })
}

pub(crate) fn str_at(df: &DataFrame, name: &str, row: usize) -> Result<String> {
    let column = df.column(name).map_err(|_| anyhow!("result table lacks column {name}"))?;
    Ok(column.str()?.get(row).unwrap_or_default().to_string())
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
            acc: Some(v),
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
            test: Evaluation { loss: 0.3, acc: Some(acc) },
            params: 10,
            flops_per_sample: 20,
            train_samples: 100,
            validation_samples: 25,
            test_samples: 50,
            train_samples_per_s: 1000.0 * replicate as f64,
            wall_seconds: 2.0,
            threads: 1,
            activations: None,
            point: vec![],
        }
    }

    fn swept(experiment: &str, lr: f64, units: u64, replicate: usize, acc: f64) -> JobResult {
        let mut r = result(experiment, replicate, acc);
        r.point = vec![
            AxisValue { axis: "lr".into(), value: serde_json::json!(lr) },
            AxisValue { axis: "units".into(), value: serde_json::json!(units) },
        ];
        r
    }

    #[test]
    fn sweep_points_are_rows_with_one_column_per_axis() {
        let results = vec![
            swept("x.grid", 0.1, 10, 1, 0.90),
            swept("x.grid", 0.1, 10, 2, 0.92),
            swept("x.grid", 0.5, 10, 1, 0.80),
            swept("x.grid", 0.5, 10, 2, 0.84),
            result("x.plain", 1, 0.5),
        ];
        let evaluations: Vec<EvalResult> = [(1usize, 0usize, 0.9), (2, 0, 0.8), (1, 3, 0.5), (2, 3, 0.7)]
            .into_iter()
            .map(|(replicate, pixels, acc)| EvalResult {
                id: format!("e{replicate}{pixels}"),
                evaluation: "x.shift".into(),
                experiment: "x.plain".into(),
                replicate,
                trained_job: "t".into(),
                transform: crate::catalogue::Transform::Roll { direction: nnlab_data::Direction::Right, pixels },
                test: Evaluation { loss: 1.0, acc: Some(acc) },
                test_samples: 10,
                reconstruction: None,
                generated: None,
            })
            .collect();
        let mut tables = Tables::aggregate(&results, &evaluations).unwrap();
        let dir = tempfile::tempdir().unwrap();
        tables.write(dir.path()).unwrap();
        let tables = Tables::read(dir.path()).unwrap();

        let stats = tables.point_stats("x.grid", "test_acc").unwrap();
        assert_eq!(stats.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(), ["lr=0.1, units=10", "lr=0.5, units=10"]);
        assert!((stats[1].1.mean - 0.82).abs() < 1e-12 && stats[1].1.n == 2);
        assert!(tables.stat("x.grid", "test_acc").unwrap_err().to_string().contains("sweep"));
        assert_eq!(tables.stat("x.plain", "test_acc").unwrap().n, 1);
        assert_eq!(tables.point_curve("x.grid", "lr=0.5, units=10", "acc").unwrap().len(), 2);
        assert!(tables.curve("x.grid", "acc").is_err());

        // "Mean test accuracy per lr" is a group-by on the axis column.
        let per_lr = tables
            .finals
            .clone()
            .lazy()
            .filter(col("experiment").eq(lit("x.grid")))
            .group_by_stable([col("lr")])
            .agg([col("test_acc").mean()])
            .collect()
            .unwrap();
        assert_eq!(per_lr.column("lr").unwrap().f64().unwrap().get(1), Some(0.5));
        assert!((per_lr.column("test_acc").unwrap().f64().unwrap().get(1).unwrap() - 0.82).abs() < 1e-12);
        let summary_lr = tables.final_summary.column("lr").unwrap().f64().unwrap().clone();
        assert_eq!(summary_lr.get(0), Some(0.1));
        assert_eq!(summary_lr.get(2), None, "the unswept experiment has no lr");

        let shifted = tables.evaluation_stats("x.shift", "test_acc").unwrap();
        assert_eq!(shifted.len(), 2);
        assert_eq!((shifted[1].0.as_str(), shifted[1].1.as_str()), ("x.plain", "direction=right, pixels=3"));
        assert!((shifted[1].2.mean - 0.6).abs() < 1e-12);
        let pixels = tables.evaluation_summary.column("pixels").unwrap().f64().unwrap().get(1);
        assert_eq!(pixels, Some(3.0));
    }

    #[test]
    fn the_best_validation_epoch_is_the_first_of_a_tie_and_absent_without_validation() {
        let mut history = result("x.a", 1, 0.9).history;
        history.push(EpochRecord { epoch: 3, val_acc: Some(0.60), ..history[0].clone() });
        history.push(EpochRecord { epoch: 4, val_acc: history[1].val_acc, ..history[0].clone() });
        // Epochs 2 and 4 both reach the best value.
        assert_eq!(best_validation_epoch(&history), Some((2, history[1].val_acc.unwrap())));
        history.iter_mut().for_each(|e| e.val_acc = None);
        assert_eq!(best_validation_epoch(&history), None);
    }

    #[test]
    fn summaries_are_mean_std_n_and_survive_parquet() {
        let results = vec![result("x.a", 1, 0.90), result("x.a", 2, 0.92), result("x.a", 3, 0.94), result("x.b", 1, 0.5)];
        let mut tables = Tables::aggregate(&results, &[]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        tables.write(dir.path()).unwrap();
        assert!(dir.path().join("final_summary.csv").is_file());
        let tables = Tables::read(dir.path()).unwrap();

        let acc = tables.stat("x.a", "test_acc").unwrap();
        assert!((acc.mean - 0.92).abs() < 1e-12);
        // The best validation epoch of each replicate is its last here (the curve rises).
        assert!((tables.stat("x.a", "val_acc_max").unwrap().mean - 0.91).abs() < 1e-12);
        assert_eq!(tables.stat("x.a", "val_acc_max_epoch").unwrap().mean, 2.0);
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
