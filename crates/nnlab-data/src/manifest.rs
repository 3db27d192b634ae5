//! The dataset manifest (`data/manifest.toml`): every file a dataset consists of, where to download
//! it, and how to recognise a good copy of it.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::fs;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use crate::DataError;

/// All dataset files nnlab knows about, as read from one manifest file.
#[derive(Debug, Clone)]
pub struct Manifest {
    path: PathBuf,
    files: Vec<FileEntry>,
}

/// One downloadable file of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawFileEntry")]
pub struct FileEntry {
    /// Dataset the file belongs to; also its folder in the cache and in a mirror.
    pub dataset: String,
    /// File name, as published at the canonical URLs.
    pub name: String,
    /// Canonical download locations, tried in order.
    pub urls: Vec<String>,
    pub verification: Verification,
}

/// How a copy of a file is recognised as the right one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// The file's bytes are fixed: its size and SHA-256 are checked before it is used.
    WholeFile(Digest),
    /// The file is an archive that mirrors repack (other tar headers, other gzip settings), so only
    /// its members, keyed by their path inside the archive, have fixed bytes. The reader that
    /// unpacks the archive checks them; fetching only makes sure the archive exists.
    Members(BTreeMap<String, Digest>),
}

/// Size and SHA-256 of one exact sequence of bytes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Digest {
    pub size: u64,
    pub sha256: Sha256Hex,
}

/// A SHA-256 checksum as 64 lowercase hexadecimal digits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Sha256Hex(String);

impl Manifest {
    /// Reads and validates the manifest at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, DataError> {
        let path = path.as_ref();
        let text =
            fs::read_to_string(path).map_err(|source| DataError::ManifestUnreadable { path: path.to_path_buf(), source })?;
        Self::parse(&text, path)
    }

    /// Parses manifest text; `path` is where it came from and is named in every error.
    pub fn parse(text: &str, path: impl Into<PathBuf>) -> Result<Self, DataError> {
        let path = path.into();
        let document: ManifestDocument = toml::from_str(text).map_err(|err| {
            let detail = match err.span() {
                Some(span) => format!("{}: {}", line_and_column(text, span.start), err.message().trim()),
                None => err.message().trim().to_string(),
            };
            DataError::ManifestInvalid { path: path.clone(), detail }
        })?;

        let mut seen = HashSet::new();
        for entry in &document.file {
            if !seen.insert((entry.dataset.as_str(), entry.name.as_str())) {
                let detail = format!("file {} is listed more than once", entry.key());
                return Err(DataError::ManifestInvalid { path, detail });
            }
        }
        Ok(Self { path, files: document.file })
    }

    /// Where this manifest was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every file entry, in manifest order.
    pub fn files(&self) -> &[FileEntry] {
        &self.files
    }

    /// The entries of one dataset, in manifest order; an error if there are none.
    pub fn dataset(&self, dataset: &str) -> Result<Vec<&FileEntry>, DataError> {
        let entries: Vec<&FileEntry> = self.files.iter().filter(|e| e.dataset == dataset).collect();
        if entries.is_empty() {
            return Err(DataError::ManifestNoDataset { path: self.path.clone(), dataset: dataset.to_string() });
        }
        Ok(entries)
    }

    /// The entry for `dataset`/`name`.
    pub fn file(&self, dataset: &str, name: &str) -> Result<&FileEntry, DataError> {
        self.files.iter().find(|e| e.dataset == dataset && e.name == name).ok_or_else(|| DataError::ManifestNoEntry {
            path: self.path.clone(),
            dataset: dataset.to_string(),
            name: name.to_string(),
        })
    }
}

impl FileEntry {
    /// `dataset/name`, the way the file is named in messages.
    pub fn key(&self) -> String {
        format!("{}/{}", self.dataset, self.name)
    }
}

impl Sha256Hex {
    /// The checksum as lowercase hex.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Sha256Hex {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(text.to_ascii_lowercase()))
        } else {
            Err(format!("`{text}` is not a sha256 (64 hexadecimal digits)"))
        }
    }
}

impl fmt::Display for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WholeFile(digest) => {
                write!(f, "{} bytes with sha256 {}", digest.size, digest.sha256)
            }
            Self::Members(members) => {
                write!(f, "an archive holding {} listed members, checked by its reader", members.len())
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestDocument {
    file: Vec<FileEntry>,
}

/// The `[[file]]` table as written; [`FileEntry`] is what it means once its rules are checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFileEntry {
    dataset: String,
    name: String,
    size: Option<u64>,
    sha256: Option<Sha256Hex>,
    urls: Vec<String>,
    members: Option<BTreeMap<String, Digest>>,
}

impl TryFrom<RawFileEntry> for FileEntry {
    type Error = String;

    fn try_from(raw: RawFileEntry) -> Result<Self, String> {
        let key = format!("{}/{}", raw.dataset, raw.name);
        // Dataset and name become path components under the cache and the mirror.
        for (field, value) in [("dataset", &raw.dataset), ("name", &raw.name)] {
            if !is_single_component(value) {
                return Err(format!("file {key}: field `{field}` must be a plain file name, found `{value}`"));
            }
        }
        if let Some(url) = raw.urls.iter().find(|u| !(u.starts_with("https://") || u.starts_with("http://"))) {
            return Err(format!("file {key}: field `urls` holds `{url}`, expected an http(s) URL"));
        }
        let verification = match (raw.size, raw.sha256, raw.members) {
            (Some(size), Some(sha256), None) => Verification::WholeFile(Digest { size, sha256 }),
            (None, None, Some(members)) => {
                if members.is_empty() {
                    return Err(format!("file {key}: table `members` is empty"));
                }
                if let Some(member) = members.keys().find(|m| !is_relative_path(m)) {
                    return Err(format!("file {key}: `members` key `{member}` must be a relative path inside the archive"));
                }
                Verification::Members(members)
            }
            (_, _, Some(_)) => return Err(format!("file {key}: give either `size` and `sha256` or a `members` table, not both")),
            (None, _, None) => return Err(format!("file {key}: missing field `size` (or a `members` table)")),
            (_, None, None) => return Err(format!("file {key}: missing field `sha256` (or a `members` table)")),
        };
        Ok(Self { dataset: raw.dataset, name: raw.name, urls: raw.urls, verification })
    }
}

fn is_single_component(name: &str) -> bool {
    let mut components = Path::new(name).components();
    matches!((components.next(), components.next()), (Some(Component::Normal(_)), None)) && !name.contains(['/', '\\'])
}

fn is_relative_path(path: &str) -> bool {
    !path.is_empty() && Path::new(path).components().all(|c| matches!(c, Component::Normal(_)))
}

fn line_and_column(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {column}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[file]]
dataset = "mnist"
name = "t10k-labels-idx1-ubyte.gz"
size = 4542
sha256 = "F7AE60F92E00EC6DEBD23A6088C31DBD2371ECA3FFA0DEFAEFB259924204AEC6"
urls = ["https://example.org/t10k-labels-idx1-ubyte.gz", "http://example.net/t10k-labels-idx1-ubyte.gz"]

[[file]]
dataset = "cifar10"
name = "cifar-10-binary.tar.gz"
urls = ["https://example.org/cifar-10-binary.tar.gz"]
[file.members]
"cifar-10-batches-bin/test_batch.bin" = { size = 30730000, sha256 = "8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b" }
"#;

    fn parse_error(text: &str) -> String {
        Manifest::parse(text, "data/manifest.toml").unwrap_err().to_string()
    }

    #[test]
    fn parses_whole_file_and_member_entries() {
        let manifest = Manifest::parse(GOOD, "data/manifest.toml").unwrap();
        assert_eq!(manifest.files().len(), 2);

        let labels = manifest.file("mnist", "t10k-labels-idx1-ubyte.gz").unwrap();
        assert_eq!(labels.urls.len(), 2);
        let Verification::WholeFile(digest) = &labels.verification else {
            panic!("expected a whole-file checksum, got {:?}", labels.verification)
        };
        assert_eq!(digest.size, 4542);
        // Upper-case hex in the manifest is accepted and compared in lower case.
        assert_eq!(digest.sha256.as_str(), "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6");

        let cifar = manifest.dataset("cifar10").unwrap();
        let Verification::Members(members) = &cifar[0].verification else {
            panic!("expected members, got {:?}", cifar[0].verification)
        };
        assert_eq!(members["cifar-10-batches-bin/test_batch.bin"].size, 30730000);
    }

    #[test]
    fn malformed_toml_names_the_file_and_line() {
        let message = parse_error("[[file]]\ndataset = \"mnist\"\nname = \n");
        assert!(message.starts_with("data/manifest.toml: line 3"), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }

    #[test]
    fn missing_field_is_named() {
        let text = GOOD.replace("name = \"t10k-labels-idx1-ubyte.gz\"\n", "");
        let message = parse_error(&text);
        assert!(message.starts_with("data/manifest.toml: line "), "{message}");
        assert!(message.contains("missing field `name`"), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }

    #[test]
    fn missing_checksum_is_named() {
        let text = GOOD.replace("sha256 = \"F7AE", "# sha256 = \"F7AE");
        let message = parse_error(&text);
        assert!(message.contains("file mnist/t10k-labels-idx1-ubyte.gz: missing field `sha256`"), "{message}");
    }

    #[test]
    fn rejects_inconsistent_entries() {
        let both = GOOD.replace(
            "[file.members]",
            "sha256 = \"8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b\"\n[file.members]",
        );
        assert!(parse_error(&both).contains("not both"));

        let bad_hex = GOOD.replace("F7AE60F9", "nothex!!");
        assert!(parse_error(&bad_hex).contains("is not a sha256"));

        let typo = GOOD.replace("size = 4542", "sise = 4542");
        assert!(parse_error(&typo).contains("sise"));

        let escaping = GOOD.replace("name = \"t10k-labels-idx1-ubyte.gz\"", "name = \"../evil\"");
        assert!(parse_error(&escaping).contains("field `name` must be a plain file name"));

        let twice = format!("{GOOD}\n{}", &GOOD[..GOOD.find("[[file]]\ndataset = \"cifar10\"").unwrap()]);
        assert!(parse_error(&twice).contains("listed more than once"));
    }

    #[test]
    fn unknown_entries_are_errors_naming_the_manifest() {
        let manifest = Manifest::parse(GOOD, "data/manifest.toml").unwrap();
        let message = manifest.file("mnist", "nope.gz").unwrap_err().to_string();
        assert_eq!(message, "manifest data/manifest.toml has no entry for mnist/nope.gz");
        assert!(manifest.dataset("imagenet").is_err());
    }

    #[test]
    fn unreadable_manifest_names_the_path() {
        let message = Manifest::load("/nonexistent/manifest.toml").unwrap_err().to_string();
        assert!(message.starts_with("cannot read manifest /nonexistent/manifest.toml: "), "{message}");
    }

    #[test]
    fn committed_manifest_lists_mnist_and_cifar10() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/manifest.toml");
        let manifest = Manifest::load(&path).unwrap();
        let mnist = manifest.dataset("mnist").unwrap();
        assert_eq!(mnist.len(), 4);
        assert!(mnist.iter().all(|e| matches!(e.verification, Verification::WholeFile(_)) && e.urls.len() == 3));
        let cifar = manifest.file("cifar10", "cifar-10-binary.tar.gz").unwrap();
        let Verification::Members(members) = &cifar.verification else { panic!("cifar10 needs members") };
        assert_eq!(members.len(), 6);
    }
}
