//! Training throughput of the MNIST CNNs `a1.cnn` and `tp.cnn` on synthetic data, with the time of
//! one step split into its phases, to show where a step goes (run it under `perf record` for the
//! split by kernel).
//!
//! `cargo run -p nnlab-nn --example conv_step_bench [a1.cnn|tp.cnn] [batches per epoch] [timed epochs]`
//!
//! It tunes the allocator as `nnlab` does; `NNLAB_DEFAULT_ALLOCATOR=1` leaves glibc's defaults, to
//! measure what the tuning is worth.

use std::time::Instant;

use candle_core::Device;
use nnlab_nn::{fit, rng_stream, Dataset, Loss, Mode, Model, ModelSpec, Optimizer, OptimizerSpec, Silent, TrainConfig};
use rand::Rng;

const A1_CNN: &str = r#"input = [28, 28, 1]
layers = [
  { type = "conv2d", filters = 32, kernel = [3, 3], activation = "relu" },
  { type = "conv2d", filters = 64, kernel = [3, 3], activation = "relu" },
  { type = "max_pool2d", pool = [2, 2] },
  { type = "flatten" },
  { type = "dense", units = 128, activation = "relu" },
  { type = "dense", units = 10, activation = "softmax" },
]"#;

const TP_CNN: &str = r#"input = [28, 28, 1]
layers = [
  { type = "conv2d", filters = 32, kernel = [5, 5], padding = "same", activation = "sigmoid" },
  { type = "max_pool2d", pool = [2, 2] },
  { type = "conv2d", filters = 64, kernel = [5, 5], padding = "same", activation = "sigmoid" },
  { type = "max_pool2d", pool = [2, 2] },
  { type = "flatten" },
  { type = "dense", units = 100, activation = "sigmoid" },
  { type = "dense", units = 10, activation = "softmax" },
]"#;

/// The model's spec text, batch size and optimiser, as in the catalogue.
fn model(name: &str) -> (&'static str, usize, OptimizerSpec) {
    match name {
        "a1.cnn" => (A1_CNN, 128, OptimizerSpec::Adadelta { lr: 1.0, rho: 0.95, epsilon: 1e-7, decay: 0.0 }),
        "tp.cnn" => (TP_CNN, 300, OptimizerSpec::Sgd { lr: 0.5, decay: 0.0 }),
        other => panic!("unknown model `{other}`: a1.cnn or tp.cnn"),
    }
}

fn main() -> nnlab_nn::Result<()> {
    if std::env::var_os("NNLAB_DEFAULT_ALLOCATOR").is_none() {
        nnlab_nn::allocator::keep_freed_memory();
    }
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "a1.cnn".into());
    let mut counts = args.map(|a| a.parse::<usize>().expect("batches and epochs are counts"));
    let batches = counts.next().unwrap_or(8);
    let epochs = counts.next().unwrap_or(5);
    let (text, batch_size, optimizer) = model(&name);

    let device = Device::Cpu;
    let spec = ModelSpec::from_toml(text, &name)?;
    let n = batch_size * batches;
    let mut rng = rng_stream(0, 7);
    let pixels: Vec<u8> = (0..n * spec.input_len()).map(|_| rng.random()).collect();
    let labels: Vec<u8> = (0..n).map(|_| rng.random_range(0..10)).collect();
    let data = Dataset::from_u8(&pixels, &labels, &spec.input, &device)?;
    let model = Model::build(&spec, &mut rng_stream(0, 0), &device)?;
    let config = TrainConfig {
        epochs: 1,
        batch_size,
        optimizer: optimizer.clone(),
        loss: Loss::CategoricalCrossentropy,
        convention: Default::default(),
    };

    // Whole epochs through `fit`, as `nnlab bench` measures them: one warm-up, then the timed ones.
    let mut train_rng = rng_stream(0, 1);
    fit(&model, &data, None, &config, &mut train_rng, &mut Silent)?;
    let mut runs = Vec::new();
    for _ in 0..epochs {
        let history = fit(&model, &data, None, &config, &mut train_rng, &mut Silent)?;
        runs.push(n as f64 / history[0].train_seconds);
    }
    let rounded: Vec<String> = runs.iter().map(|r| format!("{r:.0}")).collect();
    println!(
        "{name} fit, batch {batch_size}, {n} samples/epoch: median {:.0} samples/s  (runs {})",
        median(&runs),
        rounded.join(", ")
    );

    // The same step, phase by phase, on the first batch.
    let vars = model.vars();
    let mut optim = Optimizer::new(optimizer, vars.len())?;
    let batch = data.slice(0, batch_size)?;
    let (mut forward, mut backward, mut update) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..batches * epochs {
        let started = Instant::now();
        let output = model.forward(&batch.x, Mode::Train(&mut train_rng))?;
        let (loss, _) = config.objective().batch(&output, &batch)?;
        loss.to_scalar::<f32>()?;
        let forwarded = Instant::now();
        let grads = loss.backward()?;
        let backwarded = Instant::now();
        optim.step(&vars, &grads)?;
        let updated = Instant::now();
        forward.push((forwarded - started).as_secs_f64() * 1e3);
        backward.push((backwarded - forwarded).as_secs_f64() * 1e3);
        update.push((updated - backwarded).as_secs_f64() * 1e3);
    }
    println!(
        "per step (median ms): forward + loss {:.1}, backward {:.1}, optimiser {:.1}",
        median(&forward),
        median(&backward),
        median(&update)
    );
    Ok(())
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}
