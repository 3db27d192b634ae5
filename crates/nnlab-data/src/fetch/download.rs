//! Downloads that never leave a half-written or unverified file under a final name.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::archive;
use crate::error::LookupFailure;
use crate::fetch::verify::{check_digest, copy_hashing};
use crate::manifest::Verification;
use crate::DataError;

/// Downloads `url` to `destination`. The bytes go to a temporary file beside it, which is renamed
/// only once the download is complete and matches `verification` (for an archive checked by its
/// members: once every listed member has matched); on any failure it is removed.
pub(crate) fn download(url: &str, destination: &Path, verification: &Verification) -> Result<(), LookupFailure> {
    let failed = |what: &str, err: &dyn std::fmt::Display| LookupFailure::Download(format!("{what}: {err}"));
    eprintln!("nnlab-data: downloading {url}");
    let response = agent().get(url).call().map_err(|err| LookupFailure::Download(err.to_string()))?;
    let body = response.into_body().into_reader();
    let mut partial = PartialFile::create(destination)
        .map_err(|err| failed(&format!("cannot create a temporary file beside {}", destination.display()), &err))?;
    // Reading one byte past the expected size is enough to tell a wrong file, without reading all of it.
    let limit = match verification {
        Verification::WholeFile(expected) => expected.size + 1,
        Verification::Members(_) => u64::MAX,
    };
    let found = copy_hashing(body, partial.file_mut(), limit).map_err(|err| failed("transfer failed", &err))?;
    match verification {
        Verification::WholeFile(expected) => check_digest(&found, expected)?,
        // A cached archive is later trusted to exist only, so nothing unverified may get there.
        Verification::Members(members) => archive::verify_members(partial.path(), members).map_err(|err| match err {
            DataError::Archive { problem, .. } => LookupFailure::Archive(problem),
            other => failed("cannot read the download back", &other),
        })?,
    }
    partial.persist(destination).map_err(|err| failed(&format!("cannot store {}", destination.display()), &err))
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        // A slow link may take long for a large file; only a stalled transfer is given up on.
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("nnlab/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// A download in progress, under a hidden name in the destination's folder (so the final rename
/// stays on one file system and is atomic). Removed when dropped unless persisted.
struct PartialFile {
    path: PathBuf,
    /// Open until persisted or dropped; closed before removal, which some systems require.
    file: Option<File>,
    persisted: bool,
}

impl PartialFile {
    fn create(destination: &Path) -> io::Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let folder = destination.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(folder)?;
        let name = destination.file_name().unwrap_or_default().to_string_lossy();
        // Process id, counter and clock keep concurrent fetches (threads, or machines sharing the
        // cache folder) from writing into the same temporary file.
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let unique = format!("{}-{}-{nanos}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let path = folder.join(format!(".{name}.{unique}.part"));
        let file = OpenOptions::new().write(true).create_new(true).open(&path)?;
        Ok(Self { path, file: Some(file), persisted: false })
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn file_mut(&mut self) -> &mut File {
        self.file.as_mut().expect("a partial file is open until persisted or dropped")
    }

    /// Flushes the bytes to disk, then gives them their final name.
    fn persist(mut self, destination: &Path) -> io::Result<()> {
        if let Some(file) = self.file.take() {
            file.sync_all()?;
        }
        fs::rename(&self.path, destination)?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        self.file.take();
        if !self.persisted {
            // Best effort: an error while cleaning up has no one to go to.
            let _ = fs::remove_file(&self.path);
        }
    }
}
