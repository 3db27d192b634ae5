//! Writing output files so that a reader never sees a half-written one.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::process;
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes temp files of concurrent writers within one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` by writing a temp file in the same directory and renaming it over
/// `path`: the rename is atomic on one file system, so `path` holds either its old content or
/// all of the new one. The parent directory must exist. On failure the temp file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{} has no file name", path.display())))?;
    let temp_name =
        format!(".{}.{}-{}.tmp", file_name.to_string_lossy(), process::id(), TEMP_COUNTER.fetch_add(1, Ordering::Relaxed));
    let temp_path = path.with_file_name(temp_name);

    let result = write_and_rename(&temp_path, path, bytes);
    if result.is_err() {
        // Best effort: the temp file may not even exist if creating it was what failed.
        let _ = fs::remove_file(&temp_path);
    }
    result
}

fn write_and_rename(temp_path: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(temp_path)?;
    file.write_all(bytes)?;
    // Flushed to disk before the rename, so a crash cannot leave a renamed but empty file.
    file.sync_all()?;
    fs::rename(temp_path, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("page.html");
        write_atomic(&path, b"old").expect("first write");
        write_atomic(&path, b"new").expect("second write");
        assert_eq!(fs::read_to_string(&path).expect("read back"), "new");
        let names: Vec<_> =
            fs::read_dir(dir.path()).expect("list dir").map(|entry| entry.expect("dir entry").file_name()).collect();
        assert_eq!(names, vec!["page.html"]);
    }

    #[test]
    fn missing_directory_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("absent").join("page.html");
        assert!(write_atomic(&path, b"x").is_err());
    }
}
