//! MNIST: 60000 training and 10000 test images of handwritten digits, 28x28 pixels, labels 0-9.

mod idx;

pub use idx::{read_images, read_labels, ImageSet};

use std::path::Path;

use crate::{DataError, Fetcher, Manifest};

/// The manifest's dataset name for MNIST.
pub const DATASET: &str = "mnist";
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte.gz";
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte.gz";
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte.gz";
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte.gz";
/// Height and width of every MNIST image.
pub const IMAGE_SIDE: usize = 28;

/// The whole of MNIST in memory, pixels as bytes 0-255.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mnist {
    pub train: ImageSet,
    pub train_labels: Vec<u8>,
    pub test: ImageSet,
    pub test_labels: Vec<u8>,
}

impl Mnist {
    /// Locates the four MNIST files listed in `manifest` (verifying each) and reads them.
    pub fn load(fetcher: &Fetcher, manifest: &Manifest) -> Result<Self, DataError> {
        let locate = |name| fetcher.locate(manifest.file(DATASET, name)?);
        // Every file is found before any is decompressed, so a missing one fails fast.
        let paths = [locate(TRAIN_IMAGES)?, locate(TRAIN_LABELS)?, locate(TEST_IMAGES)?, locate(TEST_LABELS)?];
        let [train_images, train_labels, test_images, test_labels] = paths;
        let (train, train_labels) = read_split(&train_images, &train_labels)?;
        let (test, test_labels) = read_split(&test_images, &test_labels)?;
        Ok(Self { train, train_labels, test, test_labels })
    }
}

/// Reads one split and checks that it is MNIST-shaped and that every image has a label.
fn read_split(images_path: &Path, labels_path: &Path) -> Result<(ImageSet, Vec<u8>), DataError> {
    let images = read_images(images_path)?;
    if (images.rows, images.cols) != (IMAGE_SIDE, IMAGE_SIDE) {
        return Err(DataError::ImageShape {
            path: images_path.to_path_buf(),
            rows: images.rows,
            cols: images.cols,
            expected_rows: IMAGE_SIDE,
            expected_cols: IMAGE_SIDE,
        });
    }
    let labels = read_labels(labels_path)?;
    if labels.len() != images.count {
        return Err(DataError::CountMismatch {
            images_path: images_path.to_path_buf(),
            images: images.count,
            labels_path: labels_path.to_path_buf(),
            labels: labels.len(),
        });
    }
    Ok((images, labels))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;

    use sha2::{Digest as _, Sha256};

    use super::idx::test_files::{gzip, idx};
    use super::*;

    fn test_mirror() -> PathBuf {
        crate::test_mirror(DATASET)
    }

    #[test]
    fn loads_real_mnist_from_the_mirror() {
        let cache = tempfile::tempdir().unwrap();
        let fetcher = Fetcher { data_dir: cache.path().to_path_buf(), mirror: Some(test_mirror()), downloads: false };
        let manifest = Manifest::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/manifest.toml")).unwrap();
        let mnist = Mnist::load(&fetcher, &manifest).unwrap();

        assert_eq!((mnist.train.count, mnist.train.rows, mnist.train.cols), (60000, 28, 28));
        assert_eq!((mnist.test.count, mnist.test.rows, mnist.test.cols), (10000, 28, 28));
        assert_eq!(mnist.train.pixels.len(), 60000 * 784);
        assert_eq!(mnist.train_labels.len(), 60000);
        assert_eq!(mnist.test_labels.len(), 10000);
        assert_eq!(mnist.train_labels[..10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
        assert_eq!(mnist.test_labels[..10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);

        let mut class_counts = [0usize; 10];
        for &label in &mnist.train_labels {
            class_counts[usize::from(label)] += 1;
        }
        assert_eq!(class_counts, [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
        // Files from the mirror are read in place, never copied into the cache.
        assert_eq!(fs::read_dir(cache.path()).unwrap().count(), 0);
    }

    /// A toy MNIST (two 28x28 training images, one test image) in a mirror, with its manifest.
    fn toy_mnist(train_labels: &[u8]) -> (tempfile::TempDir, Fetcher, Manifest) {
        let root = tempfile::tempdir().unwrap();
        let files = [
            (TRAIN_IMAGES, idx(2051, &[2, 28, 28], &[255; 2 * 784])),
            (TRAIN_LABELS, idx(2049, &[train_labels.len() as u32], train_labels)),
            (TEST_IMAGES, idx(2051, &[1, 28, 28], &[0; 784])),
            (TEST_LABELS, idx(2049, &[1], &[7])),
        ];
        let mut text = String::new();
        for (name, contents) in files {
            let gz = gzip(&contents);
            let path = root.path().join(DATASET).join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, &gz).unwrap();
            text.push_str(&format!(
                "[[file]]\ndataset = \"mnist\"\nname = \"{name}\"\nsize = {}\nsha256 = \"{}\"\nurls = []\n",
                gz.len(),
                hex::encode(Sha256::digest(&gz)),
            ));
        }
        let fetcher = Fetcher { data_dir: root.path().join("cache"), mirror: Some(root.path().to_path_buf()), downloads: false };
        let manifest = Manifest::parse(&text, root.path().join("manifest.toml")).unwrap();
        (root, fetcher, manifest)
    }

    #[test]
    fn loads_a_consistent_toy_set() {
        let (_root, fetcher, manifest) = toy_mnist(&[3, 8]);
        let mnist = Mnist::load(&fetcher, &manifest).unwrap();
        assert_eq!(mnist.train_labels, vec![3, 8]);
        assert_eq!(mnist.train.image(1), &[255; 784][..]);
        assert_eq!(mnist.test_labels, vec![7]);
    }

    #[test]
    fn image_and_label_counts_must_agree() {
        let (root, fetcher, manifest) = toy_mnist(&[3, 8, 1]);
        let message = Mnist::load(&fetcher, &manifest).unwrap_err().to_string();
        let mnist_dir = root.path().join(DATASET);
        let expected = format!(
            "{} holds 2 images but {} holds 3 labels",
            mnist_dir.join(TRAIN_IMAGES).display(),
            mnist_dir.join(TRAIN_LABELS).display()
        );
        assert_eq!(message, expected);
    }
}
