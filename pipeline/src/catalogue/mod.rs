//! The declarative experiment catalogue: one TOML file per assignment under `pipeline/catalogue/`.
//!
//! Experiments compose: `extends` copies another experiment and overrides fields (`insert` adds
//! layers after named ones), `sweep` axes vary any field of the spec (their cartesian product is
//! the sweep's points), and a `follow_up` trains the best point of a sweep again under overrides,
//! once that sweep's results are in. `[[choice]]` entries pick the best of several experiments once
//! their results are in, and `[[evaluation]]` entries evaluate trained models (an experiment or a
//! choice) on transformed test sets without retraining.

mod compose;
mod playground;
mod sweep;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nnlab_data::Direction;
use nnlab_nn::{ModelSpec, TrainConfig};
use serde::{Deserialize, Serialize};

pub use playground::{shape_name, value_label, Knob, PlaygroundStudy, SearchStudy};
pub(crate) use sweep::thin;
pub use sweep::{point_label, value_text, AxisValue, SweepAxis};

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
    /// Sweep axes; several form their cartesian product.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sweep: Vec<SweepAxis>,
    /// Set when this experiment trains the best point of another experiment's sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<FollowUp>,
    /// A level the assignment asks the model to reach, which its report measures it against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
}

/// E.g. `{ metric = "val_acc", at_least = 0.99 }`: a per-epoch metric of the history and its goal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub metric: String,
    pub at_least: f64,
}

/// Which point of a sweep a follow-up trains: the one whose mean `metric` (a final metric of the
/// result tables, e.g. `test_acc`) is best under `goal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowUp {
    pub of: String,
    pub metric: String,
    pub goal: Goal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    Maximise,
    Minimise,
}

impl Goal {
    /// Whether `a` is strictly better than `b`.
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            Goal::Maximise => a > b,
            Goal::Minimise => a < b,
        }
    }
}

/// The best of several experiments on a final metric (its mean over replicates), chosen by the
/// pipeline once all of them have finished; an evaluation may name it in place of an experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChoiceSpec {
    pub id: String,
    pub description: String,
    /// Experiments without a sweep.
    pub among: Vec<String>,
    pub metric: String,
    pub goal: Goal,
}

/// Trained models evaluated again on transformed test sets, without retraining.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationStudy {
    pub id: String,
    pub description: String,
    /// Experiments (without a sweep) or choices whose every replicate is evaluated.
    pub models: Vec<String>,
    pub transform: TransformSet,
    /// For reconstruction models: a classifier (an experiment or a choice) that also classifies the
    /// transformed and the reconstructed test images. Replicate i of a model is paired with
    /// replicate i of the classifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classifier: Option<String>,
}

/// A family of test-set transforms, each instance evaluated separately.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TransformSet {
    /// Every image rolled by each of `pixels` in each of `directions`, with wrap-around.
    Roll { directions: Vec<Direction>, pixels: Vec<usize> },
    /// Salt-and-pepper noise at each level: every pixel independently set to 0 or 1 with
    /// probability `level`, half each, drawn from a seed derived from the run's seed.
    SaltAndPepper { levels: Vec<f64> },
    /// An autoencoder's decoder as a generator: `steps` codes on the line between the codes of two
    /// test digits (for `pairs` pairs of classes), and `samples` codes drawn from a Gaussian fitted to
    /// the test images' codes, each decoded to an image.
    Generate { pairs: usize, steps: usize, samples: usize },
}

/// One transform of a [`TransformSet`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Transform {
    Roll {
        direction: Direction,
        pixels: usize,
    },
    /// The noise is drawn from `seed`, the same for every level and every model of a run, so the
    /// pixels hit at one level are hit at every higher level too.
    SaltAndPepper {
        level: f64,
        seed: u64,
    },
    /// The test images as they are; the model's codes are decoded (see [`TransformSet::Generate`]),
    /// the random ones drawn from `seed`.
    Generate {
        pairs: usize,
        steps: usize,
        samples: usize,
        seed: u64,
    },
}

impl TransformSet {
    /// Every instance; `run_seed` seeds the random ones.
    pub fn instances(&self, run_seed: u64) -> Vec<Transform> {
        match self {
            TransformSet::Roll { directions, pixels } => directions
                .iter()
                .flat_map(|&direction| pixels.iter().map(move |&pixels| Transform::Roll { direction, pixels }))
                .collect(),
            TransformSet::SaltAndPepper { levels } => {
                let seed = noise_seed(run_seed);
                levels.iter().map(|&level| Transform::SaltAndPepper { level, seed }).collect()
            }
            &TransformSet::Generate { pairs, steps, samples } => {
                vec![Transform::Generate { pairs, steps, samples, seed: noise_seed(run_seed) }]
            }
        }
    }
}

/// The stream of the run seed that test noise is drawn from (jobs use their own seeds' streams).
const TEST_NOISE_STREAM: u64 = 0x7e57_0015e;

/// The test-noise seed of a run: its own stream of the run seed, apart from every job's seed.
fn noise_seed(run_seed: u64) -> u64 {
    use rand::Rng;
    nnlab_nn::rng_stream(run_seed, TEST_NOISE_STREAM).random()
}

impl Transform {
    /// The transform's parameters as table columns.
    pub fn columns(&self) -> Vec<AxisValue> {
        match *self {
            Transform::Roll { direction, pixels } => vec![
                AxisValue { axis: "direction".into(), value: direction.name().into() },
                AxisValue { axis: "pixels".into(), value: pixels.into() },
            ],
            Transform::SaltAndPepper { level, .. } => vec![AxisValue { axis: "level".into(), value: level.into() }],
            Transform::Generate { .. } => vec![AxisValue { axis: "generated".into(), value: "decoded codes".into() }],
        }
    }
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
    #[serde(default, rename = "evaluation")]
    pub evaluations: Vec<EvaluationStudy>,
    #[serde(default, rename = "choice")]
    pub choices: Vec<ChoiceSpec>,
    /// The TensorFlow Playground study (a1's extra questions).
    #[serde(default)]
    pub playground: Option<PlaygroundStudy>,
}

/// An assignment file before its experiments are composed and typed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAssignment {
    id: String,
    title: String,
    #[serde(rename = "experiment")]
    experiments: Vec<toml::Table>,
    #[serde(default)]
    analysis: Option<AnalysisConfig>,
    #[serde(default, rename = "evaluation")]
    evaluations: Vec<EvaluationStudy>,
    #[serde(default, rename = "choice")]
    choices: Vec<ChoiceSpec>,
    #[serde(default)]
    playground: Option<PlaygroundStudy>,
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
        let raw: Vec<(PathBuf, RawAssignment)> =
            files.into_iter().map(|file| read_raw(&file).map(|r| (file, r))).collect::<Result<_>>()?;
        let entries: Vec<compose::RawEntry> = raw
            .iter()
            .flat_map(|(file, r)| {
                r.experiments.iter().map(|t| compose::RawEntry { file: file.display().to_string(), table: t.clone() })
            })
            .collect();
        let mut composed = compose::compose_all(&entries)?;
        let mut assignments = Vec::new();
        for (file, raw) in raw {
            let mut experiments = Vec::new();
            for table in &raw.experiments {
                let id = table.get("id").and_then(toml::Value::as_str).unwrap_or_default();
                let table = composed
                    .remove(id)
                    .ok_or_else(|| anyhow!("{}: experiment id {id} appears twice in the catalogue", file.display()))?;
                let experiment: Experiment = toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| {
                    anyhow!("{}: experiment {id}: {}", file.display(), e.to_string().trim().replace('\n', " "))
                })?;
                experiments.push(experiment);
            }
            let assignment = Assignment {
                id: raw.id,
                title: raw.title,
                experiments,
                analysis: raw.analysis,
                evaluations: raw.evaluations,
                choices: raw.choices,
                playground: raw.playground,
            };
            check_assignment(&file, &assignment)?;
            assignments.push(assignment);
        }
        let catalogue = Catalogue { assignments };
        catalogue.check_references()?;
        Ok(catalogue)
    }

    /// An experiment of any assignment.
    pub fn experiment(&self, id: &str) -> Option<&Experiment> {
        self.assignments.iter().flat_map(|a| &a.experiments).find(|e| e.id == id)
    }

    pub fn assignment(&self, id: &str) -> Option<&Assignment> {
        self.assignments.iter().find(|a| a.id == id)
    }

    /// A choice of any assignment.
    pub fn choice(&self, id: &str) -> Option<&ChoiceSpec> {
        self.assignments.iter().flat_map(|a| &a.choices).find(|c| c.id == id)
    }

    /// The experiments an evaluation's model entry stands for: itself, or every candidate of a choice.
    pub fn experiments_behind(&self, model: &str) -> Vec<String> {
        match self.choice(model) {
            Some(choice) => choice.among.clone(),
            None => vec![model.to_string()],
        }
    }

    /// What can only be checked across entries: follow-ups name a swept experiment and leave its
    /// axes alone, evaluations name experiments without a sweep.
    fn check_references(&self) -> Result<()> {
        for experiment in self.assignments.iter().flat_map(|a| &a.experiments) {
            let Some(follow_up) = &experiment.follow_up else { continue };
            let origin = format!("experiment {}: follow_up", experiment.id);
            let of = self.experiment(&follow_up.of).ok_or_else(|| anyhow!("{origin}: no experiment {}", follow_up.of))?;
            if of.sweep.is_empty() || of.follow_up.is_some() {
                bail!("{origin}: {} has no sweep to choose a point from", of.id);
            }
            if !experiment.sweep.is_empty() {
                bail!("{origin}: a follow-up trains one point and cannot have a sweep of its own");
            }
            if !crate::tables::FINAL_METRICS.contains(&follow_up.metric.as_str()) {
                bail!("{origin}: metric `{}` is not one of {}", follow_up.metric, crate::tables::FINAL_METRICS.join(", "));
            }
            for axis in &of.sweep {
                if axis.path.paths().iter().any(|path| experiment.value_at(path) != of.value_at(path)) {
                    bail!("{origin}: it overrides {}, which the sweep of {} chooses (axis `{}`)", axis.path, of.id, axis.axis);
                }
            }
        }
        for assignment in &self.assignments {
            for choice in &assignment.choices {
                let origin = format!("choice {}", choice.id);
                if !choice.id.starts_with(&format!("{}.", assignment.id)) || self.experiment(&choice.id).is_some() {
                    bail!("{origin}: the id must start with `{}.` and differ from every experiment id", assignment.id);
                }
                if choice.among.len() < 2 {
                    bail!("{origin}: `among` must name at least two experiments");
                }
                if !crate::tables::FINAL_METRICS.contains(&choice.metric.as_str()) {
                    bail!("{origin}: metric `{}` is not one of {}", choice.metric, crate::tables::FINAL_METRICS.join(", "));
                }
                for id in &choice.among {
                    let experiment = self.experiment(id).ok_or_else(|| anyhow!("{origin}: no experiment {id}"))?;
                    if !experiment.sweep.is_empty() {
                        bail!("{origin}: {id} is a sweep; choose among experiments of one point");
                    }
                }
            }
            for study in &assignment.evaluations {
                let origin = format!("evaluation {}", study.id);
                if let TransformSet::SaltAndPepper { levels } = &study.transform {
                    if levels.is_empty() || levels.iter().any(|l| !(0.0..=1.0).contains(l)) {
                        bail!("{origin}: salt-and-pepper levels must be in [0, 1], at least one");
                    }
                }
                if let TransformSet::Generate { pairs, steps, .. } = study.transform {
                    if pairs == 0 || pairs > 5 || steps < 2 {
                        bail!("{origin}: generation needs 1–5 pairs of the 10 classes and at least 2 steps between their codes");
                    }
                    for model in &study.models {
                        if self.experiment(model).is_some_and(|e| e.train.loss.has_accuracy()) {
                            bail!("{origin}: {model} is a classifier, not an autoencoder whose decoder generates");
                        }
                    }
                }
                if let Some(classifier) = &study.classifier {
                    let candidates = self.experiments_behind(classifier);
                    for id in &candidates {
                        let experiment = self.experiment(id).ok_or_else(|| anyhow!("{origin}: no classifier {id}"))?;
                        if !experiment.train.loss.has_accuracy() || !experiment.sweep.is_empty() {
                            bail!("{origin}: classifier {id} must be a classifier of one point");
                        }
                    }
                    for model in &study.models {
                        if self.experiment(model).is_some_and(|e| e.train.loss.has_accuracy()) {
                            bail!("{origin}: a classifier classifies reconstructions, but {model} is itself a classifier");
                        }
                    }
                }
                for model in &study.models {
                    if self.choice(model).is_some() {
                        continue;
                    }
                    let experiment =
                        self.experiment(model).ok_or_else(|| anyhow!("{origin}: no experiment or choice {model}"))?;
                    if !experiment.sweep.is_empty() {
                        bail!("{origin}: {model} is a sweep; evaluate one of its points through a follow-up");
                    }
                }
            }
        }
        Ok(())
    }
}

fn read_raw(file: &Path) -> Result<RawAssignment> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    toml::from_str(&text).map_err(|e| anyhow!("{}: {}", file.display(), e.to_string().trim().replace('\n', " ")))
}

fn check_assignment(file: &Path, assignment: &Assignment) -> Result<()> {
    if let Some(study) = &assignment.playground {
        study.check().with_context(|| format!("{}: [playground]", file.display()))?;
    }
    let mut ids = std::collections::HashSet::new();
    for experiment in &assignment.experiments {
        let origin = format!("{}: experiment {}", file.display(), experiment.id);
        if !experiment.id.starts_with(&format!("{}.", assignment.id)) {
            bail!("{origin}: its id must start with the assignment id `{}.`", assignment.id);
        }
        check_experiment(experiment).with_context(|| origin.clone())?;
        for axis in &experiment.sweep {
            sweep::check_axis(experiment, axis).with_context(|| origin.clone())?;
        }
        for point in experiment.points(None).iter().filter(|p| !p.is_empty()) {
            let resolved = experiment.at_point(&experiment.sweep, point).with_context(|| origin.clone())?;
            check_experiment(&resolved).with_context(|| format!("{origin}, sweep point {}", point_label(point)))?;
        }
        ids.insert(experiment.id.as_str());
    }
    for study in &assignment.evaluations {
        let origin = format!("{}: evaluation {}", file.display(), study.id);
        if !study.id.starts_with(&format!("{}.", assignment.id)) || !ids.insert(study.id.as_str()) {
            bail!("{origin}: its id must start with `{}.` and differ from every experiment's", assignment.id);
        }
        if study.models.is_empty() || study.transform.instances(0).is_empty() {
            bail!("{origin}: it needs at least one model and one transform");
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
    Ok(())
}

/// The checks every trainable experiment (and every sweep point) passes.
fn check_experiment(experiment: &Experiment) -> Result<()> {
    let layers = experiment.model.plan()?;
    if let Some(request) = &experiment.activations {
        if !layers.iter().any(|l| l.name == request.layer) {
            let names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
            bail!("activations.layer `{}` is not a layer of the model (its layers: {})", request.layer, names.join(", "));
        }
    }
    experiment.train.optimizer.validate()?;
    experiment.train.loss.check_model(&experiment.model)?;
    if let Validation::Split(f) = experiment.validation {
        if !(f > 0.0 && f < 1.0) {
            bail!("validation split must be in (0, 1), got {f}");
        }
    }
    if experiment.train.epochs == 0 || experiment.train.batch_size == 0 {
        bail!("train.epochs and train.batch_size must be at least 1");
    }
    if let Some(target) = &experiment.target {
        if !crate::tables::EPOCH_METRICS.contains(&target.metric.as_str()) {
            bail!("target.metric `{}` is not one of {}", target.metric, crate::tables::EPOCH_METRICS.join(", "));
        }
    }
    Ok(())
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
        let a7b = catalogue.assignment("a7b").unwrap();
        let params = |id: &str| a7b.experiment(id).unwrap().model.param_count().unwrap();
        assert_eq!(params("a7b.dense125"), 116_285);
        assert_eq!(params("a7b.dense100"), 79_510);
        let analysis = tp.analysis.as_ref().unwrap();
        assert_eq!((analysis.k, analysis.k_max), (10, 30));
        assert_eq!(analysis.methods, vec![Method::Tsne, Method::Pca]);
    }

    fn load_text(text: &str) -> Result<Assignment> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x1.toml"), text).unwrap();
        Ok(Catalogue::load(dir.path())?.assignments.remove(0))
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
        let err = load_text(&with_layer.replace("layer = \"dense\"", "layer = \"dense_7\"")).unwrap_err();
        let err = format!("{err:#}");
        assert!(err.contains("x1.m") && err.contains("dense_7") && err.contains("its layers: dense"), "{err}");
        let analysis = "\n[analysis]\ndataset = \"mnist\"\nmethods = [\"pca\"]\nk = 10\nk_max = 30\n";
        assert!(load_text(&format!("{GOOD}{analysis}")).unwrap().analysis.is_some());
        let err = load_text(&format!("{GOOD}{}", analysis.replace("k_max = 30", "k_max = 5"))).unwrap_err().to_string();
        assert!(err.contains("[analysis]") && err.contains("k_max = 5"), "{err}");
        let err = load_text(&format!("{GOOD}{}", analysis.replace("\"pca\"", "\"umap\""))).unwrap_err().to_string();
        assert!(err.contains("umap"), "{err}");
    }

    const SWEPT: &str = r#"
[[experiment.sweep]]
axis = "lr"
path = "train.optimizer.lr"
values = [0.01, 0.1, 1.0]

[[experiment.sweep]]
axis = "units"
path = "model.layers.dense.units"
values = [10, 20]
"#;

    #[test]
    fn sweeps_expand_to_their_cartesian_product() {
        let grid = GOOD.replace(
            "units = 10, activation = \"softmax\"",
            "units = 5, activation = \"relu\" }, { type = \"dense\", units = 10, activation = \"softmax\"",
        );
        let assignment = load_text(&format!("{grid}{SWEPT}")).unwrap();
        let experiment = &assignment.experiments[0];
        let points = experiment.points(None);
        assert_eq!(points.len(), 6);
        assert_eq!(point_label(&points[1]), "lr=0.01, units=20");
        let resolved = experiment.at_point(&experiment.sweep, &points[5]).unwrap();
        assert!(resolved.sweep.is_empty());
        assert_eq!(resolved.train.optimizer.describe(), "SGD (lr 1)");
        assert_eq!(resolved.model.param_count().unwrap(), 784 * 20 + 20 + 21 * 10);
        assert_eq!(experiment.points(Some(2)).len(), 4);
    }

    #[test]
    fn sweep_errors_name_file_experiment_and_axis() {
        let err = |text: String| format!("{:#}", load_text(&text).unwrap_err());
        let e = err(format!("{GOOD}{}", SWEPT.replace("train.optimizer.lr", "train.optimiser.lr")));
        assert!(e.contains("x1.toml") && e.contains("x1.m") && e.contains("`lr`") && e.contains("optimiser"), "{e}");
        let e = err(format!("{GOOD}{}", SWEPT.replace("values = [0.01, 0.1, 1.0]", "values = []")));
        assert!(e.contains("x1.m") && e.contains("`lr`") && e.contains("no values"), "{e}");
        let e = err(format!("{GOOD}{}", SWEPT.replace("values = [10, 20]", "values = [10, 2.5]")));
        assert!(e.contains("x1.m") && e.contains("units=2.5") && e.contains("floating point"), "{e}");
        let e = err(format!("{GOOD}{}", SWEPT.replace("train.optimizer.lr", "train.optimizer.lrr")));
        assert!(e.contains("x1.m") && e.contains("lrr"), "{e}");
        let e = err(format!("{GOOD}{}", SWEPT.replace("model.layers.dense.units", "model.layers.conv2d.units")));
        assert!(e.contains("`units`") && e.contains("no layer named `conv2d`"), "{e}");
    }

    #[test]
    fn follow_ups_choose_from_a_sweep_and_leave_its_axes_alone() {
        let follow = "\n[[experiment]]\nid = \"x1.best\"\ndescription = \"b\"\nfollow_up = { of = \"x1.m\", metric = \"test_acc\", goal = \"maximise\" }\ntrain.epochs = 30\n";
        let assignment =
            load_text(&format!("{GOOD}{}{follow}", SWEPT.replace("model.layers.dense.units", "model.layers.0.units"))).unwrap();
        let best = assignment.experiment("x1.best").unwrap();
        assert!(best.sweep.is_empty() && best.train.epochs == 30 && best.follow_up.is_some());
        let e = format!(
            "{:#}",
            load_text(&format!("{GOOD}{SWEPT}{}", follow.replace("train.epochs = 30", "train.optimizer.lr = 0.5"))).unwrap_err()
        );
        assert!(e.contains("x1.best") && e.contains("train.optimizer.lr"), "{e}");
        let e = format!("{:#}", load_text(&format!("{GOOD}{}", follow)).unwrap_err());
        assert!(e.contains("x1.best") && e.contains("no sweep"), "{e}");
        let e = format!("{:#}", load_text(&format!("{GOOD}{SWEPT}{}", follow.replace("test_acc", "accuracy"))).unwrap_err());
        assert!(e.contains("accuracy") && e.contains("test_acc"), "{e}");
    }

    #[test]
    fn one_axis_may_set_several_paths() {
        let two_hidden = GOOD.replace(
            "layers = [{",
            "layers = [{ type = \"dense\", units = 5, activation = \"relu\" }, { type = \"dense\", units = 5, activation = \"relu\" }, {",
        );
        let axis = "[[experiment.sweep]]\naxis = \"l2\"\npath = [\"model.layers.dense.l2\", \"model.layers.dense_1.l2\"]\nvalues = [0.5]\n";
        let assignment = load_text(&format!("{two_hidden}{axis}")).unwrap();
        let experiment = &assignment.experiments[0];
        let resolved = experiment.at_point(&experiment.sweep, &experiment.points(None)[0]).unwrap();
        let l2 = |i: usize| resolved.value_at(&format!("model.layers.{i}.l2"));
        assert_eq!((l2(0), l2(1), l2(2)), (Some(serde_json::json!(0.5)), Some(serde_json::json!(0.5)), None));
        let e = format!("{:#}", load_text(&format!("{two_hidden}{}", axis.replace("dense_1.l2", "dense_9.l2"))).unwrap_err());
        assert!(e.contains("`l2`") && e.contains("dense_9"), "{e}");
    }

    #[test]
    fn choices_name_experiments_of_one_point_and_a_final_metric() {
        let second = GOOD.replace("id = \"x1\"\ntitle = \"t\"\n", "").replace("x1.m", "x1.n");
        let choice = "\n[[choice]]\nid = \"x1.best\"\ndescription = \"b\"\namong = [\"x1.m\", \"x1.n\"]\nmetric = \"test_acc\"\ngoal = \"maximise\"\n";
        let evaluation = "\n[[evaluation]]\nid = \"x1.shift\"\ndescription = \"s\"\nmodels = [\"x1.best\"]\ntransform = { type = \"roll\", directions = [\"up\"], pixels = [1] }\n";
        let text = format!("{GOOD}{second}{choice}{evaluation}");
        let assignment = load_text(&text).unwrap();
        assert_eq!(assignment.choices[0].among, ["x1.m", "x1.n"]);
        let err = |text: String| format!("{:#}", load_text(&text).unwrap_err());
        let e = err(text.replace("metric = \"test_acc\"", "metric = \"acc\""));
        assert!(e.contains("x1.best") && e.contains("`acc`"), "{e}");
        let e = err(text.replace("[\"x1.m\", \"x1.n\"]", "[\"x1.m\", \"x1.zz\"]"));
        assert!(e.contains("x1.best") && e.contains("x1.zz"), "{e}");
        let e = err(text.replace("models = [\"x1.best\"]", "models = [\"x1.bst\"]"));
        assert!(e.contains("x1.shift") && e.contains("x1.bst"), "{e}");
        let e = err(format!("{GOOD}{second}{}", choice.replace("x1.best", "x1.m")));
        assert!(e.contains("choice x1.m") && e.contains("differ"), "{e}");
    }

    #[test]
    fn the_dropout_cnn_is_the_cnn_with_two_dropout_layers() {
        let catalogue = Catalogue::load(&Catalogue::default_dir()).unwrap();
        let cnn = catalogue.experiment("a1.cnn").unwrap();
        let dropout = catalogue.experiment("a1.cnn_dropout").unwrap();
        let names: Vec<String> = dropout.model.plan().unwrap().into_iter().map(|l| l.name).collect();
        assert_eq!(names, ["conv2d", "conv2d_1", "max_pooling2d", "dropout", "flatten", "dense", "dropout_1", "dense_1"]);
        let without_dropout: Vec<_> =
            dropout.model.layers.iter().filter(|l| !matches!(l, nnlab_nn::LayerSpec::Dropout { .. })).cloned().collect();
        assert_eq!(without_dropout, cnn.model.layers);
        assert_eq!((dropout.train.clone(), dropout.validation), (cnn.train.clone(), cnn.validation));
    }
}
