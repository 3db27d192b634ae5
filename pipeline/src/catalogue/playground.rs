//! The Playground study of an assignment (`[playground]`): knobs swept one at a time around the
//! Playground's defaults on each data set (a1.x2), and the search for the smallest network that
//! reaches a test-loss bar on one data set (a1.x3).

use anyhow::{anyhow, bail, Result};
use nnlab_data::playground::Shape;
use nnlab_playground::{Feature, SearchSpace, Settings};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaygroundStudy {
    pub datasets: Vec<Shape>,
    /// Epochs of every sweep training (the profile may cap them).
    pub epochs: usize,
    /// Epochs at which the losses are kept for the curves, besides 0 and the last.
    pub record: Vec<usize>,
    pub replicates: usize,
    /// Decision-boundary pictures sample the network on this many cells per side.
    pub boundary_resolution: usize,
    /// The settings every knob starts from (the Playground's defaults; `dataset` is each data set's).
    pub defaults: toml::Table,
    #[serde(rename = "knob")]
    pub knobs: Vec<Knob>,
    pub search: SearchStudy,
}

/// One knob: a settings field swept over values, the others at their defaults (plus `with`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Knob {
    pub id: String,
    pub title: String,
    pub field: String,
    pub values: Vec<toml::Value>,
    /// Further fields this knob sets at every value (e.g. which regulariser a rate belongs to).
    #[serde(default)]
    pub with: toml::Table,
}

/// The smallest-network search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchStudy {
    /// Overrides of the defaults every candidate shares (data set, noise, ratio, rates).
    pub settings: toml::Table,
    pub epochs: usize,
    /// The test loss a network must get below.
    pub bar: f64,
    pub replicates: usize,
    /// Replicates that must reach the bar.
    pub needed: usize,
    /// Successful networks to find beyond the smallest.
    pub runners_up: usize,
    pub space: SearchSpace,
}

impl PlaygroundStudy {
    /// The defaults for `dataset`.
    pub fn defaults_for(&self, dataset: Shape) -> Result<Settings> {
        settings_from(&self.defaults, &[("dataset", toml::Value::String(shape_name(dataset)))], "defaults")
    }

    /// The settings of `knob` at `value` on `dataset`.
    pub fn knob_settings(&self, knob: &Knob, value: &toml::Value, dataset: Shape) -> Result<Settings> {
        let mut overrides: Vec<(&str, toml::Value)> = knob.with.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        overrides.push((knob.field.as_str(), value.clone()));
        overrides.push(("dataset", toml::Value::String(shape_name(dataset))));
        settings_from(&self.defaults, &overrides, &format!("knob {}", knob.id))
    }

    /// The settings every search candidate shares.
    pub fn search_settings(&self) -> Result<Settings> {
        let overrides: Vec<(&str, toml::Value)> = self.search.settings.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        settings_from(&self.defaults, &overrides, "search.settings")
    }

    /// Refuses a study whose settings, knobs or search cannot run, naming the part.
    pub fn check(&self) -> Result<()> {
        if self.datasets.is_empty() || self.epochs == 0 || self.replicates == 0 || self.boundary_resolution == 0 {
            bail!("datasets, epochs, replicates and boundary_resolution must not be empty or zero");
        }
        for &dataset in &self.datasets {
            self.defaults_for(dataset)?;
            for knob in &self.knobs {
                if knob.values.is_empty() {
                    bail!("knob {} has no values", knob.id);
                }
                for value in &knob.values {
                    self.knob_settings(knob, value, dataset)?;
                }
            }
        }
        let mut ids: Vec<&str> = self.knobs.iter().map(|k| k.id.as_str()).collect();
        ids.sort();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            bail!("knob id {} appears twice", w[0]);
        }
        self.search_settings()?;
        let search = &self.search;
        if search.needed == 0 || search.needed > search.replicates {
            bail!("search.needed must be between 1 and search.replicates ({})", search.replicates);
        }
        if search.bar.is_nan() || search.bar <= 0.0 || search.epochs == 0 {
            bail!("search.bar must be positive and search.epochs at least 1");
        }
        if search.space.features.is_empty() || search.space.max_neurons == 0 {
            bail!("search.space needs features and max_neurons ≥ 1");
        }
        Ok(())
    }
}

/// The printed form of a knob value: numbers as written, lists joined, feature names as the
/// Playground labels them.
pub fn value_label(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => feature_title(s).unwrap_or(s).to_string(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Array(items) if items.is_empty() => "none".to_string(),
        toml::Value::Array(items) => items.iter().map(value_label).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn feature_title(name: &str) -> Option<&'static str> {
    let feature: Feature = toml::Value::String(name.to_string()).try_into().ok()?;
    Some(feature.title())
}

pub fn shape_name(shape: Shape) -> String {
    match toml::Value::try_from(shape) {
        Ok(toml::Value::String(s)) => s,
        _ => format!("{shape:?}").to_lowercase(),
    }
}

fn settings_from(defaults: &toml::Table, overrides: &[(&str, toml::Value)], part: &str) -> Result<Settings> {
    let mut table = defaults.clone();
    for (key, value) in overrides {
        table.insert((*key).to_string(), value.clone());
    }
    let settings: Settings = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| anyhow!("playground {part}: {}", e.to_string().trim().replace('\n', " ")))?;
    settings.check().map_err(|e| anyhow!("playground {part}: {e}"))?;
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn study(extra: &str) -> PlaygroundStudy {
        let text = format!(
            r#"
datasets = ["circle", "spiral"]
epochs = 10
record = [1, 5]
replicates = 2
boundary_resolution = 10
defaults = {{ noise = 0, train_percent = 50, features = ["x1", "x2"], hidden = [4, 2], activation = "tanh", regularization = "none", regularization_rate = 0, learning_rate = 0.03, batch_size = 10 }}
[[knob]]
id = "l1"
title = "L1 rate"
field = "regularization_rate"
values = [0, 0.01]
with = {{ regularization = "l1" }}
[[knob]]
id = "features"
title = "input features"
field = "features"
values = [["x1"], ["x1", "sin_x2"]]
[search]
settings = {{ dataset = "spiral" }}
epochs = 10
bar = 0.1
replicates = 3
needed = 2
runners_up = 1
space = {{ features = ["x1", "x2"], max_hidden_layers = 1, max_neurons = 2, max_parameters = 20 }}
{extra}"#
        );
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn a_knob_sets_its_field_and_its_companions() {
        let study = study("");
        study.check().unwrap();
        let l1 = study.knob_settings(&study.knobs[0], &study.knobs[0].values[1], Shape::Spiral).unwrap();
        assert_eq!(
            (l1.regularization_rate, l1.regularization, l1.dataset),
            (0.01, nnlab_playground::Regularization::L1, Shape::Spiral)
        );
        assert_eq!(l1.hidden, vec![4, 2]);
        assert_eq!(value_label(&study.knobs[1].values[1]), "x1, sin x2");
        assert_eq!(study.search_settings().unwrap().dataset, Shape::Spiral);
    }

    #[test]
    fn a_bad_knob_value_is_refused_naming_the_knob() {
        let mut bad = study("");
        bad.knobs[1].values.push(toml::Value::Array(vec![toml::Value::String("x3".into())]));
        let err = bad.check().unwrap_err().to_string();
        assert!(err.contains("knob features") && err.contains("x3"), "{err}");
        let mut bad = study("");
        bad.knobs[0].values.push(toml::Value::Float(-1.0));
        let err = bad.check().unwrap_err().to_string();
        assert!(err.contains("regularization_rate"), "{err}");
        let mut bad = study("");
        bad.search.needed = 4;
        assert!(bad.check().unwrap_err().to_string().contains("search.needed"));
    }
}
