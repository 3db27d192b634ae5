//! Two sides measured the same way — two runs (two machines, two builds, two thread counts), two
//! bench outputs, or a run and a peer's results — set side by side with statistics: per experiment
//! and sweep point, each metric's replicate distribution on either side, the change from A to B with
//! a 95% interval, Welch's test, and a verdict in criterion's manner; which same-seed histories are
//! bit-identical and where the first that is not departs; and the two run manifests.

pub mod page;
pub mod side;

use anyhow::{bail, Result};
use serde::Serialize;

use crate::stats::{difference_interval, mean_var, ratio_test, welch};
use side::HISTORY_METRICS;
pub use side::{Record, Side, Source};

/// How large a change must be before it is called one, even when it is statistically clear.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Noise {
    /// Accuracy, in points of percentage.
    pub acc_points: f64,
    /// Loss, relative to A's mean.
    pub loss_relative: f64,
    /// Throughput, relative (a ratio within 1 ± this).
    pub speed_relative: f64,
}

impl Default for Noise {
    fn default() -> Self {
        Noise { acc_points: 0.5, loss_relative: 0.05, speed_relative: 0.05 }
    }
}

/// Significance level of the verdicts.
pub const ALPHA: f64 = 0.05;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The same values, bit for bit, on both sides.
    Identical,
    /// p ≥ 0.05.
    NoChange,
    /// Significant, but the whole interval lies within the noise threshold.
    WithinNoise,
    Improved,
    Regressed,
    /// Fewer than two values on a side: no test is possible.
    TooFewReplicates,
}

impl Verdict {
    pub fn text(self) -> &'static str {
        match self {
            Verdict::Identical => "identical",
            Verdict::NoChange => "no change",
            Verdict::WithinNoise => "within noise",
            Verdict::Improved => "improved",
            Verdict::Regressed => "regressed",
            Verdict::TooFewReplicates => "too few replicates",
        }
    }
}

/// The metrics compared, and how a change of each is expressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    TestAcc,
    TestLoss,
    /// The last epoch's training loss (its mean over the epoch's batches). A smooth curve's end, so
    /// its replicate spread is far smaller than the test metrics': it shows a change in how a model
    /// trains that the test accuracy's epoch-to-epoch jumps hide.
    TrainLoss,
    SamplesPerS,
}

impl Metric {
    pub const ALL: [Metric; 4] = [Metric::TestAcc, Metric::TestLoss, Metric::TrainLoss, Metric::SamplesPerS];

    pub fn name(self) -> &'static str {
        match self {
            Metric::TestAcc => "test_acc",
            Metric::TestLoss => "test_loss",
            Metric::TrainLoss => "train_loss",
            Metric::SamplesPerS => "samples_per_s",
        }
    }

    fn value(self, record: &Record) -> Option<f64> {
        match self {
            Metric::TestAcc => record.test_acc,
            Metric::TestLoss => record.test_loss,
            // An epoch's values are in HISTORY_METRICS' order, the training loss first.
            Metric::TrainLoss => record.history.last().and_then(|epoch| epoch[0]),
            Metric::SamplesPerS => record.samples_per_s,
        }
    }

    fn higher_is_better(self) -> bool {
        !matches!(self, Metric::TestLoss | Metric::TrainLoss)
    }

    /// Throughput changes are ratios B / A; the others differences B − A.
    pub fn is_ratio(self) -> bool {
        self == Metric::SamplesPerS
    }
}

/// Mean, sample standard deviation and count of one side's values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub mean: f64,
    pub std: Option<f64>,
    pub n: usize,
}

impl Summary {
    fn of(values: &[f64]) -> Summary {
        let (mean, var) = mean_var(values);
        Summary { mean, std: (values.len() > 1).then(|| var.sqrt()), n: values.len() }
    }
}

/// One metric of one experiment (and sweep point) on both sides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricRow {
    pub experiment: String,
    pub point: String,
    pub metric: Metric,
    pub a: Summary,
    pub b: Summary,
    /// B − A, or B / A for a ratio metric.
    pub change: f64,
    /// The 95% interval of `change`, where a test is possible.
    pub interval: Option<(f64, f64)>,
    /// Welch's two-sided p-value (for a ratio, on the log scale).
    pub p: Option<f64>,
    pub verdict: Verdict,
}

/// A pair of same-seed models, one per side, and whether they trained bit-identically.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Replay {
    pub experiment: String,
    pub point: String,
    pub replicate: u32,
    pub seed: u64,
    /// Where the two first differ (`None`: every history value and test metric is bit-identical).
    pub first_difference: Option<Difference>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    /// 1-based epoch, or `None` when the histories agree and only a test metric differs (or the
    /// histories differ in length).
    pub epoch: Option<usize>,
    pub metric: String,
    pub a: Option<f64>,
    pub b: Option<f64>,
}

/// An experiment and sweep point.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Key {
    pub experiment: String,
    pub point: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub noise: Noise,
    pub rows: Vec<MetricRow>,
    pub replays: Vec<Replay>,
    pub only_a: Vec<Key>,
    pub only_b: Vec<Key>,
}

impl Comparison {
    /// Compares B against A. Sides measured under different profiles are refused: their numbers
    /// answer different questions.
    pub fn new(a: &Side, b: &Side, noise: Noise) -> Result<Comparison> {
        if let (Some(pa), Some(pb)) = (&a.profile, &b.profile) {
            if pa != pb {
                bail!("cannot compare {} (profile {pa}) with {} (profile {pb}): runs of different profiles", a.label, b.label);
            }
        }
        let (keys_a, keys_b) = (keys(a), keys(b));
        let shared: Vec<&Key> = keys_a.iter().filter(|k| keys_b.contains(k)).collect();
        let mut rows = Vec::new();
        for key in &shared {
            let (ra, rb) = (records_of(a, key), records_of(b, key));
            for metric in Metric::ALL {
                let values = |records: &[&Record]| records.iter().filter_map(|r| metric.value(r)).collect::<Vec<_>>();
                let (va, vb) = (values(&ra), values(&rb));
                if !va.is_empty() && !vb.is_empty() {
                    rows.push(metric_row(key, metric, &va, &vb, &noise));
                }
            }
        }
        let replays = shared.iter().flat_map(|key| replays(&records_of(a, key), &records_of(b, key))).collect();
        if rows.is_empty() {
            bail!("{} and {} share no experiment with a metric both measured", a.label, b.label);
        }
        Ok(Comparison {
            noise,
            rows,
            replays,
            only_a: keys_a.iter().filter(|k| !keys_b.contains(k)).cloned().collect(),
            only_b: keys_b.iter().filter(|k| !keys_a.contains(k)).cloned().collect(),
        })
    }
}

/// The side's experiments and points, in first-seen order.
fn keys(side: &Side) -> Vec<Key> {
    let mut keys: Vec<Key> = Vec::new();
    for record in &side.records {
        let key = Key { experiment: record.experiment.clone(), point: record.point.clone() };
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

fn records_of<'a>(side: &'a Side, key: &Key) -> Vec<&'a Record> {
    side.records.iter().filter(|r| r.experiment == key.experiment && r.point == key.point).collect()
}

fn metric_row(key: &Key, metric: Metric, a: &[f64], b: &[f64], noise: &Noise) -> MetricRow {
    let (sa, sb) = (Summary::of(a), Summary::of(b));
    let change = if metric.is_ratio() { sb.mean / sa.mean } else { sb.mean - sa.mean };
    // A ratio's interval and p come from one test on the log scale, so that they always agree.
    let (interval, p) = if metric.is_ratio() {
        let test = ratio_test(a, b);
        (test.map(|t| (t.low, t.high)), test.map(|t| t.p))
    } else {
        (difference_interval(b, a), welch(b, a).map(|w| w.p))
    };
    let sorted = |xs: &[f64]| {
        let mut xs = xs.to_vec();
        xs.sort_by(f64::total_cmp);
        xs.into_iter().map(f64::to_bits).collect::<Vec<_>>()
    };
    let verdict = if sorted(a) == sorted(b) {
        Verdict::Identical
    } else if a.len() < 2 || b.len() < 2 {
        Verdict::TooFewReplicates
    } else {
        // Both sides constant yet different: the change is certain and exactly known.
        let (p, interval) = match (p, interval) {
            (Some(p), Some(interval)) => (p, interval),
            _ => (0.0, (change, change)),
        };
        let threshold = match metric {
            Metric::TestAcc => (-noise.acc_points / 100.0, noise.acc_points / 100.0),
            Metric::TestLoss | Metric::TrainLoss => (-noise.loss_relative * sa.mean.abs(), noise.loss_relative * sa.mean.abs()),
            Metric::SamplesPerS => (1.0 / (1.0 + noise.speed_relative), 1.0 + noise.speed_relative),
        };
        let no_change = if metric.is_ratio() { 1.0 } else { 0.0 };
        if p >= ALPHA {
            Verdict::NoChange
        } else if interval.0 >= threshold.0 && interval.1 <= threshold.1 {
            Verdict::WithinNoise
        } else if (change > no_change) == metric.higher_is_better() {
            Verdict::Improved
        } else {
            Verdict::Regressed
        }
    };
    MetricRow { experiment: key.experiment.clone(), point: key.point.clone(), metric, a: sa, b: sb, change, interval, p, verdict }
}

/// Pairs the replicates that used the same seed on both sides and checks them bit for bit.
fn replays(a: &[&Record], b: &[&Record]) -> Vec<Replay> {
    let mut out = Vec::new();
    for ra in a {
        let Some(seed) = ra.seed else { continue };
        let Some(rb) = b.iter().find(|rb| rb.replicate == ra.replicate && rb.seed == Some(seed)) else { continue };
        if ra.history.is_empty() || rb.history.is_empty() {
            continue;
        }
        out.push(Replay {
            experiment: ra.experiment.clone(),
            point: ra.point.clone(),
            replicate: ra.replicate,
            seed,
            first_difference: first_difference(ra, rb),
        });
    }
    out
}

fn same(x: Option<f64>, y: Option<f64>) -> bool {
    x.map(f64::to_bits) == y.map(f64::to_bits)
}

fn first_difference(a: &Record, b: &Record) -> Option<Difference> {
    for (epoch, (ha, hb)) in a.history.iter().zip(&b.history).enumerate() {
        for (metric, (x, y)) in HISTORY_METRICS.iter().zip(ha.iter().zip(hb)) {
            if !same(*x, *y) {
                return Some(Difference { epoch: Some(epoch + 1), metric: metric.to_string(), a: *x, b: *y });
            }
        }
    }
    if a.history.len() != b.history.len() {
        let (la, lb) = (a.history.len() as f64, b.history.len() as f64);
        return Some(Difference { epoch: None, metric: "epochs".into(), a: Some(la), b: Some(lb) });
    }
    [Metric::TestAcc, Metric::TestLoss].into_iter().find_map(|metric| {
        let (x, y) = (metric.value(a), metric.value(b));
        (!same(x, y)).then(|| Difference { epoch: None, metric: metric.name().into(), a: x, b: y })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(experiment: &str, replicate: u32, acc: f64, speed: f64) -> Record {
        Record {
            experiment: experiment.into(),
            replicate,
            seed: Some(100 + replicate as u64),
            test_acc: Some(acc),
            test_loss: Some(1.0 - acc),
            samples_per_s: Some(speed),
            history: vec![[Some(0.5), Some(acc - 0.01), Some(0.4), Some(acc)]],
            ..Record::default()
        }
    }

    fn side(label: &str, records: Vec<Record>) -> Side {
        Side { label: label.into(), source: Source::Peer, profile: Some("full".into()), records }
    }

    fn row<'a>(c: &'a Comparison, experiment: &str, metric: Metric) -> &'a MetricRow {
        c.rows.iter().find(|r| r.experiment == experiment && r.metric == metric).unwrap()
    }

    #[test]
    fn verdicts_follow_the_test_the_noise_threshold_and_the_direction() {
        let a = side(
            "A",
            vec![
                record("same", 0, 0.97, 100.0),
                record("same", 1, 0.98, 110.0),
                record("worse", 0, 0.970, 100.0),
                record("worse", 1, 0.971, 101.0),
                record("worse", 2, 0.972, 102.0),
                record("a_only", 0, 0.5, 1.0),
            ],
        );
        let b = side(
            "B",
            vec![
                record("same", 0, 0.97, 100.0),
                record("same", 1, 0.98, 110.0),
                record("worse", 0, 0.950, 200.0),
                record("worse", 1, 0.951, 202.0),
                record("worse", 2, 0.952, 204.0),
            ],
        );
        let c = Comparison::new(&a, &b, Noise::default()).unwrap();
        assert_eq!(row(&c, "same", Metric::TestAcc).verdict, Verdict::Identical);
        let acc = row(&c, "worse", Metric::TestAcc);
        assert_eq!(acc.verdict, Verdict::Regressed, "{acc:?}");
        assert!((acc.change + 0.02).abs() < 1e-12);
        let (low, high) = acc.interval.unwrap();
        assert!(low < -0.02 && high > -0.02);
        // Lower loss is better, so a loss that rose is a regression too.
        assert_eq!(row(&c, "worse", Metric::TestLoss).verdict, Verdict::Regressed);
        let speed = row(&c, "worse", Metric::SamplesPerS);
        assert_eq!(speed.verdict, Verdict::Improved);
        assert!((speed.change - 2.0).abs() < 1e-12);
        assert_eq!(c.only_a, vec![Key { experiment: "a_only".into(), point: String::new() }]);
        assert!(c.only_b.is_empty());
    }

    #[test]
    fn a_significant_change_inside_the_threshold_is_within_noise_and_no_evidence_is_no_change() {
        let acc_a = [0.9700, 0.9701, 0.9702];
        let acc_b = [0.9710, 0.9711, 0.9712];
        let key = Key { experiment: "m".into(), point: String::new() };
        let noise = Noise::default();
        assert_eq!(metric_row(&key, Metric::TestAcc, &acc_a, &acc_b, &noise).verdict, Verdict::WithinNoise);
        let scattered = [0.95, 0.99, 0.97];
        assert_eq!(metric_row(&key, Metric::TestAcc, &acc_a, &scattered, &noise).verdict, Verdict::NoChange);
        assert_eq!(metric_row(&key, Metric::TestAcc, &[0.9], &[0.8, 0.7], &noise).verdict, Verdict::TooFewReplicates);
        // Constant on both sides but different: a certain change.
        assert_eq!(metric_row(&key, Metric::TestAcc, &[0.9, 0.9], &[0.8, 0.8], &noise).verdict, Verdict::Regressed);
    }

    #[test]
    fn the_last_epochs_training_loss_shows_a_shift_the_test_accuracy_hides() {
        // Test accuracy scattered by a point, the final training loss tight: only the loss row
        // sees that B trains worse.
        let with_train_loss = |replicate: u32, acc: f64, loss: f64| {
            let mut r = record("m", replicate, acc, 100.0);
            r.history = vec![[Some(1.5), None, None, None], [Some(loss), None, None, Some(acc)]];
            r
        };
        let a =
            side("A", vec![with_train_loss(0, 0.71, 0.860), with_train_loss(1, 0.70, 0.861), with_train_loss(2, 0.72, 0.859)]);
        let b =
            side("B", vec![with_train_loss(0, 0.72, 0.900), with_train_loss(1, 0.69, 0.902), with_train_loss(2, 0.715, 0.901)]);
        let c = Comparison::new(&a, &b, Noise::default()).unwrap();
        assert_eq!(row(&c, "m", Metric::TestAcc).verdict, Verdict::NoChange);
        let train = row(&c, "m", Metric::TrainLoss);
        assert!((train.a.mean - 0.860).abs() < 1e-12 && (train.b.mean - 0.901).abs() < 1e-12, "{train:?}");
        assert_eq!(train.verdict, Verdict::Regressed, "{train:?}");
    }

    #[test]
    fn same_seed_histories_are_checked_bit_for_bit() {
        let a = side("A", vec![record("m", 0, 0.97, 100.0), record("m", 1, 0.98, 100.0)]);
        let mut changed = record("m", 1, 0.98, 100.0);
        changed.history[0][2] = Some(f64::from_bits(0.4f64.to_bits() + 1));
        let b = side("B", vec![record("m", 0, 0.97, 120.0), changed]);
        let c = Comparison::new(&a, &b, Noise::default()).unwrap();
        assert_eq!(c.replays.len(), 2);
        assert_eq!(c.replays[0].first_difference, None);
        let difference = c.replays[1].first_difference.as_ref().unwrap();
        assert_eq!((difference.epoch, difference.metric.as_str()), (Some(1), "val_loss"));
    }

    #[test]
    fn different_profiles_are_refused_in_one_line() {
        let a = side("runs/x", vec![record("m", 0, 0.9, 1.0)]);
        let mut b = side("runs/y", vec![record("m", 0, 0.9, 1.0)]);
        b.profile = Some("smoke".into());
        let message = Comparison::new(&a, &b, Noise::default()).unwrap_err().to_string();
        assert_eq!(message, "cannot compare runs/x (profile full) with runs/y (profile smoke): runs of different profiles");
    }
}
