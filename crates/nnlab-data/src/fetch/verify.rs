//! Streaming size and SHA-256 checks of dataset files.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use crate::error::LookupFailure;
use crate::manifest::{Digest, Verification};

/// Length and SHA-256 of a stream of bytes.
pub(crate) struct StreamDigest {
    pub len: u64,
    pub sha256: String,
}

/// Copies at most `limit` bytes from `reader` into `sink`, hashing them on the way, so a file is
/// read only once whether it is being checked or downloaded.
pub(crate) fn copy_hashing(reader: impl Read, sink: &mut impl Write, limit: u64) -> io::Result<StreamDigest> {
    let mut reader = reader.take(limit);
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut len = 0u64;
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        hasher.update(&buffer[..n]);
        sink.write_all(&buffer[..n])?;
        len += n as u64;
    }
    Ok(StreamDigest { len, sha256: hex::encode(hasher.finalize()) })
}

/// Compares what was read with what the manifest expects.
pub(crate) fn check_digest(found: &StreamDigest, expected: &Digest) -> Result<(), LookupFailure> {
    if found.len > expected.size {
        Err(LookupFailure::LargerThanExpected { expected: expected.size })
    } else if found.len != expected.size {
        Err(LookupFailure::WrongSize { found: found.len, expected: expected.size })
    } else if found.sha256 != expected.sha256.as_str() {
        Err(LookupFailure::Sha256Mismatch { found: found.sha256.clone() })
    } else {
        Ok(())
    }
}

/// Checks a file on disk: cheap size check first, then the checksum.
pub(crate) fn check_file(path: &Path, verification: &Verification) -> Result<(), LookupFailure> {
    let metadata = fs::metadata(path).map_err(|err| match err.kind() {
        io::ErrorKind::NotFound => LookupFailure::Missing,
        _ => LookupFailure::Unreadable(err),
    })?;
    if !metadata.is_file() {
        return Err(LookupFailure::NotAFile);
    }
    let Verification::WholeFile(expected) = verification else {
        // Member checksums need the archive unpacked; that is the archive reader's job.
        return Ok(());
    };
    if metadata.len() != expected.size {
        return Err(LookupFailure::WrongSize { found: metadata.len(), expected: expected.size });
    }
    let file = File::open(path).map_err(LookupFailure::Unreadable)?;
    let found = copy_hashing(file, &mut io::sink(), expected.size + 1).map_err(LookupFailure::Unreadable)?;
    check_digest(&found, expected)
}
