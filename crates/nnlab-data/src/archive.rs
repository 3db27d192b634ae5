//! Gzip-compressed tar archives whose members, not the archive itself, have fixed bytes (mirrors
//! repack them with other tar headers and gzip settings). The archive is streamed once, never
//! extracted to disk; each listed member is checked against its size and SHA-256 as it is read.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Component, Path};

use flate2::read::MultiGzDecoder;
use sha2::{Digest as _, Sha256};

use crate::error::ArchiveProblem;
use crate::manifest::Digest;
use crate::DataError;

/// Reads the archive at `path` to its end and checks every member listed in `expected` (keyed by
/// its path inside the archive). Each listed member is handed to `take`, in archive order, once its
/// bytes have matched; members not listed are passed over.
///
/// The first problem met ends the reading: a listed member with the wrong size or checksum, listed
/// twice in the archive, or missing from it, a corrupt or cut-off stream, or an error from `take`.
pub(crate) fn read_members(
    path: &Path,
    expected: &BTreeMap<String, Digest>,
    mut take: impl FnMut(&str, Vec<u8>) -> Result<(), DataError>,
) -> Result<(), DataError> {
    let problem = |problem| DataError::Archive { path: path.to_path_buf(), problem };
    let file = File::open(path).map_err(|source| DataError::Unreadable { path: path.to_path_buf(), source })?;
    // Multi-member gzip is still one valid gzip file; reading all members matches `gunzip`.
    let mut archive = tar::Archive::new(MultiGzDecoder::new(BufReader::new(file)));
    let corrupt = |at: String| move |source| problem(ArchiveProblem::Corrupt { at, source });

    let mut seen = BTreeSet::new();
    // The last member header read, to say where a broken stream broke.
    let mut last: Option<String> = None;
    let entries = archive.entries().map_err(corrupt("before its first member".to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(corrupt(place_after(&last)))?;
        let name = entry.path().map(|p| member_name(&p)).map_err(corrupt(place_after(&last)))?;
        last = Some(name.clone());
        let Some(digest) = expected.get(&name) else {
            continue;
        };
        // Directories and links carry no bytes of their own; the member is the regular file.
        if !entry.header().entry_type().is_file() {
            continue;
        }
        if !seen.insert(name.clone()) {
            return Err(problem(ArchiveProblem::DuplicateMember { member: name }));
        }
        // The header tells a wrong size before any byte is read (or any memory reserved for it).
        let declared = entry.size();
        if declared != digest.size {
            return Err(problem(ArchiveProblem::MemberSize { member: name, found: declared, expected: digest.clone() }));
        }
        let (bytes, sha256) = read_hashing(&mut entry, declared).map_err(corrupt(format!("in member {name}")))?;
        if bytes.len() as u64 != declared {
            // tar hands out what the stream still had; a valid gzip of a cut-off tar ends early here.
            return Err(problem(ArchiveProblem::MemberSize {
                member: name,
                found: bytes.len() as u64,
                expected: digest.clone(),
            }));
        }
        if sha256 != digest.sha256.as_str() {
            return Err(problem(ArchiveProblem::MemberSha256 { member: name, found: sha256, expected: digest.clone() }));
        }
        take(&name, bytes)?;
    }

    // tar stops at its end-of-archive blocks; reading the gzip stream to its end checks its trailer
    // (CRC and length), so an archive cut off or damaged after its last member is not taken as good.
    let at_end = format!("at the end of the stream, {}", place_after(&last));
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(corrupt(at_end))?;

    if let Some((member, digest)) = expected.iter().find(|(name, _)| !seen.contains(*name)) {
        return Err(problem(ArchiveProblem::MissingMember { member: member.clone(), expected: digest.clone() }));
    }
    Ok(())
}

/// Checks every listed member of the archive at `path`, keeping none of them.
pub(crate) fn verify_members(path: &Path, expected: &BTreeMap<String, Digest>) -> Result<(), DataError> {
    read_members(path, expected, |_, _| Ok(()))
}

/// Reads up to `len` bytes, hashing them in the same pass.
fn read_hashing(reader: &mut impl Read, len: u64) -> io::Result<(Vec<u8>, String)> {
    // Capacity is the size the manifest listed and the header confirmed, not a guess.
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut reader = reader.take(len);
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        hasher.update(&buffer[..n]);
        bytes.extend_from_slice(&buffer[..n]);
    }
    Ok((bytes, hex::encode(hasher.finalize())))
}

/// A member's path as the manifest writes it: `/`-separated, without a leading `./`, which some
/// repackings add.
fn member_name(path: &Path) -> String {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_string_lossy()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn place_after(last: &Option<String>) -> String {
    match last {
        Some(member) => format!("after member {member}"),
        None => "before its first member".to_string(),
    }
}

/// Builders of small archives for tests of this module, of downloads and of the dataset readers.
#[cfg(test)]
pub(crate) mod test_files {
    use std::collections::BTreeMap;
    use std::io::Write;

    use flate2::write::GzEncoder;
    use flate2::Compression;
    use sha2::{Digest as _, Sha256};

    use crate::manifest::Digest;

    /// A gzip-compressed tar archive holding `members` (path, bytes) in the given order, each a
    /// regular file, in the GNU format the published archives use. Paths are stored as given (under
    /// 100 bytes), so a test can write the `./` prefix that `tar::Builder` would remove.
    pub fn tar_gz(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
        for (name, bytes) in members {
            let mut header = tar::Header::new_gnu();
            header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_cksum();
            builder.append(&header, *bytes).unwrap();
        }
        let mut gz = builder.into_inner().unwrap();
        gz.flush().unwrap();
        gz.finish().unwrap()
    }

    pub fn digest_of(bytes: &[u8]) -> Digest {
        Digest { size: bytes.len() as u64, sha256: hex::encode(Sha256::digest(bytes)).try_into().unwrap() }
    }

    /// The listing a manifest would give for `members`.
    pub fn listing(members: &[(&str, &[u8])]) -> BTreeMap<String, Digest> {
        members.iter().map(|(name, bytes)| (name.to_string(), digest_of(bytes))).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;

    use super::test_files::{digest_of, listing, tar_gz};
    use super::*;

    const A: &[u8] = b"first member";
    const B: &[u8] = b"second member, a little longer";

    fn write(dir: &tempfile::TempDir, bytes: &[u8]) -> PathBuf {
        let path = dir.path().join("archive.tar.gz");
        fs::write(&path, bytes).unwrap();
        path
    }

    /// The members `read_members` handed out: name and bytes.
    type Taken = Vec<(String, Vec<u8>)>;

    /// Reads `archive` against `expected`; returns the members handed out, or the one-line error.
    fn read(archive: &[u8], expected: &BTreeMap<String, Digest>) -> (PathBuf, Result<Taken, String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, archive);
        let mut taken = Vec::new();
        let result = read_members(&path, expected, |name, bytes| {
            taken.push((name.to_string(), bytes));
            Ok(())
        })
        .map(|()| taken)
        .map_err(|err| err.to_string());
        if let Err(message) = &result {
            assert!(!message.contains('\n'), "{message}");
        }
        (path, result)
    }

    #[test]
    fn hands_out_listed_members_in_archive_order() {
        let members = [("dir/b.bin", B), ("./dir/a.bin", A), ("dir/other.txt", &b"x"[..])];
        let expected = listing(&[("dir/a.bin", A), ("dir/b.bin", B)]);
        let (_, taken) = read(&tar_gz(&members), &expected);
        assert_eq!(taken.unwrap(), vec![("dir/b.bin".to_string(), B.to_vec()), ("dir/a.bin".to_string(), A.to_vec())]);
    }

    #[test]
    fn missing_member_is_named_with_what_was_expected() {
        let expected = listing(&[("a.bin", A), ("b.bin", B)]);
        let (path, result) = read(&tar_gz(&[("a.bin", A)]), &expected);
        let digest = digest_of(B);
        assert_eq!(
            result.unwrap_err(),
            format!("{}: member b.bin is missing, expected {} bytes with sha256 {}", path.display(), digest.size, digest.sha256)
        );
    }

    #[test]
    fn wrong_size_and_wrong_bytes_are_errors() {
        let expected = listing(&[("a.bin", A)]);
        let (_, result) = read(&tar_gz(&[("a.bin", B)]), &expected);
        let message = result.unwrap_err();
        assert!(message.contains(&format!("member a.bin is {} bytes, expected {} bytes", B.len(), A.len())), "{message}");

        let mut changed = A.to_vec();
        changed[0] ^= 1;
        let (_, result) = read(&tar_gz(&[("a.bin", &changed)]), &expected);
        let message = result.unwrap_err();
        assert!(
            message.contains(&format!(
                "member a.bin has sha256 {}, expected {} bytes with sha256 {}",
                digest_of(&changed).sha256,
                A.len(),
                digest_of(A).sha256
            )),
            "{message}"
        );
    }

    #[test]
    fn duplicate_member_is_an_error() {
        let expected = listing(&[("a.bin", A)]);
        let (_, result) = read(&tar_gz(&[("a.bin", A), ("a.bin", A)]), &expected);
        assert!(result.unwrap_err().ends_with("member a.bin appears more than once, expected it once"));
    }

    #[test]
    fn cut_off_or_damaged_archive_is_an_error() {
        // Varied bytes, so the compressed stream is long enough to cut in its middle.
        let big: Vec<u8> = (0..20_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        let expected = listing(&[("a.bin", A), ("big.bin", &big)]);
        let gz = tar_gz(&[("a.bin", A), ("big.bin", &big)]);
        for cut_at in [gz.len() / 2, gz.len() - 6, 10] {
            let (path, result) = read(&gz[..cut_at], &expected);
            let message = result.unwrap_err();
            assert!(
                message.starts_with(&format!("{}: gzip or tar data is corrupt or cut off ", path.display())),
                "cut at {cut_at}: {message}"
            );
        }
        let (_, result) = read(&gz[..gz.len() / 2], &expected);
        assert!(result.unwrap_err().contains("in member big.bin"));

        let mut damaged = gz.clone();
        let crc_at = damaged.len() - 8;
        damaged[crc_at] ^= 0xff;
        let (_, result) = read(&damaged, &expected);
        assert!(result.unwrap_err().contains("corrupt or cut off"));

        let (_, result) = read(b"not an archive at all", &expected);
        assert!(result.unwrap_err().contains("corrupt or cut off"));
    }

    #[test]
    fn missing_archive_names_the_path() {
        let message = verify_members(Path::new("/nonexistent/a.tar.gz"), &listing(&[("a", A)])).unwrap_err().to_string();
        assert!(message.starts_with("cannot read /nonexistent/a.tar.gz: "), "{message}");
    }
}
