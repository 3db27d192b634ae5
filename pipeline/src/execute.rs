//! The train/evaluate stage: runs every job of a plan that the run store does not already hold.

use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::Device;
use nnlab_nn::{evaluate, fit, rng_stream, Model, Summary};

use crate::catalogue::{Transform, Validation};
use crate::datasets::{self, DataCache, DatasetUnavailable};
use crate::manifest::JobEntry;
use crate::plan::{ActivationsSpec, EvalJob, Job};
use crate::progress::Progress;
use crate::store::{write_json, ActivationsInfo, EvalResult, JobResult, RunStore};

/// What one invocation did with the plan.
pub struct Outcome {
    pub entries: Vec<JobEntry>,
    pub ran: usize,
    pub reused: usize,
    /// Jobs skipped because their dataset could not be found anywhere.
    pub unavailable: usize,
}

impl Outcome {
    /// Adds a later invocation's outcome to this one.
    pub fn absorb(&mut self, other: Outcome) {
        self.entries.extend(other.entries);
        self.ran += other.ran;
        self.reused += other.reused;
        self.unavailable += other.unavailable;
    }
}

/// Runs the plan's missing jobs in order. A job that fails (bad data, divergence) stops the run with
/// an error naming it; jobs already finished stay stored, so a rerun resumes after the fix.
pub fn run_jobs(jobs: &[Job], store: &RunStore, data: &mut DataCache, device: &Device, threads: usize) -> Result<Outcome> {
    let stale = store.clean_stale_partials()?;
    let progress = Progress::new(jobs.len());
    if stale > 0 {
        progress.println(format!("removed {stale} partial job directories left by an interrupted run"));
    }
    let mut outcome = Outcome { entries: Vec::with_capacity(jobs.len()), ran: 0, reused: 0, unavailable: 0 };
    for (index, job) in jobs.iter().enumerate() {
        let label = format!("{} #{}", job.spec.experiment, job.spec.replicate);
        let status = if store.is_complete(&job.id) {
            outcome.reused += 1;
            "reused".to_string()
        } else {
            progress.job_started(&label);
            progress.println(format!("[{}/{}] {label} (job {}, seed {})", index + 1, jobs.len(), job.id, job.spec.seed));
            match run_one(job, store, data, device, threads, &progress) {
                Ok((result, activations, model)) => {
                    store.save(job, &result, activations.as_deref(), |path| Ok(model.save_weights(path)?))?;
                    let acc = result.test.acc.map_or(String::new(), |a| format!(" - test_acc: {a:.4}"));
                    progress.println(format!(
                        "  test_loss: {:.4}{acc} - {:.0} samples/s",
                        result.test.loss, result.train_samples_per_s
                    ));
                    outcome.ran += 1;
                    "ran".to_string()
                }
                Err(err) if err.downcast_ref::<DatasetUnavailable>().is_some() => {
                    progress.println(format!("  not run: {err}"));
                    outcome.unavailable += 1;
                    format!("not run: {err}")
                }
                Err(err) => return Err(err.context(format!("job {} ({label}) failed; nothing was stored for it", job.id))),
            }
        };
        progress.job_finished();
        outcome.entries.push(JobEntry {
            id: job.id.clone(),
            experiment: job.spec.experiment.clone(),
            replicate: job.spec.replicate,
            seed: job.spec.seed,
            status,
        });
    }
    progress.finish();
    Ok(outcome)
}

/// Trains and evaluates one job; returns its result, the activations it was asked to keep and the
/// trained model.
fn run_one(
    job: &Job,
    store: &RunStore,
    data: &mut DataCache,
    device: &Device,
    threads: usize,
    progress: &Progress,
) -> Result<(JobResult, Option<Vec<f32>>, Model)> {
    let started = Instant::now();
    let spec = &job.spec;
    let loaded = data.get(&spec.dataset)?;
    let (train_all, test) = datasets::sliced(loaded, spec.data)?;
    record_data_facts(store, &spec.dataset, &train_all, &test)?;

    let train_all = train_all.reshaped(&spec.model.input)?;
    let test = test.reshaped(&spec.model.input)?;
    let (train, validation) = match spec.validation {
        Validation::Split(fraction) => {
            let (train, validation) = train_all.split_last(fraction)?;
            (train, validation)
        }
        Validation::Test => (train_all, test.clone()),
    };

    let model = Model::build(&spec.model, &mut rng_stream(spec.seed, 0), device)?;
    let mut observer = progress.trainer();
    let history = fit(&model, &train, Some(&validation), &spec.train, &mut rng_stream(spec.seed, 1), &mut observer)?;
    let test_eval = evaluate(&model, &test, spec.train.objective())?;
    let summary = Summary::of(&spec.model)?;
    let train_seconds: f64 = history.iter().map(|r| r.train_seconds).sum();
    let (activations_info, activations) = match &spec.activations {
        Some(request) => {
            let (info, values) = activations_of(&model, &test, request)?;
            (Some(info), Some(values))
        }
        None => (None, None),
    };
    let result = JobResult {
        id: job.id.clone(),
        experiment: spec.experiment.clone(),
        replicate: spec.replicate,
        seed: spec.seed,
        train_samples_per_s: (train.len() * history.len()) as f64 / train_seconds.max(1e-9),
        history,
        test: test_eval,
        params: summary.total_params,
        flops_per_sample: summary.flops_per_sample,
        train_samples: train.len(),
        validation_samples: validation.len(),
        test_samples: test.len(),
        wall_seconds: started.elapsed().as_secs_f64(),
        threads,
        activations: activations_info,
        point: spec.point.clone(),
    };
    Ok((result, activations, model))
}

/// Runs the evaluation jobs the run store does not hold yet. Each loads its trained job's weights,
/// so the trained jobs must have finished; one whose dataset is unavailable is skipped like its
/// training job was.
pub fn run_evaluations(jobs: &[EvalJob], store: &RunStore, data: &mut DataCache, device: &Device) -> Result<Outcome> {
    let progress = Progress::new(jobs.len());
    let mut outcome = Outcome { entries: Vec::new(), ran: 0, reused: 0, unavailable: 0 };
    for job in jobs {
        if store.is_complete(&job.id) {
            outcome.reused += 1;
        } else if !store.is_complete(&job.trained.id) || job.classifier.as_ref().is_some_and(|c| !store.is_complete(&c.id)) {
            outcome.unavailable += 1;
        } else {
            progress
                .job_started(&format!("{} on {} #{}", job.evaluation, job.trained.spec.experiment, job.trained.spec.replicate));
            let result = evaluate_one(job, store, data, device)
                .with_context(|| format!("evaluation job {} ({}) failed; nothing was stored for it", job.id, job.evaluation))?;
            store.save_evaluation(job, &result)?;
            outcome.ran += 1;
        }
        progress.job_finished();
    }
    progress.finish();
    Ok(outcome)
}

fn evaluate_one(job: &EvalJob, store: &RunStore, data: &mut DataCache, device: &Device) -> Result<EvalResult> {
    let spec = &job.trained.spec;
    let (_, clean) = datasets::sliced(data.get(&spec.dataset)?, spec.data)?;
    let test = transformed(&clean, job.transform)?;
    let model = load_model(&job.trained, store, device)?;
    let objective = spec.train.objective();
    let (evaluation, reconstruction) = if objective.loss.has_accuracy() {
        (evaluate(&model, &test.reshaped(&spec.model.input)?, objective)?, None)
    } else {
        let (evaluation, reconstruction) = evaluate_reconstruction(job, &model, &clean, &test, store, device)?;
        (evaluation, Some(reconstruction))
    };
    let generated = match job.transform {
        Transform::Generate { pairs, steps, samples, seed } => {
            Some(generate(&model, &clean, GenerateRequest { pairs, steps, samples, seed })?)
        }
        _ => None,
    };
    Ok(EvalResult {
        id: job.id.clone(),
        evaluation: job.evaluation.clone(),
        experiment: spec.experiment.clone(),
        replicate: spec.replicate,
        trained_job: job.trained.id.clone(),
        transform: job.transform,
        test: evaluation,
        test_samples: test.len(),
        reconstruction,
        generated,
    })
}

struct GenerateRequest {
    pairs: usize,
    steps: usize,
    samples: usize,
    seed: u64,
}

/// The decoder as a generator: codes interpolated between the first test digits of classes 2k and
/// 2k + 1, and codes drawn from a Gaussian fitted, dimension by dimension, to every test image's code
/// (clipped at 0 where the code layer is a ReLU, whose outputs never go below), each decoded.
fn generate(model: &Model, test: &nnlab_nn::Dataset, request: GenerateRequest) -> Result<crate::store::Generated> {
    let spec = model.spec();
    let planned = spec.plan()?;
    let last = planned.len() - 1;
    // The code layer: the narrowest dense layer before the output.
    let code = (0..last)
        .filter(|&i| planned[i].kind == "Dense")
        .min_by_key(|&i| planned[i].output_shape.iter().product::<usize>())
        .context("the model has no dense layer before its output to take codes from")?;
    let code_is_relu = matches!(spec.layers[code], nnlab_nn::LayerSpec::Dense { activation: nnlab_nn::Activation::Relu, .. });
    let input = test.reshaped(&spec.input)?;
    let codes = model.layer_output(&input.x, code)?; // (n, code size)
    let (n, size) = codes.dims2()?;
    let rows = codes.to_vec2::<f32>()?;
    let labels = test.labels_vec()?;
    let image_shape: [usize; 3] = match test.x.dims()[1..] {
        [h, w, c] => [h, w, c],
        ref other => anyhow::bail!("generated images need test images shaped (height, width, channels), not {other:?}"),
    };
    let to_images = |codes: Vec<f32>, count: usize| -> Result<Vec<Vec<u8>>> {
        let codes = candle_core::Tensor::from_vec(codes, (count, size), input.x.device())?;
        let decoded = model.decode_from(&codes, code)?.to_vec2::<f32>()?;
        Ok(decoded.iter().map(|image| image.iter().map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8).collect()).collect())
    };

    let mut interpolations = Vec::new();
    let mut pair_classes = Vec::new();
    for k in 0..request.pairs {
        let (a, b) = (2 * k as u32, 2 * k as u32 + 1);
        let first =
            |class: u32| labels.iter().position(|&l| l == class).with_context(|| format!("no test digit of class {class}"));
        let (from, to) = (&rows[first(a)?], &rows[first(b)?]);
        let mut line = Vec::with_capacity(request.steps * size);
        for step in 0..request.steps {
            let t = step as f32 / (request.steps - 1) as f32;
            line.extend(from.iter().zip(to).map(|(x, y)| (1.0 - t) * x + t * y));
        }
        interpolations.push(to_images(line, request.steps)?);
        pair_classes.push([a, b]);
    }

    let mean: Vec<f32> = (0..size).map(|d| rows.iter().map(|r| r[d]).sum::<f32>() / n as f32).collect();
    let std: Vec<f32> =
        (0..size).map(|d| (rows.iter().map(|r| (r[d] - mean[d]).powi(2)).sum::<f32>() / (n.max(2) - 1) as f32).sqrt()).collect();
    let mut rng = rng_stream(request.seed, 1);
    let mut drawn = Vec::with_capacity(request.samples * size);
    for _ in 0..request.samples {
        for d in 0..size {
            let value = mean[d] + std[d] * nnlab_nn::model::standard_normal(&mut rng) as f32;
            drawn.push(if code_is_relu { value.max(0.0) } else { value });
        }
    }
    Ok(crate::store::Generated {
        shape: image_shape,
        code_layer: planned[code].name.clone(),
        code_size: size,
        pair_classes,
        interpolations,
        samples: to_images(drawn, request.samples)?,
        clipped_at_zero: code_is_relu,
    })
}

/// A trained job's model with its stored weights.
fn load_model(job: &Job, store: &RunStore, device: &Device) -> Result<Model> {
    // The initial weights are overwritten by the stored ones; the seed only has to be some seed.
    let model = Model::build(&job.spec.model, &mut rng_stream(job.spec.seed, 0), device)?;
    model.load_weights(&store.weights_path(job)?)?;
    Ok(model)
}

/// How many test images a reconstruction evaluation keeps for the report's image grids.
const SAMPLE_IMAGES: usize = 4;

/// A reconstruction model on noisy test images: its loss against the clean images, the squared
/// error of the noisy and of the reconstructed images, and the paired classifier's accuracy on both.
fn evaluate_reconstruction(
    job: &EvalJob,
    model: &Model,
    clean: &nnlab_nn::Dataset,
    noisy: &nnlab_nn::Dataset,
    store: &RunStore,
    device: &Device,
) -> Result<(nnlab_nn::Evaluation, crate::store::Reconstruction)> {
    let spec = &job.trained.spec;
    let objective = spec.train.objective();
    let (mut loss_sum, mut reconstructed) = (0.0f64, Vec::with_capacity(noisy.len()));
    const BATCH: usize = 500;
    for start in (0..noisy.len()).step_by(BATCH) {
        let len = BATCH.min(noisy.len() - start);
        let input = noisy.slice(start, len)?.reshaped(&spec.model.input)?;
        let output = model.forward(&input.x.detach(), nnlab_nn::Mode::Eval)?;
        // The loss compares the output with the batch's inputs: here the clean images.
        let (loss, _) = objective.batch(&output, &clean.slice(start, len)?)?;
        loss_sum += loss.to_scalar::<f32>()? as f64 * len as f64;
        reconstructed.push(output.activated()?);
    }
    let denoised = candle_core::Tensor::cat(&reconstructed, 0)?.reshape(clean.x.shape())?;
    let mse = |x: &candle_core::Tensor| -> Result<f64> { Ok((x - &clean.x)?.sqr()?.mean_all()?.to_scalar::<f32>()? as f64) };
    let denoised_set = nnlab_nn::Dataset { x: denoised.clone(), labels: clean.labels.clone() };
    let (noisy_acc, denoised_acc) = match &job.classifier {
        Some(classifier) => {
            let model = load_model(classifier, store, device)?;
            let shape = &classifier.spec.model.input;
            let objective = classifier.spec.train.objective();
            let acc =
                |set: &nnlab_nn::Dataset| -> Result<Option<f64>> { Ok(evaluate(&model, &set.reshaped(shape)?, objective)?.acc) };
            (acc(noisy)?, acc(&denoised_set)?)
        }
        None => (None, None),
    };
    let samples = (spec.replicate == 1).then(|| sample_images(clean, noisy, &denoised_set)).transpose()?;
    let reconstruction = crate::store::Reconstruction {
        noisy_mse: mse(&noisy.x)?,
        denoised_mse: mse(&denoised)?,
        classifier_job: job.classifier.as_ref().map(|c| c.id.clone()),
        noisy_acc,
        denoised_acc,
        samples,
    };
    Ok((nnlab_nn::Evaluation { loss: loss_sum / noisy.len() as f64, acc: None }, reconstruction))
}

/// The first [`SAMPLE_IMAGES`] images of each set, as bytes.
fn sample_images(
    clean: &nnlab_nn::Dataset,
    noisy: &nnlab_nn::Dataset,
    denoised: &nnlab_nn::Dataset,
) -> Result<crate::store::SampleImages> {
    let dims = clean.x.dims().to_vec();
    let [_, height, width, channels] = dims[..] else {
        anyhow::bail!("image grids need images shaped (n, height, width, channels), the test set is {dims:?}");
    };
    let n = SAMPLE_IMAGES.min(clean.len());
    let bytes = |set: &nnlab_nn::Dataset| -> Result<Vec<Vec<u8>>> {
        let values = set.slice(0, n)?.x.flatten_all()?.to_vec1::<f32>()?;
        Ok(values
            .chunks(height * width * channels)
            .map(|image| image.iter().map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8).collect())
            .collect())
    };
    Ok(crate::store::SampleImages {
        shape: [height, width, channels],
        clean: bytes(clean)?,
        noisy: bytes(noisy)?,
        denoised: bytes(denoised)?,
    })
}

/// The test set under a transform; images keep their dataset shape `(n, height, width, channels)`.
fn transformed(test: &nnlab_nn::Dataset, transform: Transform) -> Result<nnlab_nn::Dataset> {
    match transform {
        Transform::Roll { direction, pixels } => {
            let dims = test.x.dims().to_vec();
            let [_, height, width, channels] = dims[..] else {
                anyhow::bail!("rolling needs images shaped (n, height, width, channels), the test set is {dims:?}");
            };
            let values = test.x.flatten_all()?.to_vec1::<f32>()?;
            let rolled = nnlab_data::roll_images(&values, [height, width, channels], direction, pixels);
            let x = candle_core::Tensor::from_vec(rolled, dims, test.x.device())?;
            Ok(nnlab_nn::Dataset { x, labels: test.labels.clone() })
        }
        Transform::Generate { .. } => Ok(test.clone()),
        Transform::SaltAndPepper { level, seed } => {
            // The same draws as the training-time layer, from the run's test-noise seed.
            let codes = nnlab_nn::model::salt_and_pepper_codes(test.x.elem_count(), level, &mut rng_stream(seed, 0));
            let values = test.x.flatten_all()?.to_vec1::<f32>()?;
            let noisy: Vec<f32> = values.iter().zip(&codes).map(|(&v, &code)| if code < 0.0 { v } else { code }).collect();
            let x = candle_core::Tensor::from_vec(noisy, test.x.dims(), test.x.device())?;
            Ok(nnlab_nn::Dataset { x, labels: test.labels.clone() })
        }
    }
}

/// The requested layer's activations on the first test images, batch by batch to bound memory.
fn activations_of(model: &Model, test: &nnlab_nn::Dataset, request: &ActivationsSpec) -> Result<(ActivationsInfo, Vec<f32>)> {
    const BATCH: usize = 1000;
    let rows = request.points.unwrap_or(test.len());
    anyhow::ensure!(rows <= test.len(), "activations of {rows} test images asked, but the test slice has {}", test.len());
    let layers = model.spec().plan()?;
    let index = layers
        .iter()
        .position(|l| l.name == request.layer)
        .with_context(|| format!("the model has no layer named {}", request.layer))?;
    let cols: usize = layers[index].output_shape.iter().product();
    let mut values = Vec::with_capacity(rows * cols);
    for start in (0..rows).step_by(BATCH) {
        let batch = test.slice(start, BATCH.min(rows - start))?;
        let out = model.layer_output(&batch.x, index)?.flatten_from(1)?;
        values.extend(out.flatten_all()?.to_vec1::<f32>()?);
    }
    let labels = test.slice(0, rows)?.labels_vec()?.into_iter().map(|l| l as u8).collect();
    Ok((ActivationsInfo { layer: request.layer.clone(), rows, cols, labels }, values))
}

/// Writes the dataset facts the report shows (shapes, first labels) once per run.
fn record_data_facts(store: &RunStore, dataset: &str, train: &nnlab_nn::Dataset, test: &nnlab_nn::Dataset) -> Result<()> {
    let path = store.root().join("datasets").join(format!("{dataset}.json"));
    if path.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(path.parent().expect("has a parent"))?;
    write_json(&path, &datasets::facts(dataset, train, test)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey_images(n: usize) -> nnlab_nn::Dataset {
        let pixels: Vec<u8> = (0..n * 16).map(|i| (1 + i * 37 % 250) as u8).collect(); // never 0 or 255
        nnlab_nn::Dataset::from_u8(&pixels, &vec![0; n], &[4, 4, 1], &Device::Cpu).unwrap()
    }

    #[test]
    fn test_noise_is_drawn_from_its_seed_and_nests_across_levels() {
        let clean = grey_images(500);
        let values = |t: Transform| transformed(&clean, t).unwrap().x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let original = values(Transform::Roll { direction: nnlab_data::Direction::Up, pixels: 0 });
        let low = values(Transform::SaltAndPepper { level: 0.2, seed: 7 });
        let high = values(Transform::SaltAndPepper { level: 0.6, seed: 7 });
        assert_eq!(low, values(Transform::SaltAndPepper { level: 0.2, seed: 7 }), "same seed, same noise");
        assert_ne!(low, values(Transform::SaltAndPepper { level: 0.2, seed: 8 }));
        assert_eq!(values(Transform::SaltAndPepper { level: 0.0, seed: 7 }), original);
        let hit = |noisy: &[f32]| noisy.iter().zip(&original).filter(|(n, o)| n != o).count() as f64 / original.len() as f64;
        // A pixel already 0 or 1 may be "hit" without changing; these grey values never are.
        assert!((hit(&low) - 0.2).abs() < 0.02 && (hit(&high) - 0.6).abs() < 0.02, "{} {}", hit(&low), hit(&high));
        // Every pixel hit at 0.2 is hit at 0.6 too.
        assert!(low.iter().zip(&high).zip(&original).all(|((l, h), o)| l == o || h != o));
        assert!(high.iter().all(|&v| v == 0.0 || v == 1.0 || original.contains(&v)));
    }
}
