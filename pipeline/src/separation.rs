//! The separation tables: every projection's metrics in long form (one row per representation,
//! method, replicate and metric) and the neighbourhood-hit curves, each summarised across
//! replicates as mean / std / n / min / max, written as Parquet and CSV beside the training tables.

use std::fs::File;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use polars::prelude::*;

use crate::analysis::ProjectionResult;
use crate::tables::{f64_at, summarise, u32_at, write_frame, Stat};

const NAMES: [&str; 4] = ["separation", "separation_summary", "nh_curve", "nh_curve_summary"];

pub struct SeparationTables {
    pub rows: DataFrame,
    pub summary: DataFrame,
    pub curve: DataFrame,
    pub curve_summary: DataFrame,
}

/// One point of a mean neighbourhood-hit curve.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct NhPoint {
    pub k: usize,
    pub mean: f64,
    pub std: Option<f64>,
}

/// The metrics of one projection as (name, value) pairs, in table order.
pub fn metric_values(result: &ProjectionResult) -> Vec<(String, f64)> {
    let m = &result.metrics;
    let mut values = vec![
        ("nh".to_string(), m.nh),
        ("hull_mean_iou".to_string(), m.hull_mean_iou),
        ("hull_max_iou".to_string(), m.hull_max_iou),
        ("ellipse_mean_bc".to_string(), m.ellipse_mean_bc),
        ("ellipse_max_bc".to_string(), m.ellipse_max_bc),
        ("projection_seconds".to_string(), result.projection_seconds),
    ];
    values.extend(m.nh_per_class.iter().map(|(class, v)| (format!("nh_class_{class}"), *v)));
    values.extend(m.hull_area.iter().map(|(class, v)| (format!("hull_area_class_{class}"), *v)));
    values
}

impl SeparationTables {
    pub fn aggregate(results: &[ProjectionResult]) -> Result<Self> {
        if results.is_empty() {
            bail!("no finished projections to aggregate");
        }
        let mut assignment = Vec::new();
        let mut representation = Vec::new();
        let mut method = Vec::new();
        let mut replicate = Vec::new();
        let mut metric = Vec::new();
        let mut value = Vec::new();
        for r in results {
            for (name, v) in metric_values(r) {
                assignment.push(r.spec.assignment.clone());
                representation.push(r.spec.representation.clone());
                method.push(r.spec.method.name());
                replicate.push(r.spec.replicate as u32);
                metric.push(name);
                value.push(v);
            }
        }
        let rows = df!(
            "assignment" => assignment, "representation" => representation, "method" => method,
            "replicate" => replicate, "metric" => metric, "value" => value,
        )?;
        let curve_rows: Vec<(&ProjectionResult, usize, f64)> =
            results.iter().flat_map(|r| r.metrics.nh_curve.iter().enumerate().map(move |(i, v)| (r, i + 1, *v))).collect();
        let curve = df!(
            "assignment" => curve_rows.iter().map(|(r, _, _)| r.spec.assignment.as_str()).collect::<Vec<_>>(),
            "representation" => curve_rows.iter().map(|(r, _, _)| r.spec.representation.as_str()).collect::<Vec<_>>(),
            "method" => curve_rows.iter().map(|(r, _, _)| r.spec.method.name()).collect::<Vec<_>>(),
            "replicate" => curve_rows.iter().map(|(r, _, _)| r.spec.replicate as u32).collect::<Vec<_>>(),
            "k" => curve_rows.iter().map(|(_, k, _)| *k as u32).collect::<Vec<_>>(),
            "nh" => curve_rows.iter().map(|(_, _, v)| *v).collect::<Vec<_>>(),
        )?;
        let summary = summarise(&rows, &["assignment", "representation", "method", "metric"], &["value"])?;
        let curve_summary = summarise(&curve, &["assignment", "representation", "method", "k"], &["nh"])?;
        Ok(SeparationTables { rows, summary, curve, curve_summary })
    }

    pub fn write(&mut self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        for (name, frame) in NAMES.into_iter().zip([&mut self.rows, &mut self.summary, &mut self.curve, &mut self.curve_summary])
        {
            write_frame(frame, &dir.join(format!("{name}.parquet")), |f, df| ParquetWriter::new(f).finish(df).map(|_| ()))?;
            write_frame(frame, &dir.join(format!("{name}.csv")), |f, df| CsvWriter::new(f).finish(df))?;
        }
        Ok(())
    }

    /// Removes the tables from `dir`, if there: a run without projections has none.
    pub fn remove(dir: &Path) -> Result<()> {
        for name in NAMES {
            for ext in ["parquet", "csv"] {
                let path = dir.join(format!("{name}.{ext}"));
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(e).with_context(|| format!("cannot remove {}", path.display()))
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Reads the tables back; `None` if the run had no analysis.
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        if !dir.join(format!("{}.parquet", NAMES[0])).exists() {
            return Ok(None);
        }
        let read = |name: &str| -> Result<DataFrame> {
            let path = dir.join(format!("{name}.parquet"));
            let file = File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
            ParquetReader::new(file).finish().map_err(|e| anyhow!("{} is not a valid table: {e}", path.display()))
        };
        Ok(Some(SeparationTables {
            rows: read(NAMES[0])?,
            summary: read(NAMES[1])?,
            curve: read(NAMES[2])?,
            curve_summary: read(NAMES[3])?,
        }))
    }

    /// The across-replicate summary of one metric of one projection of one representation.
    pub fn stat(&self, representation: &str, method: &str, metric: &str) -> Result<Stat> {
        let df = select(&self.summary, representation, method)?.lazy().filter(col("metric").eq(lit(metric))).collect()?;
        if df.height() != 1 {
            bail!("separation_summary has {} rows for {representation} / {method} / {metric}", df.height());
        }
        Ok(Stat {
            mean: f64_at(&df, "value_mean", 0)?.ok_or_else(|| anyhow!("{representation} / {method}: {metric} has no mean"))?,
            std: f64_at(&df, "value_std", 0)?,
            n: u32_at(&df, "n", 0)? as usize,
            min: f64_at(&df, "value_min", 0)?.unwrap_or(f64::NAN),
            max: f64_at(&df, "value_max", 0)?.unwrap_or(f64::NAN),
        })
    }

    /// Each replicate's value of one metric, in replicate order.
    pub fn replicate_values(&self, representation: &str, method: &str, metric: &str) -> Result<Vec<f64>> {
        let df = select(&self.rows, representation, method)?
            .lazy()
            .filter(col("metric").eq(lit(metric)))
            .sort(["replicate"], Default::default())
            .collect()?;
        (0..df.height()).map(|row| f64_at(&df, "value", row)?.ok_or_else(|| anyhow!("{metric} missing"))).collect()
    }

    /// The mean ± std neighbourhood-hit curve over k.
    pub fn curve(&self, representation: &str, method: &str) -> Result<Vec<NhPoint>> {
        let df = select(&self.curve_summary, representation, method)?;
        (0..df.height())
            .map(|row| {
                Ok(NhPoint {
                    k: u32_at(&df, "k", row)? as usize,
                    mean: f64_at(&df, "nh_mean", row)?
                        .ok_or_else(|| anyhow!("nh curve of {representation} / {method} has a gap"))?,
                    std: f64_at(&df, "nh_std", row)?,
                })
            })
            .collect()
    }
}

fn select(frame: &DataFrame, representation: &str, method: &str) -> Result<DataFrame> {
    let df = frame
        .clone()
        .lazy()
        .filter(col("representation").eq(lit(representation)).and(col("method").eq(lit(method))))
        .collect()?;
    if df.height() == 0 {
        bail!("the separation tables hold no rows for {representation} / {method}");
    }
    Ok(df)
}
