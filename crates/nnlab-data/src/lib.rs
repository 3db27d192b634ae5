//! Datasets for nnlab: the manifest of dataset files, fetching with checksum verification (cache,
//! local mirror, canonical URLs), and the MNIST and CIFAR-10 readers.

mod archive;
pub mod cifar;
pub mod error;
pub mod fetch;
pub mod manifest;
pub mod mnist;

pub use cifar::{Cifar10, ColorImageSet};
pub use error::DataError;
pub use fetch::Fetcher;
pub use manifest::{FileEntry, Manifest};
pub use mnist::{ImageSet, Mnist};
