//! Choices between experiments: once every candidate of a `[[choice]]` has finished, the one whose
//! mean metric is best is chosen, and the choice and its reason (the winner's and the runner-up's
//! mean ± std) are recorded in the run as `choices.json`. Evaluations that name the choice evaluate
//! the chosen experiment's kept models. Follow-ups rank their sweep's points the same way.

use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};

use crate::catalogue::{AxisValue, ChoiceSpec, Goal};
use crate::tables::{Stat, Tables};

/// The run file that records every choice between experiments.
pub const CHOICES_FILE: &str = "choices.json";

/// A candidate of a choice: a sweep point (its label) or an experiment (its id, no point).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub point: Vec<AxisValue>,
    pub label: String,
    pub stat: Stat,
}

/// Why a choice names the experiment it names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chosen {
    pub choice: String,
    pub metric: String,
    pub goal: Goal,
    /// Every candidate, best first.
    pub ranking: Vec<Candidate>,
}

impl Chosen {
    /// The chosen experiment's id.
    pub fn experiment(&self) -> &str {
        &self.ranking[0].label
    }
}

/// Best first under `goal`; a stable sort keeps the given order among equals.
pub fn rank(mut candidates: Vec<Candidate>, goal: Goal) -> Vec<Candidate> {
    candidates.sort_by(|a, b| {
        let (a, b) = (a.stat.mean, b.stat.mean);
        if goal.better(a, b) {
            std::cmp::Ordering::Less
        } else if goal.better(b, a) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
    candidates
}

/// Chooses among the choice's experiments (the first listed on a tie), from the aggregated tables.
pub fn choose(choice: &ChoiceSpec, tables: &Tables) -> Result<Chosen> {
    let mut candidates = Vec::new();
    for id in &choice.among {
        let stat = tables
            .stat(id, &choice.metric)
            .map_err(|e| anyhow!("{}: candidate {id} has no {} yet ({e}), so nothing can be chosen", choice.id, choice.metric))?;
        candidates.push(Candidate { point: Vec::new(), label: id.clone(), stat });
    }
    if candidates.is_empty() {
        bail!("{} has no candidates", choice.id);
    }
    Ok(Chosen {
        choice: choice.id.clone(),
        metric: choice.metric.clone(),
        goal: choice.goal,
        ranking: rank(candidates, choice.goal),
    })
}

/// The choices recorded in a run directory (none if it made none).
pub fn load(run_dir: &std::path::Path) -> Result<Vec<Chosen>> {
    crate::store::read_list(&run_dir.join(CHOICES_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(label: &str, mean: f64) -> Candidate {
        Candidate { point: vec![], label: label.into(), stat: Stat { mean, std: Some(0.01), n: 3, min: mean, max: mean } }
    }

    #[test]
    fn ranking_follows_the_goal_and_keeps_the_given_order_on_ties() {
        let candidates = vec![candidate("a", 0.90), candidate("b", 0.95), candidate("c", 0.95), candidate("d", 0.80)];
        let labels = |r: Vec<Candidate>| r.into_iter().map(|c| c.label).collect::<Vec<_>>();
        assert_eq!(labels(rank(candidates.clone(), Goal::Maximise)), ["b", "c", "a", "d"]);
        assert_eq!(labels(rank(candidates, Goal::Minimise)), ["d", "a", "b", "c"]);
    }
}
