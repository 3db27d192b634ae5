//! One Playground training: the data set its settings describe, the network, epochs over the
//! training points in their fixed order, and the losses the Playground would show.

use nnlab_data::playground::{split, Point2, Shape, Split, EXTENT, SAMPLES};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::network::{Activation, Network, Regularization};
use crate::PlaygroundError;

/// An input feature the Playground offers, computed from the point's coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    X1,
    X2,
    X1Squared,
    X2Squared,
    X1X2,
    SinX1,
    SinX2,
}

impl Feature {
    /// In the Playground's order (the order of the network's inputs).
    pub const ALL: [Feature; 7] =
        [Feature::X1, Feature::X2, Feature::X1Squared, Feature::X2Squared, Feature::X1X2, Feature::SinX1, Feature::SinX2];

    pub fn value(self, x: f64, y: f64) -> f64 {
        match self {
            Feature::X1 => x,
            Feature::X2 => y,
            Feature::X1Squared => x * x,
            Feature::X2Squared => y * y,
            Feature::X1X2 => x * y,
            Feature::SinX1 => x.sin(),
            Feature::SinX2 => y.sin(),
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Feature::X1 => "x1",
            Feature::X2 => "x2",
            Feature::X1Squared => "x1²",
            Feature::X2Squared => "x2²",
            Feature::X1X2 => "x1·x2",
            Feature::SinX1 => "sin x1",
            Feature::SinX2 => "sin x2",
        }
    }
}

/// Everything the Playground's controls set for a classification problem. Field names are the
/// catalogue's; the defaults are the Playground's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub dataset: Shape,
    /// The noise slider, 0–50 (used as noise / 100).
    pub noise: f64,
    /// Percentage of the points used for training (the rest is the test set).
    pub train_percent: f64,
    pub features: Vec<Feature>,
    pub hidden: Vec<usize>,
    pub activation: Activation,
    pub regularization: Regularization,
    pub regularization_rate: f64,
    pub learning_rate: f64,
    pub batch_size: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            dataset: Shape::Circle,
            noise: 0.0,
            train_percent: 50.0,
            features: vec![Feature::X1, Feature::X2],
            hidden: vec![4, 2],
            activation: Activation::Tanh,
            regularization: Regularization::None,
            regularization_rate: 0.0,
            learning_rate: 0.03,
            batch_size: 10,
        }
    }
}

impl Settings {
    /// Refuses settings the Playground cannot express, naming the field.
    pub fn check(&self) -> Result<(), PlaygroundError> {
        let bad = |field: &str, why: String| Err(PlaygroundError::Settings { field: field.to_string(), why });
        if !(0.0..=50.0).contains(&self.noise) {
            return bad("noise", format!("{} is outside the slider's 0–50", self.noise));
        }
        if !(self.train_percent > 0.0 && self.train_percent < 100.0) {
            return bad("train_percent", format!("{} leaves no training or no test points", self.train_percent));
        }
        if self.features.is_empty() {
            return bad("features", "no input feature is switched on".into());
        }
        let mut sorted = self.features.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != self.features.len() {
            return bad("features", "a feature is listed twice".into());
        }
        if self.hidden.contains(&0) {
            return bad("hidden", format!("{:?} has a layer without neurons", self.hidden));
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1".into());
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad("learning_rate", format!("{} is not a positive rate", self.learning_rate));
        }
        if !(self.regularization_rate >= 0.0 && self.regularization_rate.is_finite()) {
            return bad("regularization_rate", format!("{} is not a rate ≥ 0", self.regularization_rate));
        }
        Ok(())
    }

    /// The network's inputs in the Playground's order, whatever order the settings list them in.
    pub fn inputs(&self) -> Vec<Feature> {
        Feature::ALL.into_iter().filter(|f| self.features.contains(f)).collect()
    }

    /// Weights plus biases of the network these settings build.
    pub fn parameters(&self) -> usize {
        let mut previous = self.features.len();
        let mut count = 0;
        for &nodes in self.hidden.iter().chain(std::iter::once(&1)) {
            count += nodes * previous + nodes;
            previous = nodes;
        }
        count
    }
}

/// What one training measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trained {
    /// Epochs at which the losses were recorded (0 = before training), ascending, the last = all epochs run.
    pub epochs: Vec<usize>,
    pub train_loss: Vec<f64>,
    pub test_loss: Vec<f64>,
    /// The first epoch after which the test loss was below the bar, if a bar was given and reached.
    pub reached_at: Option<usize>,
    /// Links killed by L1.
    pub dead_links: usize,
}

impl Trained {
    pub fn final_train_loss(&self) -> f64 {
        *self.train_loss.last().expect("epoch 0 is always recorded")
    }

    pub fn final_test_loss(&self) -> f64 {
        *self.test_loss.last().expect("epoch 0 is always recorded")
    }
}

/// How long to train and what to record.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub epochs: usize,
    /// Epochs whose losses are recorded besides 0 and the last.
    pub record: Vec<usize>,
    /// A test loss to reach; with `stop_at_bar`, training stops at the first epoch below it.
    pub bar: Option<f64>,
    pub stop_at_bar: bool,
}

/// The data set and initial network of one replicate. Data and weights come from separate streams of
/// the seed, so two settings that differ only in the network see the same points, and two that
/// differ only in the data start from the same weights (paired comparisons).
pub struct Replicate {
    pub data: Split,
    pub network: Network,
}

impl Replicate {
    pub fn new(settings: &Settings, seed: u64) -> Result<Replicate, PlaygroundError> {
        settings.check()?;
        let mut data_rng = ChaCha8Rng::seed_from_u64(seed);
        data_rng.set_stream(1);
        let mut weight_rng = ChaCha8Rng::seed_from_u64(seed);
        weight_rng.set_stream(2);
        let data = split(settings.dataset, SAMPLES, settings.noise / 100.0, settings.train_percent, &mut || data_rng.random());
        let network = Network::new(settings.features.len(), &settings.hidden, settings.activation, &mut || weight_rng.random());
        Ok(Replicate { data, network })
    }
}

/// Trains one replicate of `settings` (seeded) on `schedule`; returns the measurements and the
/// trained network.
pub fn train(settings: &Settings, seed: u64, schedule: &Schedule) -> Result<(Trained, Network, Split), PlaygroundError> {
    let Replicate { data, mut network } = Replicate::new(settings, seed)?;
    let inputs = settings.inputs();
    let encode = |points: &[Point2]| -> Vec<(Vec<f64>, f64)> {
        points.iter().map(|p| (inputs.iter().map(|f| f.value(p.x, p.y)).collect(), p.label)).collect()
    };
    let train_set = encode(&data.train);
    let test_set = encode(&data.test);
    let mut trained =
        Trained { epochs: Vec::new(), train_loss: Vec::new(), test_loss: Vec::new(), reached_at: None, dead_links: 0 };
    let diverged = |epoch: usize| PlaygroundError::Diverged { epoch, settings: format!("{settings:?}") };
    // Keeps the losses of `epoch`; its test loss is already known (checked for the bar).
    let record = |epoch: usize, test_loss: f64, network: &mut Network, trained: &mut Trained| -> Result<(), PlaygroundError> {
        let train_loss = loss(network, &train_set);
        if !train_loss.is_finite() || !test_loss.is_finite() {
            return Err(diverged(epoch));
        }
        trained.epochs.push(epoch);
        trained.train_loss.push(train_loss);
        trained.test_loss.push(test_loss);
        Ok(())
    };
    let initial = loss(&mut network, &test_set);
    record(0, initial, &mut network, &mut trained)?;
    for epoch in 1..=schedule.epochs {
        for (i, (input, label)) in train_set.iter().enumerate() {
            network.forward(input);
            network.backward(input, *label);
            if (i + 1) % settings.batch_size == 0 {
                network.update(settings.learning_rate, settings.regularization, settings.regularization_rate);
            }
        }
        let last = epoch == schedule.epochs;
        // The bar is checked every epoch; the losses are kept only at the recorded epochs.
        let test_loss = if schedule.bar.is_some() || last || schedule.record.contains(&epoch) {
            let loss = loss(&mut network, &test_set);
            if !loss.is_finite() {
                return Err(diverged(epoch));
            }
            Some(loss)
        } else {
            None
        };
        let reached = matches!((schedule.bar, test_loss), (Some(bar), Some(loss)) if loss < bar);
        if reached && trained.reached_at.is_none() {
            trained.reached_at = Some(epoch);
        }
        let stop = reached && schedule.stop_at_bar;
        if let (true, Some(test_loss)) = (last || stop || schedule.record.contains(&epoch), test_loss) {
            record(epoch, test_loss, &mut network, &mut trained)?;
        }
        if stop {
            break;
        }
    }
    trained.dead_links = network.dead_links();
    Ok((trained, network, data))
}

/// The Playground's loss: the mean of 0.5 (output − label)² over the set.
fn loss(network: &mut Network, set: &[(Vec<f64>, f64)]) -> f64 {
    let total: f64 = set
        .iter()
        .map(|(input, label)| {
            let o = network.forward(input);
            0.5 * (o - label) * (o - label)
        })
        .sum();
    total / set.len() as f64
}

/// The network's output over [−extent, extent]² on a `resolution`² grid, row 0 at the top
/// (y = +extent), column 0 at the left, sampled at cell centres.
pub fn output_grid(network: &mut Network, features: &[Feature], resolution: usize) -> Vec<f64> {
    let inputs: Vec<Feature> = Feature::ALL.into_iter().filter(|f| features.contains(f)).collect();
    let step = 2.0 * EXTENT / resolution as f64;
    let mut values = Vec::with_capacity(resolution * resolution);
    for row in 0..resolution {
        let y = EXTENT - (row as f64 + 0.5) * step;
        for col in 0..resolution {
            let x = -EXTENT + (col as f64 + 0.5) * step;
            let input: Vec<f64> = inputs.iter().map(|f| f.value(x, y)).collect();
            values.push(network.forward(&input));
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(epochs: usize) -> Schedule {
        Schedule { epochs, record: vec![1, 10], bar: None, stop_at_bar: false }
    }

    #[test]
    fn same_seed_same_history_and_another_seed_another() {
        let settings = Settings { dataset: Shape::Xor, ..Settings::default() };
        let (a, _, _) = train(&settings, 7, &schedule(20)).unwrap();
        let (b, _, _) = train(&settings, 7, &schedule(20)).unwrap();
        let (c, _, _) = train(&settings, 8, &schedule(20)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.test_loss, c.test_loss);
        assert_eq!(a.epochs, vec![0, 1, 10, 20]);
    }

    #[test]
    fn the_default_network_learns_the_circle() {
        // The Playground's default network on its default circle: test loss well below where it starts.
        let (trained, _, _) = train(&Settings::default(), 1, &schedule(200)).unwrap();
        assert!(trained.test_loss[0] > 0.3, "{:?}", trained.test_loss);
        assert!(trained.final_test_loss() < 0.05, "{:?}", trained.test_loss);
    }

    #[test]
    fn training_stops_at_the_bar_when_asked() {
        let schedule = Schedule { epochs: 500, record: vec![], bar: Some(0.2), stop_at_bar: true };
        let settings = Settings { dataset: Shape::Gaussians, ..Settings::default() };
        let (trained, _, _) = train(&settings, 3, &schedule).unwrap();
        let at = trained.reached_at.expect("two gaussians are separable within 500 epochs");
        assert_eq!(*trained.epochs.last().unwrap(), at);
        assert!(trained.final_test_loss() < 0.2);
    }

    #[test]
    fn settings_are_checked_and_counted() {
        let settings = Settings { features: Feature::ALL.to_vec(), hidden: vec![8, 8], ..Settings::default() };
        assert_eq!(settings.parameters(), 7 * 8 + 8 + 8 * 8 + 8 + 8 + 1);
        assert_eq!(Settings { hidden: vec![], ..Settings::default() }.parameters(), 3);
        let err = Settings { features: vec![], ..Settings::default() }.check().unwrap_err().to_string();
        assert!(err.contains("features"), "{err}");
        let err = Settings { noise: 60.0, ..Settings::default() }.check().unwrap_err().to_string();
        assert!(err.contains("noise"), "{err}");
    }

    #[test]
    fn divergence_is_an_error_naming_the_epoch() {
        // A step of 1e300 overflows the weights to ±∞ and their products to NaN within an epoch or two.
        let settings = Settings { activation: Activation::Linear, learning_rate: 1e300, ..Settings::default() };
        match train(&settings, 1, &schedule(50)) {
            Err(e) => assert!(e.to_string().contains("epoch"), "{e}"),
            Ok((trained, _, _)) => panic!("trained to test loss {}", trained.final_test_loss()),
        }
    }

    #[test]
    fn the_grid_reads_top_row_first() {
        // A network of x2 alone with a positive weight: the top row (y > 0) is above the bottom row.
        let settings = Settings { features: vec![Feature::X2], hidden: vec![], ..Settings::default() };
        let Replicate { mut network, .. } = Replicate::new(&settings, 1).unwrap();
        let grid = output_grid(&mut network, &settings.features, 4);
        let (top, bottom) = (grid[0], grid[12]);
        assert!(top != bottom);
        // Every row is constant: the output does not depend on x1.
        for row in grid.chunks(4) {
            assert!(row.iter().all(|v| (v - row[0]).abs() < 1e-12));
        }
    }
}
