//! The fetch stage and the datasets as the trainer sees them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::Device;
use nnlab_data::fetch::Fetcher;
use nnlab_data::manifest::Manifest;
use nnlab_data::mnist::Mnist;
use nnlab_nn::Dataset;
use serde::{Deserialize, Serialize};

use crate::plan::DataSlice;

/// Where the dataset cache and its manifest live.
#[derive(Debug, Clone)]
pub struct DataConfig {
    pub data_dir: PathBuf,
    pub manifest: PathBuf,
}

impl DataConfig {
    pub fn in_source_tree() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        DataConfig { data_dir: root.join("data"), manifest: root.join("data/manifest.toml") }
    }

    fn fetcher_and_manifest(&self) -> Result<(Fetcher, Manifest)> {
        let manifest = Manifest::load(&self.manifest)?;
        Ok((Fetcher::from_env(&self.data_dir), manifest))
    }
}

/// Verifies (and where needed downloads) every file of the named datasets.
pub fn fetch(config: &DataConfig, datasets: &[&str]) -> Result<Vec<PathBuf>> {
    let (fetcher, manifest) = config.fetcher_and_manifest()?;
    let mut paths = Vec::new();
    for dataset in datasets {
        paths.extend(fetcher.fetch_all(&manifest, dataset)?);
        if *dataset == nnlab_data::cifar::DATASET {
            // The archive is only checked member by member by its reader.
            nnlab_data::Cifar10::load(&fetcher, &manifest)?;
        }
    }
    Ok(paths)
}

/// A dataset's train and test sets as tensors, full size (jobs slice them).
pub struct LoadedData {
    pub train: Dataset,
    pub test: Dataset,
}

/// A dataset that could not be found anywhere valid: its jobs are skipped (and reported as not run)
/// while the rest of the run goes on. Corrupt or wrong files are a different, fatal error.
#[derive(Debug, Clone, thiserror::Error)]
#[error("dataset {dataset} unavailable: {reason}")]
pub struct DatasetUnavailable {
    pub dataset: String,
    pub reason: String,
}

/// Loads each dataset once per process, on first use.
pub struct DataCache {
    config: DataConfig,
    device: Device,
    loaded: BTreeMap<String, LoadedData>,
    unavailable: BTreeMap<String, DatasetUnavailable>,
}

impl DataCache {
    pub fn new(config: DataConfig, device: Device) -> Self {
        DataCache { config, device, loaded: BTreeMap::new(), unavailable: BTreeMap::new() }
    }

    /// The dataset, loaded on first use. An error that downcasts to [`DatasetUnavailable`] means no
    /// copy exists anywhere; it is remembered so the lookup is not repeated for every job.
    pub fn get(&mut self, name: &str) -> Result<&LoadedData> {
        if let Some(missing) = self.unavailable.get(name) {
            return Err(missing.clone().into());
        }
        if !self.loaded.contains_key(name) {
            match self.load(name) {
                Ok(data) => {
                    self.loaded.insert(name.to_string(), data);
                }
                Err(err) => {
                    // No copy anywhere, or none whose members verify: either way no valid copy exists.
                    let not_found = err.downcast_ref::<nnlab_data::DataError>().is_some_and(|e| {
                        matches!(e, nnlab_data::DataError::NotFound { .. } | nnlab_data::DataError::Archive { .. })
                    });
                    if !not_found {
                        return Err(err);
                    }
                    let missing = DatasetUnavailable { dataset: name.to_string(), reason: err.to_string() };
                    self.unavailable.insert(name.to_string(), missing.clone());
                    return Err(missing.into());
                }
            }
        }
        Ok(&self.loaded[name])
    }

    fn load(&self, name: &str) -> Result<LoadedData> {
        match name {
            "mnist" => {
                let (fetcher, manifest) = self.config.fetcher_and_manifest()?;
                let mnist = Mnist::load(&fetcher, &manifest)?;
                let shape = [mnist.train.rows, mnist.train.cols, 1];
                Ok(LoadedData {
                    train: Dataset::from_u8(&mnist.train.pixels, &mnist.train_labels, &shape, &self.device)?,
                    test: Dataset::from_u8(&mnist.test.pixels, &mnist.test_labels, &shape, &self.device)?,
                })
            }
            "cifar10" => {
                let (fetcher, manifest) = self.config.fetcher_and_manifest()?;
                let cifar = nnlab_data::Cifar10::load(&fetcher, &manifest)?;
                let shape = [cifar.train.rows, cifar.train.cols, cifar.train.channels];
                Ok(LoadedData {
                    train: Dataset::from_u8(&cifar.train.pixels, &cifar.train_labels, &shape, &self.device)?,
                    test: Dataset::from_u8(&cifar.test.pixels, &cifar.test_labels, &shape, &self.device)?,
                })
            }
            other => bail!("dataset `{other}` is not known to this version of nnlab (known: mnist, cifar10)"),
        }
    }
}

/// Shapes and first labels of the data a job saw, for the report's data-preparation answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataFacts {
    pub dataset: String,
    pub train_samples: usize,
    pub test_samples: usize,
    pub sample_shape: Vec<usize>,
    pub first_train_labels: Vec<u32>,
}

/// The slice of `data` a job trains and tests on.
pub fn sliced(data: &LoadedData, slice: DataSlice) -> Result<(Dataset, Dataset)> {
    let take = |set: &Dataset, limit: Option<usize>, what: &str| -> Result<Dataset> {
        match limit {
            Some(n) if n > set.len() => bail!("the profile asks for {n} {what} samples but the dataset has {}", set.len()),
            Some(n) => Ok(set.slice(0, n)?),
            None => Ok(set.clone()),
        }
    };
    Ok((take(&data.train, slice.train, "training")?, take(&data.test, slice.test, "test")?))
}

pub fn facts(dataset: &str, train: &Dataset, test: &Dataset) -> Result<DataFacts> {
    let labels = train.labels.narrow(0, 0, train.len().min(10))?.to_vec1::<u32>()?;
    Ok(DataFacts {
        dataset: dataset.to_string(),
        train_samples: train.len(),
        test_samples: test.len(),
        sample_shape: train.x.dims()[1..].to_vec(),
        first_train_labels: labels,
    })
}

pub fn load_facts(run_dir: &Path, dataset: &str) -> Result<DataFacts> {
    let path = run_dir.join("datasets").join(format!("{dataset}.json"));
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
}
