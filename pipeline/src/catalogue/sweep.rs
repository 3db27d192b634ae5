//! Sweep axes: a dotted path into an experiment's spec and the values it takes. Several axes form
//! their cartesian product; each point is an experiment of its own, resolved by writing the values
//! into the spec's serialised form and reading it back, so a wrong path or a value of the wrong type
//! is caught by the same strict deserialisation as the catalogue itself.

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Experiment;

/// One axis of a sweep, e.g. `{ axis = "lr", path = "train.optimizer.lr", values = [0.01, 0.1] }`.
/// In a path, a layer may be named by its index (`model.layers.0.units`) or by its Keras name
/// (`model.layers.dense.units`), as the model summary shows it. `path` may also be a list: every
/// path takes the axis' value (one L2 factor for several layers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepAxis {
    /// The axis' name: the column of the result tables that holds its value.
    pub axis: String,
    pub path: AxisPath,
    pub values: Vec<Value>,
}

/// The field(s) an axis sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AxisPath {
    One(String),
    Many(Vec<String>),
}

impl AxisPath {
    pub fn paths(&self) -> &[String] {
        match self {
            AxisPath::One(path) => std::slice::from_ref(path),
            AxisPath::Many(paths) => paths,
        }
    }
}

impl std::fmt::Display for AxisPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.paths().join(" and "))
    }
}

/// The value one axis takes at a sweep point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AxisValue {
    pub axis: String,
    pub value: Value,
}

/// A point's label, `units=100, lr=0.05`: the key of its rows in the result tables.
pub fn point_label(point: &[AxisValue]) -> String {
    point.iter().map(|v| format!("{}={}", v.axis, value_text(&v.value))).collect::<Vec<_>>().join(", ")
}

/// A value as a person writes it: numbers as numbers, strings without quotes.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The fields of an experiment a sweep may vary: the first segment of every path.
const SWEEPABLE: [&str; 4] = ["model", "train", "validation", "dataset"];

impl Experiment {
    /// Every point of the experiment's sweep (one point with no values if it has none), in the
    /// order of the axes' values, the first axis varying slowest. `max_values` thins each axis to at
    /// most that many values, evenly spaced, first and last kept (the small profiles).
    pub fn points(&self, max_values: Option<usize>) -> Vec<Vec<AxisValue>> {
        let mut points = vec![Vec::new()];
        for axis in &self.sweep {
            let values = thin(&axis.values, max_values);
            points = points
                .into_iter()
                .flat_map(|point| {
                    values.iter().map(move |value| {
                        let mut next = point.clone();
                        next.push(AxisValue { axis: axis.axis.clone(), value: (*value).clone() });
                        next
                    })
                })
                .collect();
        }
        points
    }

    /// The experiment at one point of `axes` (its own sweep, or the sweep a follow-up came from):
    /// every axis' path set to the point's value. The result has no sweep of its own.
    pub fn at_point(&self, axes: &[SweepAxis], point: &[AxisValue]) -> Result<Experiment> {
        let mut base = self.clone();
        base.sweep.clear();
        base.follow_up = None;
        let mut value = serde_json::to_value(&base).expect("an experiment always serialises");
        for AxisValue { axis, value: new } in point {
            let declared = axes.iter().find(|a| &a.axis == axis).ok_or_else(|| anyhow!("no sweep axis named `{axis}`"))?;
            for path in declared.path.paths() {
                set_path(&mut value, path, new.clone()).with_context(|| format!("sweep axis `{axis}` (path {path})"))?;
            }
        }
        let resolved: Experiment = serde_json::from_value(value).map_err(|e| {
            anyhow!("sweep point {}: {e} (a path that names no field, or a value of the wrong type)", point_label(point))
        })?;
        Ok(resolved)
    }

    /// The value at an axis' path in this experiment's spec (for checks that a follow-up's own
    /// overrides leave the swept fields alone).
    pub(crate) fn value_at(&self, path: &str) -> Option<Value> {
        let value = serde_json::to_value(self).ok()?;
        let mut node = &value;
        let mut previous = "";
        for segment in path.split('.') {
            node = match node {
                Value::Object(map) => map.get(segment)?,
                Value::Array(items) => &items[array_index(items, previous, segment, &value).ok()?],
                _ => return None,
            };
            previous = segment;
        }
        Some(node.clone())
    }
}

/// Checks an axis when the catalogue is loaded: a name, at least one value, a path that starts at
/// a sweepable field and reaches a field of the spec.
pub(crate) fn check_axis(experiment: &Experiment, axis: &SweepAxis) -> Result<()> {
    if axis.axis.is_empty() || axis.axis.contains(['=', ',']) {
        bail!("sweep axis `{}`: the axis name must be non-empty, without `=` or `,`", axis.axis);
    }
    if crate::tables::RESERVED_COLUMNS.contains(&axis.axis.as_str()) || crate::tables::FINAL_METRICS.contains(&axis.axis.as_str())
    {
        bail!("sweep axis `{}`: the name is a column of the result tables already; choose another", axis.axis);
    }
    if axis.values.is_empty() {
        bail!("sweep axis `{}`: it has no values", axis.axis);
    }
    if axis.path.paths().is_empty() {
        bail!("sweep axis `{}`: it has no path", axis.axis);
    }
    for path in axis.path.paths() {
        let first = path.split('.').next().unwrap_or_default();
        if !SWEEPABLE.contains(&first) {
            bail!("sweep axis `{}`: path {path} must start with one of {}", axis.axis, SWEEPABLE.join(", "));
        }
        let mut value = serde_json::to_value(experiment).expect("an experiment always serialises");
        set_path(&mut value, path, axis.values[0].clone()).with_context(|| format!("sweep axis `{}`", axis.axis))?;
    }
    Ok(())
}

/// Sets the field at a dotted path. A missing last key is inserted (an optional field, such as a
/// layer's `l2`), and the strict deserialisation that follows rejects names that are not fields.
fn set_path(root: &mut Value, path: &str, new: Value) -> Result<()> {
    let segments: Vec<&str> = path.split('.').collect();
    let snapshot = root.clone();
    let mut node = root;
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        let previous = if i == 0 { "" } else { segments[i - 1] };
        node = match node {
            Value::Object(map) if last => {
                map.insert((*segment).to_string(), new);
                return Ok(());
            }
            Value::Object(map) => map.get_mut(*segment).ok_or_else(|| anyhow!("path {path}: no field `{segment}`"))?,
            Value::Array(items) => {
                let index = array_index(items, previous, segment, &snapshot).with_context(|| format!("path {path}"))?;
                if last {
                    items[index] = new;
                    return Ok(());
                }
                &mut items[index]
            }
            _ => bail!("path {path}: `{previous}` has no fields, so `{segment}` matches nothing"),
        };
    }
    bail!("path {path} is empty")
}

/// An index into an array of the spec: a number, or for `layers`, a layer's Keras name.
fn array_index(items: &[Value], array_name: &str, segment: &str, root: &Value) -> Result<usize> {
    if let Ok(index) = segment.parse::<usize>() {
        if index >= items.len() {
            bail!("index {index} is past the {} entries of `{array_name}`", items.len());
        }
        return Ok(index);
    }
    if array_name != "layers" {
        bail!("`{segment}` is not an index of `{array_name}`");
    }
    let model: nnlab_nn::ModelSpec =
        serde_json::from_value(root.get("model").cloned().unwrap_or_default()).context("the model does not parse")?;
    let layers = model.plan()?;
    layers.iter().position(|l| l.name == segment).ok_or_else(|| {
        let names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
        anyhow!("no layer named `{segment}` (its layers: {})", names.join(", "))
    })
}

/// At most `max` of `values`, evenly spaced, the first and the last kept.
pub(crate) fn thin<T>(values: &[T], max: Option<usize>) -> Vec<&T> {
    let n = values.len();
    match max {
        Some(max) if max < n && max >= 2 => {
            let mut picked: Vec<usize> = (0..max).map(|i| (i * (n - 1) + (max - 1) / 2) / (max - 1)).collect();
            picked.dedup();
            picked.into_iter().map(|i| &values[i]).collect()
        }
        Some(1) => vec![&values[0]],
        _ => values.iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn thinning_keeps_the_ends_and_spreads_the_rest() {
        let values: Vec<Value> = (0..9).map(|i| json!(i)).collect();
        let picked = |max| thin(&values, Some(max)).into_iter().map(|v| v.as_i64().unwrap()).collect::<Vec<_>>();
        assert_eq!(picked(3), vec![0, 4, 8]);
        assert_eq!(picked(2), vec![0, 8]);
        assert_eq!(picked(5), vec![0, 2, 4, 6, 8]);
        assert_eq!(picked(1), vec![0]);
        assert_eq!(thin(&values, Some(20)).len(), 9);
        assert_eq!(thin(&values, None).len(), 9);
    }

    #[test]
    fn labels_read_like_assignments() {
        let point =
            vec![AxisValue { axis: "units".into(), value: json!(100) }, AxisValue { axis: "lr".into(), value: json!(0.05) }];
        assert_eq!(point_label(&point), "units=100, lr=0.05");
        assert_eq!(point_label(&[]), "");
    }
}
