//! The search for the smallest network that reaches a test-loss bar: candidates (input-feature subset
//! × hidden layers × neurons) in order of parameter count, each trained on several seeds, until the
//! smallest size at which enough seeds reach the bar is found, with a few runners-up.
//!
//! Candidates of one size are trained together (in parallel) and the search stops only after a
//! whole size, so its outcome does not depend on the number of threads.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::train::{train, Feature, Schedule, Settings};
use crate::PlaygroundError;

/// What the search may vary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchSpace {
    /// The features subsets are drawn from (every non-empty subset is a candidate).
    pub features: Vec<Feature>,
    pub max_hidden_layers: usize,
    pub max_neurons: usize,
    /// Candidates above this many parameters are not tried.
    pub max_parameters: usize,
}

/// One network shape to try.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub features: Vec<Feature>,
    pub hidden: Vec<usize>,
    pub parameters: usize,
}

impl Candidate {
    pub fn label(&self) -> String {
        let features: Vec<&str> = self.features.iter().map(|f| f.title()).collect();
        let hidden = if self.hidden.is_empty() { "no hidden layer".to_string() } else { format!("hidden {:?}", self.hidden) };
        format!("{{{}}}, {hidden}", features.join(", "))
    }
}

impl SearchSpace {
    /// Every candidate within the space, smallest first (ties: fewer features, fewer layers, then
    /// the Playground's feature order and narrower first layers).
    pub fn candidates(&self) -> Vec<Candidate> {
        let pool: Vec<Feature> = Feature::ALL.into_iter().filter(|f| self.features.contains(f)).collect();
        let mut shapes: Vec<Vec<usize>> = vec![Vec::new()];
        let mut layer = vec![Vec::new()];
        for _ in 0..self.max_hidden_layers {
            layer = layer
                .iter()
                .flat_map(|shape: &Vec<usize>| {
                    (1..=self.max_neurons).map(move |n| {
                        let mut s = shape.clone();
                        s.push(n);
                        s
                    })
                })
                .collect();
            shapes.extend(layer.iter().cloned());
        }
        let mut candidates = Vec::new();
        for mask in 1u32..(1 << pool.len()) {
            let features: Vec<Feature> = (0..pool.len()).filter(|i| mask & (1 << i) != 0).map(|i| pool[i]).collect();
            for hidden in &shapes {
                let settings = Settings { features: features.clone(), hidden: hidden.clone(), ..Settings::default() };
                let parameters = settings.parameters();
                if parameters <= self.max_parameters {
                    candidates.push(Candidate { features: features.clone(), hidden: hidden.clone(), parameters });
                }
            }
        }
        let order = |c: &Candidate| {
            let positions: Vec<usize> =
                c.features.iter().map(|f| Feature::ALL.iter().position(|g| g == f).unwrap_or(0)).collect();
            (c.parameters, c.features.len(), c.hidden.len(), positions, c.hidden.clone())
        };
        candidates.sort_by_key(order);
        candidates
    }
}

/// How candidates are judged.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRule {
    /// Settings every candidate shares (data set, noise, ratio, rates); features and hidden are the candidate's.
    pub base: Settings,
    pub epochs: usize,
    pub bar: f64,
    /// One training per seed.
    pub seeds: Vec<u64>,
    /// Seeds that must reach the bar for a candidate to succeed.
    pub needed: usize,
    /// Successful candidates to find beyond the smallest.
    pub runners_up: usize,
}

/// One candidate's trainings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tried {
    pub candidate: Candidate,
    /// Per seed trained, in seed order: the epoch it reached the bar, or none.
    pub reached_at: Vec<Option<usize>>,
    /// Per seed trained: the test loss it ended with (at the bar, or after all epochs).
    pub final_test_loss: Vec<f64>,
    pub succeeded: bool,
}

impl Tried {
    pub fn successes(&self) -> usize {
        self.reached_at.iter().filter(|r| r.is_some()).count()
    }
}

/// What the search found and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchOutcome {
    /// Every candidate tried, in search order.
    pub tried: Vec<Tried>,
    /// Candidates the space held (tried or not).
    pub space_size: usize,
    /// Networks trained (a candidate stops training seeds once it can no longer succeed).
    pub networks_trained: usize,
}

impl SearchOutcome {
    /// The successful candidates, smallest first: the winner, then the runners-up.
    pub fn successes(&self) -> Vec<&Tried> {
        self.tried.iter().filter(|t| t.succeeded).collect()
    }
}

/// Runs the search; `progress` is told how many candidates have been tried so far.
pub fn search(
    space: &SearchSpace,
    rule: &SearchRule,
    progress: impl Fn(usize, usize) + Sync,
) -> Result<SearchOutcome, PlaygroundError> {
    let candidates = space.candidates();
    let mut tried: Vec<Tried> = Vec::new();
    let mut start = 0;
    while start < candidates.len() {
        let size = candidates[start].parameters;
        let end = start + candidates[start..].iter().take_while(|c| c.parameters == size).count();
        let group: Vec<Tried> = candidates[start..end].par_iter().map(|c| try_candidate(c, rule)).collect::<Result<_, _>>()?;
        tried.extend(group);
        start = end;
        progress(start, candidates.len());
        if tried.iter().filter(|t| t.succeeded).count() > rule.runners_up {
            break;
        }
    }
    let networks_trained = tried.iter().map(|t| t.reached_at.len()).sum();
    Ok(SearchOutcome { tried, space_size: candidates.len(), networks_trained })
}

/// Trains `candidate` seed by seed, stopping once it can no longer reach `needed` successes.
fn try_candidate(candidate: &Candidate, rule: &SearchRule) -> Result<Tried, PlaygroundError> {
    let settings = Settings { features: candidate.features.clone(), hidden: candidate.hidden.clone(), ..rule.base.clone() };
    let schedule = Schedule { epochs: rule.epochs, record: Vec::new(), bar: Some(rule.bar), stop_at_bar: true };
    let mut reached_at = Vec::new();
    let mut final_test_loss = Vec::new();
    for (index, &seed) in rule.seeds.iter().enumerate() {
        let failures = index - reached_at.iter().filter(|r: &&Option<usize>| r.is_some()).count();
        if rule.seeds.len() - failures < rule.needed {
            break;
        }
        let (trained, _, _) = match train(&settings, seed, &schedule) {
            Ok(t) => t,
            // A diverging seed is a failed seed, not a failed search.
            Err(PlaygroundError::Diverged { .. }) => {
                reached_at.push(None);
                final_test_loss.push(f64::INFINITY);
                continue;
            }
            Err(e) => return Err(e),
        };
        reached_at.push(trained.reached_at);
        final_test_loss.push(trained.final_test_loss());
    }
    let succeeded = reached_at.iter().filter(|r| r.is_some()).count() >= rule.needed;
    Ok(Tried { candidate: candidate.clone(), reached_at, final_test_loss, succeeded })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nnlab_data::playground::Shape;

    #[test]
    fn candidates_come_smallest_first_and_respect_the_space() {
        let space =
            SearchSpace { features: vec![Feature::X1, Feature::X2], max_hidden_layers: 1, max_neurons: 2, max_parameters: 100 };
        let candidates = space.candidates();
        // 3 subsets × (no hidden, [1], [2]).
        assert_eq!(candidates.len(), 9);
        assert_eq!(candidates[0], Candidate { features: vec![Feature::X1], hidden: vec![], parameters: 2 });
        assert!(candidates.windows(2).all(|w| w[0].parameters <= w[1].parameters));
        // {x1, x2} → [2] → out: 2·2 + 2 + 2 + 1.
        assert_eq!(candidates.last().unwrap().parameters, 9);
        let capped = SearchSpace { max_parameters: 4, ..space }.candidates();
        assert!(capped.iter().all(|c| c.parameters <= 4) && capped.len() == 5, "{capped:?}");
    }

    #[test]
    fn the_search_finds_the_smallest_network_for_two_gaussians() {
        // Two gaussians are linearly separable: one feature (x1 or x2) and no hidden layer may do;
        // the search must stop at the first size where enough seeds get there.
        let space = SearchSpace {
            features: vec![Feature::X1, Feature::X2, Feature::X1Squared],
            max_hidden_layers: 1,
            max_neurons: 2,
            max_parameters: 20,
        };
        let rule = SearchRule {
            base: Settings { dataset: Shape::Gaussians, ..Settings::default() },
            epochs: 100,
            bar: 0.1,
            seeds: vec![1, 2, 3],
            needed: 2,
            runners_up: 1,
        };
        let outcome = search(&space, &rule, |_, _| {}).unwrap();
        let winners = outcome.successes();
        assert!(winners.len() >= 2, "{outcome:?}");
        // Nothing smaller than the winner succeeded, and everything smaller was tried.
        let winner = winners[0];
        assert!(outcome.tried.iter().take_while(|t| !t.succeeded).all(|t| t.candidate.parameters <= winner.candidate.parameters));
        assert!(winner.successes() >= 2);
        assert!(outcome.networks_trained <= outcome.tried.len() * 3);
        // Deterministic.
        assert_eq!(outcome, search(&space, &rule, |_, _| {}).unwrap());
    }
}
