//! The run store: `runs/<run>/jobs/<id>/`, one directory per finished job.
//!
//! A job is written into `jobs/<id>.partial-<host>-<pid>/` and renamed to `jobs/<id>/` only once every
//! file, the completion marker last, is on disk. So a job directory either holds a complete result or
//! does not exist: a crash or `kill -9` mid-job leaves only a partial directory, which is ignored and
//! cleaned up, and the job is simply run again.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nnlab_nn::{EpochRecord, Evaluation};
use serde::{Deserialize, Serialize};

use crate::catalogue::{AxisValue, Transform};
use crate::plan::{EvalJob, Job};

/// Written last into a job directory; its presence means the job finished.
pub const DONE_MARKER: &str = "done.json";

/// What a finished job measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    pub id: String,
    pub experiment: String,
    pub replicate: usize,
    pub seed: u64,
    pub history: Vec<EpochRecord>,
    pub test: Evaluation,
    pub params: usize,
    pub flops_per_sample: usize,
    pub train_samples: usize,
    pub validation_samples: usize,
    pub test_samples: usize,
    /// Training samples per second over all epochs (training time only, validation excluded).
    pub train_samples_per_s: f64,
    pub wall_seconds: f64,
    pub threads: usize,
    /// The activations kept for the analysis stage, if the job asked for them; their values are in
    /// [`ACTIVATIONS_FILE`] beside the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activations: Option<ActivationsInfo>,
    /// The sweep point the job trained; empty outside sweeps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub point: Vec<AxisValue>,
}

/// A JSON list the run may not have written (no follow-ups, no choices): empty if the file is absent.
pub fn read_list<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
}

/// The trained weights, safetensors, beside every finished training job's result.
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// What an evaluation job measured: a trained job's model on a transformed test set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalResult {
    pub id: String,
    pub evaluation: String,
    pub experiment: String,
    pub replicate: usize,
    /// The training job whose weights were evaluated.
    pub trained_job: String,
    pub transform: Transform,
    pub test: Evaluation,
    pub test_samples: usize,
    /// For a reconstruction model: how far the noisy and the reconstructed images are from the clean ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconstruction: Option<Reconstruction>,
    /// For a generation study: the decoded images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated: Option<Generated>,
}

/// Images an autoencoder's decoder made from codes, as bytes 0–255 (see `TransformSet::Generate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generated {
    pub shape: [usize; 3],
    /// The layer whose outputs are the codes, and their size.
    pub code_layer: String,
    pub code_size: usize,
    /// The classes of each interpolated pair, and its images from the first digit to the second.
    pub pair_classes: Vec<[u32; 2]>,
    pub interpolations: Vec<Vec<Vec<u8>>>,
    /// Images decoded from random codes.
    pub samples: Vec<Vec<u8>>,
    /// Whether the random codes were clipped at 0 (a ReLU code layer).
    pub clipped_at_zero: bool,
}

/// A reconstruction model's evaluation on noisy test images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reconstruction {
    /// Mean squared error per pixel (values in [0, 1]) against the clean images: of the noisy input
    /// and of the model's reconstruction of it.
    pub noisy_mse: f64,
    pub denoised_mse: f64,
    /// The paired classifier's accuracy on the noisy and on the reconstructed images.
    pub classifier_job: Option<String>,
    pub noisy_acc: Option<f64>,
    pub denoised_acc: Option<f64>,
    /// The first test images, clean, noisy and reconstructed, for the report's image grids
    /// (replicate 1 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<SampleImages>,
}

/// A few images as bytes 0–255, row-major, each `shape` = height × width × channels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleImages {
    pub shape: [usize; 3],
    pub clean: Vec<Vec<u8>>,
    pub noisy: Vec<Vec<u8>>,
    pub denoised: Vec<Vec<u8>>,
}

/// Raw little-endian `f32` values, row-major `rows × cols`.
pub const ACTIVATIONS_FILE: &str = "activations.f32";

/// A layer's activations on the first `rows` test images, flattened to `cols` values each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationsInfo {
    pub layer: String,
    pub rows: usize,
    pub cols: usize,
    /// The test labels of the rows.
    pub labels: Vec<u8>,
}

/// Activations read back from a job directory.
pub struct Activations {
    pub info: ActivationsInfo,
    pub values: Vec<f32>,
}

#[derive(Debug, Clone)]
pub struct RunStore {
    root: PathBuf,
}

impl RunStore {
    pub fn open(root: &Path) -> Result<Self> {
        fs::create_dir_all(root.join("jobs")).with_context(|| format!("cannot create run directory {}", root.display()))?;
        Ok(RunStore { root: root.to_path_buf() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn tables_dir(&self) -> PathBuf {
        self.root.join("tables")
    }

    fn job_dir(&self, id: &str) -> PathBuf {
        self.root.join("jobs").join(id)
    }

    pub fn is_complete(&self, id: &str) -> bool {
        self.job_dir(id).join(DONE_MARKER).is_file()
    }

    /// Stores a finished training job atomically (see the module comment); `write_weights` writes
    /// the model's weights to the path it is given, inside the partial directory.
    pub fn save(
        &self,
        job: &Job,
        result: &JobResult,
        activations: Option<&[f32]>,
        write_weights: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<()> {
        self.publish(&job.id, |partial| {
            write_json(&partial.join("job.json"), job)?;
            write_json(&partial.join("result.json"), result)?;
            fs::write(partial.join("history.csv"), history_csv(&result.history))?;
            if let Some(values) = activations {
                let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                fs::write(partial.join(ACTIVATIONS_FILE), bytes)?;
            }
            write_weights(&partial.join(WEIGHTS_FILE))
        })
    }

    /// Stores a finished evaluation job atomically.
    pub fn save_evaluation(&self, job: &EvalJob, result: &EvalResult) -> Result<()> {
        self.publish(&job.id, |partial| {
            write_json(&partial.join("job.json"), job)?;
            write_json(&partial.join("result.json"), result)
        })
    }

    /// Writes a job's files into a partial directory, the completion marker last, and renames it
    /// into place.
    fn publish(&self, id: &str, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
        let final_dir = self.job_dir(id);
        let partial = self.root.join("jobs").join(format!("{id}.partial-{}", partial_suffix()));
        if partial.exists() {
            fs::remove_dir_all(&partial)?;
        }
        fs::create_dir_all(&partial)?;
        write(&partial)?;
        write_json(&partial.join(DONE_MARKER), &serde_json::json!({ "id": id }))?;
        sync_dir(&partial);
        if final_dir.exists() {
            // Another worker finished the same job first; its result is equivalent.
            fs::remove_dir_all(&partial)?;
            return Ok(());
        }
        fs::rename(&partial, &final_dir).with_context(|| format!("cannot move {} into place", partial.display()))?;
        Ok(())
    }

    /// The path of a finished training job's weights.
    pub fn weights_path(&self, job: &Job) -> Result<PathBuf> {
        let path = self.job_dir(&job.id).join(WEIGHTS_FILE);
        if !self.is_complete(&job.id) || !path.is_file() {
            bail!(
                "job {} ({} replicate {}) has no stored weights in {} (a job of an older version? remove its directory to retrain it)",
                job.id,
                job.spec.experiment,
                job.spec.replicate,
                self.root.display()
            );
        }
        Ok(path)
    }

    pub fn load_evaluation(&self, job: &EvalJob) -> Result<EvalResult> {
        let path = self.job_dir(&job.id).join("result.json");
        if !self.is_complete(&job.id) {
            bail!("evaluation job {} ({}) has not finished in {}", job.id, job.evaluation, self.root.display());
        }
        let text = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not a valid evaluation result", path.display()))
    }

    pub fn load(&self, job: &Job) -> Result<JobResult> {
        let dir = self.job_dir(&job.id);
        if !self.is_complete(&job.id) {
            bail!(
                "job {} ({} replicate {}) has not finished in {}",
                job.id,
                job.spec.experiment,
                job.spec.replicate,
                self.root.display()
            );
        }
        let path = dir.join("result.json");
        let text = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not a valid job result", path.display()))
    }

    /// The activations a finished job kept, checked against the size its result records.
    pub fn load_activations(&self, job: &Job) -> Result<Activations> {
        let result = self.load(job)?;
        let Some(info) = result.activations else {
            bail!("job {} ({} replicate {}) kept no activations", job.id, job.spec.experiment, job.spec.replicate);
        };
        let path = self.job_dir(&job.id).join(ACTIVATIONS_FILE);
        let bytes = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        if bytes.len() != info.rows * info.cols * 4 || info.labels.len() != info.rows {
            bail!(
                "{}: {} bytes and {} labels, but the result records {} × {} values",
                path.display(),
                bytes.len(),
                info.labels.len(),
                info.rows,
                info.cols
            );
        }
        let values = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        Ok(Activations { info, values })
    }

    /// Removes partial directories left by crashed workers on this host. A partial directory of a
    /// process that is still running (another worker sharing the run directory) is left alone.
    pub fn clean_stale_partials(&self) -> Result<usize> {
        let host = hostname();
        let mut removed = 0;
        for entry in fs::read_dir(self.root.join("jobs"))? {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            let Some((_, suffix)) = name.split_once(".partial-") else { continue };
            let Some((owner_host, pid)) = suffix.rsplit_once('-') else { continue };
            let alive = pid.parse::<u32>().is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
            if owner_host == host && !alive {
                fs::remove_dir_all(&path)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Writes a file of the run (manifest, plan) atomically.
    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        write_json(&self.root.join(name), value)
    }
}

fn partial_suffix() -> String {
    format!("{}-{}", hostname(), std::process::id())
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().replace(['-', '/'], "_"))
        .unwrap_or_else(|_| "localhost".into())
}

/// Serialises to a temp file beside `path`, then renames it into place.
pub fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    nnlab_report::write_atomic(path, text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}

fn sync_dir(dir: &Path) {
    // Best effort: make the files durable before the rename publishes them.
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if let Ok(file) = fs::File::open(entry.path()) {
                let _ = file.sync_all();
            }
        }
    }
}

fn history_csv(history: &[EpochRecord]) -> String {
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    let mut out = String::from("epoch,loss,acc,val_loss,val_acc,seconds,train_seconds\n");
    for r in history {
        out += &format!(
            "{},{},{},{},{},{},{}\n",
            r.epoch,
            r.loss,
            opt(r.acc),
            opt(r.val_loss),
            opt(r.val_acc),
            r.seconds,
            r.train_seconds
        );
    }
    out
}
