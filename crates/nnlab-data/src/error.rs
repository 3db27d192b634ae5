//! The one error type of this crate. Every message is a single complete line that names the file
//! (or manifest field) at fault and what was expected, so a caller can print it as is.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::manifest::Digest;

/// Everything that can go wrong while reading the manifest, locating a file or parsing a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The manifest file could not be read at all.
    #[error("cannot read manifest {}: {source}", path.display())]
    ManifestUnreadable { path: PathBuf, source: io::Error },

    /// The manifest is not valid TOML or breaks one of its rules; `detail` says where and which field.
    #[error("{}: {detail}", path.display())]
    ManifestInvalid { path: PathBuf, detail: String },

    /// A file the caller needs is not listed in the manifest.
    #[error("manifest {} has no entry for {dataset}/{name}", path.display())]
    ManifestNoEntry { path: PathBuf, dataset: String, name: String },

    /// A dataset the caller asked for has no files in the manifest.
    #[error("manifest {} lists no files for dataset `{dataset}`", path.display())]
    ManifestNoDataset { path: PathBuf, dataset: String },

    /// No verified copy of a dataset file could be found or downloaded.
    #[error("{}", not_found_line(file, attempts, expected))]
    NotFound { file: String, attempts: Vec<Attempt>, expected: String },

    /// A dataset file could not be opened or read (other than its gzip stream being bad).
    #[error("cannot read {}: {source}", path.display())]
    Unreadable { path: PathBuf, source: io::Error },

    /// The gzip stream of a dataset file is corrupt or cut off.
    #[error("{}: gzip data is corrupt or cut off ({source})", path.display())]
    Gzip { path: PathBuf, source: io::Error },

    /// An IDX header does not describe the array that was expected.
    #[error("{}: {detail}", path.display())]
    IdxHeader { path: PathBuf, detail: String },

    /// An IDX payload holds fewer bytes than its header declares.
    #[error("{}: payload is cut off: {found} bytes, expected {expected} ({shape})", path.display())]
    IdxTruncated { path: PathBuf, found: u64, expected: u64, shape: String },

    /// An IDX payload holds more bytes than its header declares.
    #[error("{}: payload is longer than the {expected} bytes its header declares ({shape})", path.display())]
    IdxOverlong { path: PathBuf, expected: u64, shape: String },

    /// A label file holds a value that is not a digit class.
    #[error("{}: label {index} is {value}, expected 0-9", path.display())]
    LabelOutOfRange { path: PathBuf, index: usize, value: u8 },

    /// An image file and its label file disagree on how many examples there are.
    #[error("{} holds {images} images but {} holds {labels} labels", images_path.display(), labels_path.display())]
    CountMismatch { images_path: PathBuf, images: usize, labels_path: PathBuf, labels: usize },

    /// Images have a shape other than the one the dataset defines.
    #[error("{}: images are {rows}x{cols}, expected {expected_rows}x{expected_cols}", path.display())]
    ImageShape { path: PathBuf, rows: usize, cols: usize, expected_rows: usize, expected_cols: usize },

    /// A gzip-compressed tar archive is corrupt, or does not hold the members its manifest entry lists.
    #[error("{}: {problem}", path.display())]
    Archive { path: PathBuf, problem: ArchiveProblem },

    /// A verified archive member does not hold what its dataset's format requires.
    #[error("{}: member {member}: {detail}", path.display())]
    ArchiveContent { path: PathBuf, member: String, detail: String },
}

/// One place a dataset file was looked for, and why it was not taken.
#[derive(Debug)]
pub struct Attempt {
    /// A path or URL, or a description such as "mirror" when the place was not configured.
    pub place: String,
    pub failure: LookupFailure,
}

/// Why a candidate for a dataset file was rejected.
#[derive(Debug)]
pub enum LookupFailure {
    Missing,
    NotAFile,
    Unreadable(io::Error),
    WrongSize {
        found: u64,
        expected: u64,
    },
    LargerThanExpected {
        expected: u64,
    },
    Sha256Mismatch {
        found: String,
    },
    Download(String),
    /// An archive checked by its members (a download) failed that check.
    Archive(ArchiveProblem),
    /// The place was not consulted; the text says why and how to enable it.
    Skipped(&'static str),
}

impl fmt::Display for LookupFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => write!(f, "missing"),
            Self::NotAFile => write!(f, "not a regular file"),
            Self::Unreadable(err) => write!(f, "unreadable: {err}"),
            Self::WrongSize { found, expected } => {
                write!(f, "wrong size {found} bytes, expected {expected}")
            }
            Self::LargerThanExpected { expected } => {
                write!(f, "wrong size, more than the expected {expected} bytes")
            }
            Self::Sha256Mismatch { found } => write!(f, "sha256 mismatch (found {found})"),
            Self::Download(message) => write!(f, "download error: {message}"),
            Self::Archive(problem) => write!(f, "{problem}"),
            Self::Skipped(reason) => write!(f, "{reason}"),
        }
    }
}

/// What is wrong with a gzip-compressed tar archive whose members the manifest lists.
#[derive(Debug)]
pub enum ArchiveProblem {
    /// The gzip or tar stream cannot be read to its end; `at` says where, e.g. "in member x.bin".
    Corrupt { at: String, source: io::Error },
    /// A listed member is not a file in the archive.
    MissingMember { member: String, expected: Digest },
    /// A listed member holds another number of bytes than listed.
    MemberSize { member: String, found: u64, expected: Digest },
    /// A listed member has the listed size but other bytes.
    MemberSha256 { member: String, found: String, expected: Digest },
    /// A listed member is in the archive more than once, so which copy counts would be ambiguous.
    DuplicateMember { member: String },
    /// A reader needs a member that the caller's list gives no size and SHA-256 for.
    UnlistedMember { member: String },
}

impl fmt::Display for ArchiveProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let listed = |expected: &Digest| format!("expected {} bytes with sha256 {}", expected.size, expected.sha256);
        match self {
            Self::Corrupt { at, source } => {
                write!(f, "gzip or tar data is corrupt or cut off {at} ({source}), expected a complete .tar.gz archive")
            }
            Self::MissingMember { member, expected } => {
                write!(f, "member {member} is missing, {}", listed(expected))
            }
            Self::MemberSize { member, found, expected } => write!(f, "member {member} is {found} bytes, {}", listed(expected)),
            Self::MemberSha256 { member, found, expected } => {
                write!(f, "member {member} has sha256 {found}, {}", listed(expected))
            }
            Self::DuplicateMember { member } => {
                write!(f, "member {member} appears more than once, expected it once")
            }
            Self::UnlistedMember { member } => {
                write!(f, "member {member} is needed but no size and sha256 are listed for it, so it cannot be verified")
            }
        }
    }
}

fn not_found_line(file: &str, attempts: &[Attempt], expected: &str) -> String {
    let looked: Vec<String> = attempts.iter().map(|attempt| format!("{} ({})", attempt.place, attempt.failure)).collect();
    format!("no valid copy of {file}: tried {}; expected {expected}", looked.join("; "))
}
