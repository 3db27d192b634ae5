//! The planner: catalogue × profile × run seed → jobs. A job's id is a content hash of everything that
//! determines its result, so a changed configuration is a new job and an unchanged one is found again.

use anyhow::{bail, Result};
use nnlab_nn::{ModelSpec, TrainConfig};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::catalogue::{AxisValue, Catalogue, Experiment, Transform, Validation};
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
    /// The sweep point this job trains (a follow-up: the point it chose); empty outside sweeps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub point: Vec<AxisValue>,
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

/// The training jobs of the selection that can be planned now, in catalogue order: every point ×
/// replicate of every selected experiment except follow-ups, which [`plan_follow_up`] plans once
/// the sweep they choose from has finished. `only` holds assignment ids (every experiment and
/// evaluation of the assignment), experiment and evaluation ids; empty selects everything.
/// What a selected follow-up or evaluation needs is selected with it.
pub fn plan(catalogue: &Catalogue, profile: &Profile, run_seed: u64, only: &[String]) -> Result<Vec<Job>> {
    let selected = Selection::new(catalogue, only)?;
    let mut jobs = Vec::new();
    for assignment in &catalogue.assignments {
        for experiment in assignment.experiments.iter().filter(|e| selected.trains(&e.id) && e.follow_up.is_none()) {
            for point in experiment.points(profile.max_axis_values) {
                let resolved = experiment.at_point(&experiment.sweep, &point)?;
                jobs.extend(replicate_jobs(&assignment.id, &resolved, point, profile, run_seed));
            }
        }
    }
    Ok(jobs)
}

/// The jobs of follow-up `experiment` at the point it chose.
pub fn plan_follow_up(
    catalogue: &Catalogue,
    experiment: &Experiment,
    point: Vec<AxisValue>,
    profile: &Profile,
    run_seed: u64,
) -> Result<Vec<Job>> {
    let follow_up = experiment.follow_up.as_ref().expect("plan_follow_up is given follow-ups");
    let of = catalogue.experiment(&follow_up.of).expect("the catalogue checked follow_up.of");
    let resolved = experiment.at_point(&of.sweep, &point)?;
    let assignment = experiment.id.split('.').next().unwrap_or_default();
    Ok(replicate_jobs(assignment, &resolved, point, profile, run_seed))
}

fn replicate_jobs(
    assignment: &str,
    experiment: &Experiment,
    point: Vec<AxisValue>,
    profile: &Profile,
    run_seed: u64,
) -> Vec<Job> {
    let mut train = experiment.train.clone();
    train.epochs = profile.epochs_for(train.epochs);
    let configuration = JobSpec {
        assignment: assignment.to_string(),
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
        point,
    };
    let configuration_hash = content_hash(&configuration);
    (1..=profile.replicates_for(experiment.replicates))
        .map(|replicate| {
            let spec =
                JobSpec { replicate, seed: replicate_seed(run_seed, &configuration_hash, replicate), ..configuration.clone() };
            Job { id: content_hash(&spec)[..16].to_string(), spec }
        })
        .collect()
}

/// A trained job evaluated on a transformed test set. Its id hashes the trained job's id and the
/// transform, so it is found again as long as the trained job is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalJob {
    pub id: String,
    pub evaluation: String,
    pub trained: Job,
    pub transform: Transform,
    /// The classifier that also classifies the transformed and the reconstructed images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classifier: Option<Job>,
}

/// Every evaluation job of the selection over the given trained jobs, in catalogue order.
pub fn plan_evaluations(
    catalogue: &Catalogue,
    only: &[String],
    trained: &[Job],
    choices: &[crate::choice::Chosen],
    run_seed: u64,
) -> Result<Vec<EvalJob>> {
    let selected = Selection::new(catalogue, only)?;
    // A choice stands for the experiment it chose; one not made (its candidates unfinished) stands for none.
    let resolve = |model: &String| -> Option<String> {
        match catalogue.choice(model) {
            Some(_) => choices.iter().find(|c| &c.choice == model).map(|c| c.experiment().to_string()),
            None => Some(model.clone()),
        }
    };
    let mut jobs = Vec::new();
    for study in catalogue.assignments.iter().flat_map(|a| &a.evaluations).filter(|s| selected.evaluates(&s.id)) {
        let classifiers: Option<Vec<&Job>> = match &study.classifier {
            Some(classifier) => match resolve(classifier) {
                Some(id) => Some(trained.iter().filter(|j| j.spec.experiment == id).collect()),
                None => continue,
            },
            None => None,
        };
        for model in &study.models {
            let Some(experiment) = resolve(model) else { continue };
            for job in trained.iter().filter(|j| j.spec.experiment == experiment) {
                // Replicate i with the classifier's replicate i (cycling if it has fewer).
                let classifier = match &classifiers {
                    Some(list) if list.is_empty() => continue,
                    Some(list) => Some(list[(job.spec.replicate.max(1) - 1) % list.len()].clone()),
                    None => None,
                };
                for transform in study.transform.instances(run_seed) {
                    let id = match &classifier {
                        Some(c) => content_hash(&(&job.id, &transform, &c.id))[..16].to_string(),
                        None => content_hash(&(&job.id, &transform))[..16].to_string(),
                    };
                    jobs.push(EvalJob {
                        id,
                        evaluation: study.id.clone(),
                        trained: job.clone(),
                        transform,
                        classifier: classifier.clone(),
                    });
                }
            }
        }
    }
    Ok(jobs)
}

/// What a selection takes: experiments to train and evaluation studies to run, with everything
/// they depend on.
pub struct Selection {
    experiments: std::collections::BTreeSet<String>,
    evaluations: std::collections::BTreeSet<String>,
}

impl Selection {
    pub fn new(catalogue: &Catalogue, only: &[String]) -> Result<Self> {
        for wanted in only {
            let known = catalogue.assignment(wanted).is_some()
                || catalogue.experiment(wanted).is_some()
                || catalogue.assignments.iter().flat_map(|a| &a.evaluations).any(|s| &s.id == wanted)
                || catalogue.assignments.iter().any(|a| a.playground.is_some() && *wanted == playground_id(&a.id));
            if !known {
                let assignments: Vec<&str> = catalogue.assignments.iter().map(|a| a.id.as_str()).collect();
                bail!(
                    "unknown assignment or experiment `{wanted}` (the assignments: {}; experiments are named <assignment>.<model>)",
                    assignments.join(", ")
                );
            }
        }
        let mut experiments = std::collections::BTreeSet::new();
        let mut evaluations = std::collections::BTreeSet::new();
        for assignment in &catalogue.assignments {
            for study in assignment.evaluations.iter().filter(|s| selects(only, &assignment.id, &s.id)) {
                evaluations.insert(study.id.clone());
                experiments.extend(study.models.iter().flat_map(|m| catalogue.experiments_behind(m)));
                experiments.extend(study.classifier.iter().flat_map(|m| catalogue.experiments_behind(m)));
            }
            for experiment in assignment.experiments.iter().filter(|e| selects(only, &assignment.id, &e.id)) {
                experiments.insert(experiment.id.clone());
            }
        }
        // A follow-up needs its sweep, and an evaluated follow-up needs both.
        let follow_ups: Vec<String> =
            experiments.iter().filter_map(|id| catalogue.experiment(id)?.follow_up.as_ref().map(|f| f.of.clone())).collect();
        experiments.extend(follow_ups);
        Ok(Selection { experiments, evaluations })
    }

    pub fn trains(&self, experiment: &str) -> bool {
        self.experiments.contains(experiment)
    }

    pub fn evaluates(&self, study: &str) -> bool {
        self.evaluations.contains(study)
    }
}

/// The selection id of an assignment's Playground study alone: `<assignment>.playground`.
pub fn playground_id(assignment: &str) -> String {
    format!("{assignment}.playground")
}

/// Whether the selection `only` (see [`plan`]) names `item` (an experiment or evaluation) of `assignment`.
pub fn selects(only: &[String], assignment: &str, item: &str) -> bool {
    only.is_empty() || only.iter().any(|wanted| wanted == assignment || wanted == item)
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

    #[test]
    fn each_sweep_point_is_a_job_and_adding_a_point_reruns_only_that_point() {
        let (catalogue, smoke) = setup("smoke");
        let (_, full) = setup("full");
        let jobs = plan(&catalogue, &full, 7, &["a7b.grid".to_string()]).unwrap();
        assert_eq!(jobs.len(), 9 * 5 * 3, "9 widths × 5 learning rates × 3 replicates");
        let thinned = plan(&catalogue, &smoke, 7, &["a7b.lr_sweep".to_string()]).unwrap();
        let lrs: Vec<String> = thinned.iter().step_by(2).map(|j| crate::catalogue::point_label(&j.spec.point)).collect();
        assert_eq!(lrs, ["lr=0.001", "lr=0.1", "lr=1.0"]);
        for job in &thinned {
            let nnlab_nn::OptimizerSpec::Sgd { lr, .. } = job.spec.train.optimizer else { panic!("a7b trains with SGD") };
            assert_eq!(Some(lr), job.spec.point[0].value.as_f64(), "the point's value is in the job's spec");
        }

        // One more learning rate: the jobs of the other points keep their ids.
        let mut wider = catalogue.clone();
        let sweep =
            &mut wider.assignments.iter_mut().flat_map(|a| &mut a.experiments).find(|e| e.id == "a7b.lr_sweep").unwrap().sweep;
        sweep[0].values.push(serde_json::json!(2.0));
        let before = plan(&catalogue, &full, 7, &["a7b.lr_sweep".to_string()]).unwrap();
        let after = plan(&wider, &full, 7, &["a7b.lr_sweep".to_string()]).unwrap();
        let ids = |jobs: &[Job]| jobs.iter().map(|j| j.id.clone()).collect::<std::collections::BTreeSet<_>>();
        let new: Vec<String> = ids(&after).difference(&ids(&before)).cloned().collect();
        assert_eq!(new.len(), 3, "only the new point's replicates are new jobs");
        assert!(ids(&before).is_subset(&ids(&after)));
    }

    #[test]
    fn a_follow_up_is_planned_with_its_sweep_and_trains_the_chosen_point() {
        let (catalogue, full) = setup("full");
        let jobs = plan(&catalogue, &full, 7, &["a7b.grid_best".to_string()]).unwrap();
        assert!(jobs.iter().all(|j| j.spec.experiment == "a7b.grid"), "the sweep it depends on, not the follow-up itself");
        let best = catalogue.experiment("a7b.grid_best").unwrap();
        let point = catalogue.experiment("a7b.grid").unwrap().points(None)[7].clone();
        let follow = plan_follow_up(&catalogue, best, point.clone(), &full, 7).unwrap();
        assert_eq!(follow.len(), 3);
        assert_eq!(follow[0].spec.point, point);
        assert_eq!(follow[0].spec.train.epochs, 30);
        let units = match &follow[0].spec.model.layers[1] {
            nnlab_nn::LayerSpec::Dense { units, .. } => *units,
            other => panic!("{other:?}"),
        };
        assert_eq!((units, crate::catalogue::point_label(&point)), (25, "units=25, lr=0.01".to_string()));
    }

    #[test]
    fn evaluation_jobs_cover_every_replicate_and_transform_with_stable_ids() {
        let (catalogue, smoke) = setup("smoke");
        let trained = plan(&catalogue, &smoke, 7, &["a7b.shift".to_string()]).unwrap();
        let experiments: std::collections::BTreeSet<&str> = trained.iter().map(|j| j.spec.experiment.as_str()).collect();
        assert_eq!(experiments, ["a7b.cnn", "a7b.dense100"].into_iter().collect());
        let evaluations = plan_evaluations(&catalogue, &["a7b.shift".to_string()], &trained, &[], 42).unwrap();
        assert_eq!(evaluations.len(), 2 * 2 * 4 * 6, "2 models × 2 replicates × 4 directions × 6 shifts");
        assert_eq!(evaluations, plan_evaluations(&catalogue, &["a7b".to_string()], &trained, &[], 42).unwrap());
        let ids: std::collections::BTreeSet<&str> = evaluations.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids.len(), evaluations.len());
    }
}
