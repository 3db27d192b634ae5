//! The planner: catalogue × profile × run seed → jobs. A job's id is a content hash of everything that
//! determines its result, so a changed configuration is a new job and an unchanged one is found again.

use anyhow::{bail, Result};
use nnlab_nn::{ModelSpec, TrainConfig};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::catalogue::{Catalogue, Validation};
use crate::profile::Profile;

/// Which samples a job sees: the first `train` training samples and the first `test` test samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSlice {
    pub train: Option<usize>,
    pub test: Option<usize>,
}

/// Everything that determines a job's result. Serialised canonically, it is hashed into the job id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub assignment: String,
    pub experiment: String,
    pub dataset: String,
    pub model: ModelSpec,
    pub train: TrainConfig,
    pub validation: Validation,
    pub data: DataSlice,
    /// 1-based replicate number.
    pub replicate: usize,
    pub seed: u64,
    /// Activations to keep for the analysis stage; absent from the spec (and its hash) otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activations: Option<ActivationsSpec>,
}

/// The activations of layer `layer` on the first `points` test images (all of the test slice if absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationsSpec {
    pub layer: String,
    pub points: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub spec: JobSpec,
}

/// Every job of the selection, in catalogue order. `only` holds assignment ids (every experiment of
/// the assignment) and experiment ids (that experiment alone); empty selects everything.
pub fn plan(catalogue: &Catalogue, profile: &Profile, run_seed: u64, only: &[String]) -> Result<Vec<Job>> {
    for wanted in only {
        let is_experiment = catalogue.assignments.iter().flat_map(|a| &a.experiments).any(|e| &e.id == wanted);
        if catalogue.assignment(wanted).is_none() && !is_experiment {
            let known: Vec<&str> = catalogue.assignments.iter().map(|a| a.id.as_str()).collect();
            bail!(
                "unknown assignment or experiment `{wanted}` (the assignments: {}; experiments are named <assignment>.<model>)",
                known.join(", ")
            );
        }
    }
    let mut jobs = Vec::new();
    for assignment in &catalogue.assignments {
        for experiment in assignment.experiments.iter().filter(|e| selects(only, &assignment.id, &e.id)) {
            let mut train = experiment.train.clone();
            train.epochs = profile.epochs_for(train.epochs);
            let configuration = JobSpec {
                assignment: assignment.id.clone(),
                experiment: experiment.id.clone(),
                dataset: experiment.dataset.clone(),
                model: experiment.model.clone(),
                train,
                validation: experiment.validation,
                data: DataSlice { train: profile.train_samples, test: profile.test_samples },
                replicate: 0,
                seed: 0,
                activations: experiment
                    .activations
                    .as_ref()
                    .map(|a| ActivationsSpec { layer: a.layer.clone(), points: profile.analysis_points }),
            };
            let configuration_hash = content_hash(&configuration);
            for replicate in 1..=profile.replicates_for(experiment.replicates) {
                let spec = JobSpec {
                    replicate,
                    seed: replicate_seed(run_seed, &configuration_hash, replicate),
                    ..configuration.clone()
                };
                jobs.push(Job { id: content_hash(&spec)[..16].to_string(), spec });
            }
        }
    }
    Ok(jobs)
}

/// Whether the selection `only` (see [`plan`]) takes `experiment` of `assignment`.
pub fn selects(only: &[String], assignment: &str, experiment: &str) -> bool {
    only.is_empty() || only.iter().any(|wanted| wanted == assignment || wanted == experiment)
}

/// The seed of one replicate, from (run seed, configuration, replicate): replicates differ, and the
/// same configuration under the same run seed always gets the same seeds.
pub fn replicate_seed(run_seed: u64, configuration_hash: &str, replicate: usize) -> u64 {
    let digest = Sha256::digest(format!("{run_seed}/{configuration_hash}/{replicate}"));
    u64::from_le_bytes(digest[..8].try_into().expect("a SHA-256 digest has 32 bytes"))
}

pub fn content_hash<T: Serialize>(value: &T) -> String {
    // serde_json writes struct fields in declaration order, so the text is canonical for these types.
    let text = serde_json::to_string(value).expect("job specs always serialise");
    hex::encode(Sha256::digest(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(profile: &str) -> (Catalogue, Profile) {
        (Catalogue::load(&Catalogue::default_dir()).unwrap(), Profile::load(&Profile::default_dir(), profile).unwrap())
    }

    #[test]
    fn ids_are_stable_and_replicates_differ() {
        let (catalogue, smoke) = setup("smoke");
        let a = plan(&catalogue, &smoke, 42, &[]).unwrap();
        let b = plan(&catalogue, &smoke, 42, &[]).unwrap();
        assert_eq!(a, b);
        let linear: Vec<&Job> = a.iter().filter(|j| j.spec.experiment == "a1.dense_linear").collect();
        assert_eq!(linear.len(), 2);
        assert_ne!(linear[0].spec.seed, linear[1].spec.seed);
        assert_ne!(linear[0].id, linear[1].id);
        assert_eq!(linear[0].spec.train.epochs, 2);
    }

    #[test]
    fn seed_and_profile_change_the_ids() {
        let (catalogue, smoke) = setup("smoke");
        let (_, full) = setup("full");
        let a = plan(&catalogue, &smoke, 42, &[]).unwrap();
        let other_seed = plan(&catalogue, &smoke, 43, &[]).unwrap();
        let other_profile = plan(&catalogue, &full, 42, &[]).unwrap();
        assert_ne!(a[0].id, other_seed[0].id);
        assert_ne!(a[0].id, other_profile[0].id);
        assert_eq!(other_profile.iter().filter(|j| j.spec.experiment == "a1.dense_relu").count(), 3);
    }

    #[test]
    fn unknown_assignment_is_an_error() {
        let (catalogue, smoke) = setup("smoke");
        let err = plan(&catalogue, &smoke, 1, &["a9".to_string()]).unwrap_err().to_string();
        assert!(err.contains("a9") && err.contains("a1"), "{err}");
    }

    #[test]
    fn experiments_can_be_selected_alone_with_the_ids_of_the_full_plan() {
        let (catalogue, smoke) = setup("smoke");
        let all = plan(&catalogue, &smoke, 1, &["tp".to_string()]).unwrap();
        let only = ["tp.mlp".to_string(), "a1.cnn".to_string()];
        let some = plan(&catalogue, &smoke, 1, &only).unwrap();
        let experiments: std::collections::BTreeSet<&str> = some.iter().map(|j| j.spec.experiment.as_str()).collect();
        assert_eq!(experiments, ["a1.cnn", "tp.mlp"].into_iter().collect());
        // A job selected alone is the same job, so a later full run reuses it.
        for job in some.iter().filter(|j| j.spec.experiment == "tp.mlp") {
            assert!(all.iter().any(|a| a.id == job.id));
        }
    }
}
