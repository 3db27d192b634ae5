//! Follow-up experiments: once a sweep's results are aggregated, the point that is best on the
//! follow-up's metric is chosen, and the choice and its reason (the winner's and the runner-up's
//! mean ± std) are recorded in the run as `follow_ups.json`.

use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};

use crate::catalogue::{point_label, AxisValue, Catalogue, Experiment, Goal};
use crate::profile::Profile;
use crate::tables::{Stat, Tables};

/// The run file that records every follow-up's choice.
pub const CHOICES_FILE: &str = "follow_ups.json";

/// Why a follow-up trains the point it trains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub experiment: String,
    pub of: String,
    pub metric: String,
    pub goal: Goal,
    pub chosen: Candidate,
    pub runner_up: Option<Candidate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub point: Vec<AxisValue>,
    pub label: String,
    pub stat: Stat,
}

/// Chooses the point of `experiment`'s sweep that is best on its metric (the first in sweep order
/// on a tie), from the aggregated tables.
pub fn choose(catalogue: &Catalogue, profile: &Profile, experiment: &Experiment, tables: &Tables) -> Result<Choice> {
    let follow_up = experiment.follow_up.as_ref().ok_or_else(|| anyhow!("{} is not a follow-up", experiment.id))?;
    let of = catalogue.experiment(&follow_up.of).ok_or_else(|| anyhow!("no experiment {}", follow_up.of))?;
    let stats = tables.point_stats(&of.id, &follow_up.metric)?;
    let mut candidates: Vec<Candidate> = Vec::new();
    for point in of.points(profile.max_axis_values) {
        let label = point_label(&point);
        let Some((_, stat)) = stats.iter().find(|(l, _)| *l == label) else {
            bail!("{}: sweep point {label} of {} has not finished, so no point can be chosen yet", experiment.id, of.id);
        };
        candidates.push(Candidate { point, label, stat: *stat });
    }
    let ranked = rank(candidates, follow_up.goal);
    let mut ranked = ranked.into_iter();
    let chosen = ranked.next().ok_or_else(|| anyhow!("{} has no sweep points", of.id))?;
    Ok(Choice {
        experiment: experiment.id.clone(),
        of: of.id.clone(),
        metric: follow_up.metric.clone(),
        goal: follow_up.goal,
        chosen,
        runner_up: ranked.next(),
    })
}

/// Best first under `goal`; a stable sort keeps sweep order among equals.
fn rank(mut candidates: Vec<Candidate>, goal: Goal) -> Vec<Candidate> {
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

/// The choices recorded in a run directory (none if it has no follow-ups).
pub fn load_choices(run_dir: &std::path::Path) -> Result<Vec<Choice>> {
    let path = run_dir.join(CHOICES_FILE);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(&path)?;
    serde_json::from_str(&text).map_err(|e| anyhow!("{} is not valid: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(label: &str, mean: f64) -> Candidate {
        Candidate { point: vec![], label: label.into(), stat: Stat { mean, std: Some(0.01), n: 3, min: mean, max: mean } }
    }

    #[test]
    fn ranking_follows_the_goal_and_keeps_sweep_order_on_ties() {
        let candidates = vec![candidate("a", 0.90), candidate("b", 0.95), candidate("c", 0.95), candidate("d", 0.80)];
        let labels = |r: Vec<Candidate>| r.into_iter().map(|c| c.label).collect::<Vec<_>>();
        assert_eq!(labels(rank(candidates.clone(), Goal::Maximise)), ["b", "c", "a", "d"]);
        assert_eq!(labels(rank(candidates, Goal::Minimise)), ["d", "a", "b", "c"]);
    }
}
