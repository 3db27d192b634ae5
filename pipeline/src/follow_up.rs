//! Follow-up experiments: once a sweep's results are aggregated, the point that is best on the
//! follow-up's metric is chosen, and the choice and its reason (the winner's and the runner-up's
//! mean ± std) are recorded in the run as `follow_ups.json`.

use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};

use crate::catalogue::{point_label, Catalogue, Experiment, Goal};
use crate::choice::rank;
pub use crate::choice::Candidate;
use crate::profile::Profile;
use crate::tables::Tables;

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

/// The choices recorded in a run directory (none if it has no follow-ups).
pub fn load_choices(run_dir: &std::path::Path) -> Result<Vec<Choice>> {
    crate::store::read_list(&run_dir.join(CHOICES_FILE))
}
