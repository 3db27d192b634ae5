//! Datasets for nnlab: the manifest of dataset files, fetching with checksum verification (cache,
//! local mirror, canonical URLs), the MNIST and CIFAR-10 readers, test-set transforms, and the
//! TensorFlow Playground's 2-D data sets.

mod archive;
pub mod cifar;
pub mod error;
pub mod fetch;
pub mod manifest;
pub mod mnist;
pub mod playground;
pub mod transform;

pub use cifar::{Cifar10, ColorImageSet};
pub use error::DataError;
pub use fetch::Fetcher;
pub use manifest::{FileEntry, Manifest};
pub use mnist::{ImageSet, Mnist};
pub use transform::{roll_images, Direction};

/// The dataset mirror the real-data tests read: `NNLAB_DATA_MIRROR`, else the shared datasets folder
/// beside the workspace. A test without either fails rather than pass unchecked.
#[cfg(test)]
pub(crate) fn test_mirror(needed: &str) -> std::path::PathBuf {
    use std::path::{Path, PathBuf};
    let from_env = std::env::var_os(fetch::MIRROR_VAR).filter(|m| !m.is_empty()).map(PathBuf::from);
    let beside_workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets");
    let candidates: Vec<PathBuf> = from_env.into_iter().chain([beside_workspace]).collect();
    match candidates.iter().find(|mirror| mirror.join(needed).exists()) {
        Some(mirror) => mirror.clone(),
        None => panic!(
            "the real-data tests need a dataset mirror holding {needed}: set {}; looked in {}",
            fetch::MIRROR_VAR,
            candidates.iter().map(|c| c.display().to_string()).collect::<Vec<_>>().join(", ")
        ),
    }
}
