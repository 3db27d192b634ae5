//! The declarative experiment catalogue: one TOML file per assignment under `pipeline/catalogue/`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nnlab_nn::{ModelSpec, TrainConfig};
use serde::{Deserialize, Serialize};

/// Where validation data comes from, with Keras' two conventions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Validation {
    /// `validation_split`: the last fraction of the training arrays is held out.
    Split(f64),
    /// `validation_data = test`: the test set doubles as validation data; nothing is held out.
    Test,
}

/// One model under one training configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    pub id: String,
    pub description: String,
    pub dataset: String,
    pub validation: Validation,
    pub model: ModelSpec,
    pub train: TrainConfig,
    /// Replicates in the full profile, where the assignment asks for more than the profile's default.
    #[serde(default)]
    pub replicates: Option<usize>,
    /// A layer whose activations on the analysed test images the job keeps for the analysis stage.
    #[serde(default)]
    pub activations: Option<ActivationsRequest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivationsRequest {
    /// The layer's Keras name (`dense`, `dense_1`, `conv2d`, …) as the model summary shows it.
    pub layer: String,
}

/// A 2-D projection method of the separability analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Tsne,
    Pca,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Tsne => "tsne",
            Method::Pca => "pca",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Method::Tsne => "t-SNE",
            Method::Pca => "PCA",
        }
    }
}

/// The separability study of an assignment: raw test images and every recorded representation,
/// projected to 2-D by each method, with the separation metrics of each projection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisConfig {
    pub dataset: String,
    pub methods: Vec<Method>,
    /// The neighbourhood size of the headline neighbourhood hit.
    pub k: usize,
    /// The neighbourhood hit curve runs over k = 1..=k_max.
    pub k_max: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    pub id: String,
    pub title: String,
    #[serde(rename = "experiment")]
    pub experiments: Vec<Experiment>,
    #[serde(default)]
    pub analysis: Option<AnalysisConfig>,
}

impl Assignment {
    pub fn experiment(&self, id: &str) -> Option<&Experiment> {
        self.experiments.iter().find(|e| e.id == id)
    }
}

/// Every assignment of the catalogue, in file-name order.
#[derive(Debug, Clone)]
pub struct Catalogue {
    pub assignments: Vec<Assignment>,
}

impl Catalogue {
    /// The catalogue shipped with the source tree.
    pub fn default_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("pipeline/catalogue")
    }

    pub fn load(dir: &Path) -> Result<Self> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read the experiment catalogue {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        let mut assignments = Vec::new();
        for file in files {
            assignments.push(load_assignment(&file)?);
        }
        let catalogue = Catalogue { assignments };
        catalogue.check_unique_ids()?;
        Ok(catalogue)
    }

    pub fn assignment(&self, id: &str) -> Option<&Assignment> {
        self.assignments.iter().find(|a| a.id == id)
    }

    fn check_unique_ids(&self) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        for e in self.assignments.iter().flat_map(|a| &a.experiments) {
            if !seen.insert(&e.id) {
                bail!("experiment catalogue: experiment id {} appears twice", e.id);
            }
        }
        Ok(())
    }
}

fn load_assignment(file: &Path) -> Result<Assignment> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let assignment: Assignment =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {}", file.display(), e.to_string().trim().replace('\n', " ")))?;
    for experiment in &assignment.experiments {
        let origin = format!("{}: experiment {}", file.display(), experiment.id);
        if !experiment.id.starts_with(&format!("{}.", assignment.id)) {
            bail!("{origin}: its id must start with the assignment id `{}.`", assignment.id);
        }
        let layers = experiment.model.plan().with_context(|| origin.clone())?;
        if let Some(request) = &experiment.activations {
            if !layers.iter().any(|l| l.name == request.layer) {
                let names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
                bail!(
                    "{origin}: activations.layer `{}` is not a layer of the model (its layers: {})",
                    request.layer,
                    names.join(", ")
                );
            }
        }
        experiment.train.optimizer.validate().with_context(|| origin.clone())?;
        experiment.train.loss.check_head(experiment.model.output_activation()).with_context(|| origin.clone())?;
        if let Validation::Split(f) = experiment.validation {
            if !(f > 0.0 && f < 1.0) {
                bail!("{origin}: validation split must be in (0, 1), got {f}");
            }
        }
        if experiment.train.epochs == 0 || experiment.train.batch_size == 0 {
            bail!("{origin}: train.epochs and train.batch_size must be at least 1");
        }
    }
    if let Some(analysis) = &assignment.analysis {
        let origin = format!("{}: [analysis]", file.display());
        if analysis.methods.is_empty() {
            bail!("{origin}: methods must name at least one of tsne, pca");
        }
        if analysis.k == 0 || analysis.k_max < analysis.k {
            bail!("{origin}: need 1 ≤ k ≤ k_max, got k = {} and k_max = {}", analysis.k, analysis.k_max);
        }
    }
    Ok(assignment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_catalogue_loads_with_keras_param_counts() {
        let catalogue = Catalogue::load(&Catalogue::default_dir()).unwrap();
        let a1 = catalogue.assignment("a1").unwrap();
        let params = |id: &str| a1.experiment(id).unwrap().model.param_count().unwrap();
        assert_eq!(params("a1.dense_linear"), 203_530);
        assert_eq!(params("a1.dense_relu"), 203_530);
        assert_eq!(params("a1.cnn"), 1_199_882);
        assert_eq!(params("a1.cifar_cnn"), 624_106);
        assert_eq!(a1.experiment("a1.dense_linear").unwrap().validation, Validation::Split(0.2));
        let tp = catalogue.assignment("tp").unwrap();
        let params = |id: &str| tp.experiment(id).unwrap().model.param_count().unwrap();
        assert_eq!(params("tp.logreg"), 7_850);
        assert_eq!(params("tp.mlp"), 79_510);
        assert_eq!(params("tp.cnn"), 366_806);
        assert_eq!(tp.experiment("tp.mlp").unwrap().replicates, Some(5));
        let analysis = tp.analysis.as_ref().unwrap();
        assert_eq!((analysis.k, analysis.k_max), (10, 30));
        assert_eq!(analysis.methods, vec![Method::Tsne, Method::Pca]);
    }

    fn load_text(text: &str) -> Result<Assignment> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x1.toml");
        std::fs::write(&file, text).unwrap();
        load_assignment(&file)
    }

    const GOOD: &str = r#"
id = "x1"
title = "t"
[[experiment]]
id = "x1.m"
description = "d"
dataset = "mnist"
validation = "test"
model = { input = [784], layers = [{ type = "dense", units = 10, activation = "softmax" }] }
train = { epochs = 1, batch_size = 8, optimizer = { name = "sgd" }, loss = "categorical_crossentropy" }
"#;

    #[test]
    fn errors_name_the_file_and_the_problem() {
        assert!(load_text(GOOD).is_ok());
        let err = load_text(&GOOD.replace("\"dense\"", "\"dens\"")).unwrap_err().to_string();
        assert!(err.contains("x1.toml") && err.contains("dens"), "{err}");
        let err = load_text(&GOOD.replace("title = \"t\"", "title = ")).unwrap_err().to_string();
        assert!(err.contains("x1.toml"), "{err}");
        let err = format!("{:#}", load_text(&GOOD.replace("\"softmax\"", "\"relu\"")).unwrap_err());
        assert!(err.contains("x1.m") && err.contains("softmax"), "{err}");
        let err = load_text(&GOOD.replace("id = \"x1.m\"", "id = \"other.m\"")).unwrap_err().to_string();
        assert!(err.contains("must start with"), "{err}");
    }

    #[test]
    fn activations_and_analysis_are_checked() {
        let with_layer = GOOD.replace("validation = \"test\"", "validation = \"test\"\nactivations = { layer = \"dense\" }");
        assert!(load_text(&with_layer).is_ok());
        let err = load_text(&with_layer.replace("layer = \"dense\"", "layer = \"dense_7\"")).unwrap_err().to_string();
        assert!(err.contains("x1.m") && err.contains("dense_7") && err.contains("its layers: dense"), "{err}");
        let analysis = "\n[analysis]\ndataset = \"mnist\"\nmethods = [\"pca\"]\nk = 10\nk_max = 30\n";
        assert!(load_text(&format!("{GOOD}{analysis}")).unwrap().analysis.is_some());
        let err = load_text(&format!("{GOOD}{}", analysis.replace("k_max = 30", "k_max = 5"))).unwrap_err().to_string();
        assert!(err.contains("[analysis]") && err.contains("k_max = 5"), "{err}");
        let err = load_text(&format!("{GOOD}{}", analysis.replace("\"pca\"", "\"umap\""))).unwrap_err().to_string();
        assert!(err.contains("umap"), "{err}");
    }
}
