//! CIFAR-10: 50000 training and 10000 test colour images, 32x32 pixels, in ten classes, read from
//! the archive of its binary version (`cifar-10-binary.tar.gz`) without extracting it.

mod records;

pub use records::{ColorImageSet, CHANNELS, CLASS_COUNT, IMAGE_LEN, IMAGE_SIDE, RECORD_LEN};

use std::collections::BTreeMap;
use std::path::Path;

use crate::archive;
use crate::error::ArchiveProblem;
use crate::manifest::{Digest, Verification};
use crate::{DataError, Fetcher, Manifest};

/// The manifest's dataset name for CIFAR-10.
pub const DATASET: &str = "cifar10";
/// The manifest's file name of the archive.
pub const ARCHIVE: &str = "cifar-10-binary.tar.gz";
/// The training batches inside the archive, in the order their images are numbered.
pub const TRAIN_BATCHES: [&str; 5] = [
    "cifar-10-batches-bin/data_batch_1.bin",
    "cifar-10-batches-bin/data_batch_2.bin",
    "cifar-10-batches-bin/data_batch_3.bin",
    "cifar-10-batches-bin/data_batch_4.bin",
    "cifar-10-batches-bin/data_batch_5.bin",
];
/// The test batch inside the archive.
pub const TEST_BATCH: &str = "cifar-10-batches-bin/test_batch.bin";
/// The name of each class, indexed by label, as `batches.meta.txt` lists them.
pub const CLASS_NAMES: [&str; CLASS_COUNT] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// The whole of CIFAR-10 in memory: images HWC (32, 32, 3) as bytes 0-255, labels 0-9.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cifar10 {
    pub train: ColorImageSet,
    pub train_labels: Vec<u8>,
    pub test: ColorImageSet,
    pub test_labels: Vec<u8>,
}

/// Where one batch file's records go.
struct Slot {
    test: bool,
    first: usize,
    count: usize,
}

impl Cifar10 {
    /// Locates the archive listed in `manifest` and reads it, verifying each member the manifest
    /// lists against its size and SHA-256.
    pub fn load(fetcher: &Fetcher, manifest: &Manifest) -> Result<Self, DataError> {
        let entry = manifest.file(DATASET, ARCHIVE)?;
        let invalid = |detail: String| DataError::ManifestInvalid {
            path: manifest.path().to_path_buf(),
            detail: format!("file {}: {detail}", entry.key()),
        };
        // Checked before locating, so a manifest that cannot verify the batches never starts a download.
        let Verification::Members(members) = &entry.verification else {
            return Err(invalid(
                "needs a `members` table listing the batch files, because mirrors repack the archive".to_string(),
            ));
        };
        if let Some(member) = unlisted_batch(members) {
            return Err(invalid(format!("table `members` lacks `{member}`, which the CIFAR-10 reader needs")));
        }
        let path = fetcher.locate(entry)?;
        Self::from_archive(&path, members)
    }

    /// Reads the archive at `path`, checking every member in `members` (path inside the archive →
    /// size and SHA-256) as it streams; the listing must cover the six batch files. The number of
    /// records per batch follows from its listed size, so small test archives read the same way.
    pub fn from_archive(path: impl AsRef<Path>, members: &BTreeMap<String, Digest>) -> Result<Self, DataError> {
        let path = path.as_ref();
        if let Some(member) = unlisted_batch(members) {
            return Err(DataError::Archive {
                path: path.to_path_buf(),
                problem: ArchiveProblem::UnlistedMember { member: member.to_string() },
            });
        }
        let content_error = |member: &str, detail: String| DataError::ArchiveContent {
            path: path.to_path_buf(),
            member: member.to_string(),
            detail,
        };

        // The archive must match the listed sizes, so every batch's place in its split is known
        // before reading, and its records are decoded straight into it: no batch is copied twice.
        let mut slots = BTreeMap::new();
        let mut train_count = 0;
        for member in TRAIN_BATCHES {
            let count = record_count(&members[member]).map_err(|d| content_error(member, d))?;
            slots.insert(member, Slot { test: false, first: train_count, count });
            train_count += count;
        }
        let test_count = record_count(&members[TEST_BATCH]).map_err(|d| content_error(TEST_BATCH, d))?;
        slots.insert(TEST_BATCH, Slot { test: true, first: 0, count: test_count });

        let mut train = Split::new(train_count);
        let mut test = Split::new(test_count);
        archive::read_members(path, members, |member, bytes| {
            // Other listed members (say `batches.meta.txt`) are verified, not decoded.
            let Some(slot) = slots.get(member) else {
                return Ok(());
            };
            let split = if slot.test { &mut test } else { &mut train };
            let range = slot.first..slot.first + slot.count;
            records::decode(
                &bytes,
                &mut split.labels[range.clone()],
                &mut split.images.pixels[range.start * IMAGE_LEN..range.end * IMAGE_LEN],
            )
            .map_err(|detail| content_error(member, detail))
        })?;

        Ok(Self { train: train.images, train_labels: train.labels, test: test.images, test_labels: test.labels })
    }
}

/// The images and labels of one split, filled in batch by batch.
struct Split {
    images: ColorImageSet,
    labels: Vec<u8>,
}

impl Split {
    fn new(count: usize) -> Self {
        Self {
            images: ColorImageSet {
                count,
                rows: IMAGE_SIDE,
                cols: IMAGE_SIDE,
                channels: CHANNELS,
                pixels: vec![0; count * IMAGE_LEN],
            },
            labels: vec![0; count],
        }
    }
}

/// The first batch file the listing gives no size and checksum for.
fn unlisted_batch(members: &BTreeMap<String, Digest>) -> Option<&'static str> {
    TRAIN_BATCHES.into_iter().chain([TEST_BATCH]).find(|member| !members.contains_key(*member))
}

/// How many records a batch of the listed size holds.
fn record_count(listed: &Digest) -> Result<usize, String> {
    let not_whole = || {
        format!(
            "listed as {} bytes, not a whole number of {RECORD_LEN}-byte records (a label byte and {IMAGE_LEN} pixel bytes)",
            listed.size
        )
    };
    let size = usize::try_from(listed.size).map_err(|_| not_whole())?;
    if size % RECORD_LEN != 0 {
        return Err(not_whole());
    }
    Ok(size / RECORD_LEN)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;
    use std::time::Instant;

    use super::records::test_files::{batch, value};
    use super::*;
    use crate::archive::test_files::{listing, tar_gz};

    /// Labels of a toy CIFAR-10: two images per training batch, three test images.
    const TOY_TRAIN_LABELS: [[u8; 2]; 5] = [[6, 9], [9, 4], [1, 1], [2, 7], [8, 3]];
    const TOY_TEST_LABELS: [u8; 3] = [3, 8, 0];

    /// The members of a toy archive, in the published archive's order (sorted by name). Image `i`
    /// of the training set holds `value(i, ..)`, test image `i` holds `value(100 + i, ..)`.
    fn toy_members() -> Vec<(String, Vec<u8>)> {
        let mut members = vec![("cifar-10-batches-bin/batches.meta.txt".to_string(), CLASS_NAMES.join("\n").into_bytes())];
        for (index, (member, labels)) in TRAIN_BATCHES.iter().zip(TOY_TRAIN_LABELS).enumerate() {
            members.push((member.to_string(), batch(&labels, 2 * index)));
        }
        members.push((TEST_BATCH.to_string(), batch(&TOY_TEST_LABELS, 100)));
        members
    }

    fn borrowed(members: &[(String, Vec<u8>)]) -> Vec<(&str, &[u8])> {
        members.iter().map(|(name, bytes)| (name.as_str(), bytes.as_slice())).collect()
    }

    /// Writes an archive of `in_archive` and reads it against the listing of `listed`.
    fn read_toy(
        in_archive: &[(String, Vec<u8>)],
        listed: &[(String, Vec<u8>)],
    ) -> (tempfile::TempDir, PathBuf, Result<Cifar10, DataError>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(ARCHIVE);
        fs::write(&path, tar_gz(&borrowed(in_archive))).unwrap();
        let result = Cifar10::from_archive(&path, &listing(&borrowed(listed)));
        (dir, path, result)
    }

    fn toy_error(in_archive: &[(String, Vec<u8>)], listed: &[(String, Vec<u8>)]) -> (PathBuf, String) {
        let (_dir, path, result) = read_toy(in_archive, listed);
        let message = result.unwrap_err().to_string();
        assert!(!message.contains('\n'), "{message}");
        (path, message)
    }

    fn member_mut<'a>(members: &'a mut [(String, Vec<u8>)], name: &str) -> &'a mut Vec<u8> {
        &mut members.iter_mut().find(|(n, _)| n == name).unwrap().1
    }

    fn test_mirror() -> PathBuf {
        crate::test_mirror(&format!("{DATASET}/{ARCHIVE}"))
    }

    #[test]
    fn loads_real_cifar10_from_the_mirror() {
        let cache = tempfile::tempdir().unwrap();
        let fetcher = Fetcher { data_dir: cache.path().to_path_buf(), mirror: Some(test_mirror()), downloads: false };
        let manifest = Manifest::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/manifest.toml")).unwrap();
        // The committed listing holds each batch to its published size: 10000 whole records.
        let entry = manifest.file(DATASET, ARCHIVE).unwrap();
        let Verification::Members(members) = &entry.verification else { panic!("the cifar10 entry needs members") };
        for batch in TRAIN_BATCHES.into_iter().chain([TEST_BATCH]) {
            assert_eq!(members[batch].size, 10000 * RECORD_LEN as u64, "{batch}");
        }

        let started = Instant::now();
        let cifar = Cifar10::load(&fetcher, &manifest).unwrap();
        eprintln!("CIFAR-10 read and verified in {:.2?}", started.elapsed());

        let shape = |set: &ColorImageSet| (set.count, set.rows, set.cols, set.channels);
        assert_eq!(shape(&cifar.train), (50000, 32, 32, 3));
        assert_eq!(shape(&cifar.test), (10000, 32, 32, 3));
        assert_eq!(cifar.train.pixels.len(), 50000 * 3072);
        assert_eq!((cifar.train_labels.len(), cifar.test_labels.len()), (50000, 10000));
        assert_eq!(CLASS_NAMES[usize::from(cifar.train_labels[0])], "frog");
        assert_eq!(CLASS_NAMES[usize::from(cifar.test_labels[0])], "cat");

        let mut class_counts = [0usize; CLASS_COUNT];
        for &label in &cifar.test_labels {
            class_counts[usize::from(label)] += 1;
        }
        assert_eq!(class_counts, [1000; CLASS_COUNT]);
        // The mirror's archive is read in place, never copied into the cache.
        assert_eq!(fs::read_dir(cache.path()).unwrap().count(), 0);
    }

    #[test]
    fn toy_archive_round_trips_through_the_manifest() {
        let root = tempfile::tempdir().unwrap();
        let members = toy_members();
        let path = root.path().join(DATASET).join(ARCHIVE);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, tar_gz(&borrowed(&members))).unwrap();
        let mut text = format!("[[file]]\ndataset = \"{DATASET}\"\nname = \"{ARCHIVE}\"\nurls = []\n[file.members]\n");
        for (name, digest) in listing(&borrowed(&members)) {
            text.push_str(&format!("\"{name}\" = {{ size = {}, sha256 = \"{}\" }}\n", digest.size, digest.sha256));
        }
        let manifest = Manifest::parse(&text, root.path().join("manifest.toml")).unwrap();
        let fetcher = Fetcher { data_dir: root.path().join("cache"), mirror: Some(root.path().to_path_buf()), downloads: false };
        let cifar = Cifar10::load(&fetcher, &manifest).unwrap();

        assert_eq!(cifar.train_labels, TOY_TRAIN_LABELS.concat());
        assert_eq!(cifar.test_labels, TOY_TEST_LABELS);
        assert_eq!((cifar.train.count, cifar.test.count), (10, 3));
        assert_eq!(cifar.train.pixels.len(), 10 * IMAGE_LEN);
        // Training image 7 is the second of data_batch_4. At row 3, column 30 it holds the bytes
        // the file keeps at position 3 * 32 + 30 of its red, green and blue planes.
        let position = 3 * IMAGE_SIDE + 30;
        let rgb = [value(7, 0, position), value(7, 1, position), value(7, 2, position)];
        assert_eq!(cifar.train.pixel(7, 3, 30), rgb);
        assert_eq!(cifar.train.image(7)[(3 * 32 + 30) * 3..][..3], rgb);
        assert_eq!(cifar.test.pixel(2, 0, 1), [value(102, 0, 1), value(102, 1, 1), value(102, 2, 1)]);
    }

    #[test]
    fn batches_are_placed_by_name_whatever_the_archive_order() {
        let mut shuffled = toy_members();
        shuffled.reverse();
        let (_dir, _path, result) = read_toy(&shuffled, &toy_members());
        let cifar = result.unwrap();
        assert_eq!(cifar.train_labels, TOY_TRAIN_LABELS.concat());
        assert_eq!(cifar.train.pixel(0, 0, 0), [value(0, 0, 0), value(0, 1, 0), value(0, 2, 0)]);
    }

    #[test]
    fn missing_member_is_an_error() {
        let members = toy_members();
        let without_test: Vec<_> = members.iter().filter(|(n, _)| n != TEST_BATCH).cloned().collect();
        let (path, message) = toy_error(&without_test, &members);
        let expected = &listing(&borrowed(&members))[TEST_BATCH];
        assert_eq!(
            message,
            format!(
                "{}: member {TEST_BATCH} is missing, expected {} bytes with sha256 {}",
                path.display(),
                expected.size,
                expected.sha256
            )
        );
    }

    #[test]
    fn checksum_mismatch_is_an_error() {
        let listed = toy_members();
        let mut in_archive = listed.clone();
        member_mut(&mut in_archive, TRAIN_BATCHES[2])[100] ^= 1;
        let (path, message) = toy_error(&in_archive, &listed);
        let expected = &listing(&borrowed(&listed))[TRAIN_BATCHES[2]];
        assert!(message.starts_with(&format!("{}: member {} has sha256 ", path.display(), TRAIN_BATCHES[2])), "{message}");
        assert!(message.ends_with(&format!(", expected {} bytes with sha256 {}", expected.size, expected.sha256)), "{message}");
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let members = toy_members();
        let gz = tar_gz(&borrowed(&members));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(ARCHIVE);
        fs::write(&path, &gz[..gz.len() * 2 / 3]).unwrap();
        let message = Cifar10::from_archive(&path, &listing(&borrowed(&members))).unwrap_err().to_string();
        assert!(
            message.starts_with(&format!("{}: gzip or tar data is corrupt or cut off in member ", path.display())),
            "{message}"
        );
        assert!(message.ends_with("expected a complete .tar.gz archive"), "{message}");
    }

    #[test]
    fn label_out_of_range_is_an_error() {
        let mut members = toy_members();
        // The label byte of the second record of the test batch.
        member_mut(&mut members, TEST_BATCH)[RECORD_LEN] = 10;
        let (path, message) = toy_error(&members, &members);
        assert_eq!(message, format!("{}: member {TEST_BATCH}: record 1 has label 10, expected 0-9", path.display()));
    }

    #[test]
    fn batch_of_partial_records_is_an_error() {
        let mut members = toy_members();
        member_mut(&mut members, TRAIN_BATCHES[0]).extend_from_slice(&[0; 5]);
        let (path, message) = toy_error(&members, &members);
        assert_eq!(
            message,
            format!(
                "{}: member {}: listed as {} bytes, not a whole number of 3073-byte records (a label byte and 3072 pixel bytes)",
                path.display(),
                TRAIN_BATCHES[0],
                2 * RECORD_LEN + 5
            )
        );
    }

    #[test]
    fn a_listing_without_a_batch_cannot_verify_it() {
        let members = toy_members();
        let listed: Vec<_> = members.iter().filter(|(n, _)| n != TRAIN_BATCHES[4]).cloned().collect();
        let (path, message) = toy_error(&members, &listed);
        assert_eq!(
            message,
            format!(
                "{}: member {} is needed but no size and sha256 are listed for it, so it cannot be verified",
                path.display(),
                TRAIN_BATCHES[4]
            )
        );

        let text = format!(
            "[[file]]\ndataset = \"{DATASET}\"\nname = \"{ARCHIVE}\"\nurls = []\n[file.members]\n\"{TEST_BATCH}\" = {{ size = 3073, sha256 = \"{}\" }}\n",
            "0".repeat(64)
        );
        let manifest = Manifest::parse(&text, "manifest.toml").unwrap();
        let fetcher = Fetcher { data_dir: "/nonexistent".into(), mirror: None, downloads: true };
        let message = Cifar10::load(&fetcher, &manifest).unwrap_err().to_string();
        assert_eq!(
            message,
            format!(
                "manifest.toml: file {DATASET}/{ARCHIVE}: table `members` lacks `{}`, which the CIFAR-10 reader needs",
                TRAIN_BATCHES[0]
            )
        );
    }
}
