//! Finding a verified copy of every dataset file: in the cache, in a local mirror, or online.

mod download;
mod verify;

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Attempt, LookupFailure};
use crate::manifest::{FileEntry, Manifest};
use crate::DataError;

/// Environment variable naming a local mirror folder laid out as `<dataset>/<name>`.
pub const MIRROR_VAR: &str = "NNLAB_DATA_MIRROR";
/// Environment variable that, set to anything but empty or `0`, forbids downloads.
pub const OFFLINE_VAR: &str = "NNLAB_OFFLINE";

/// Where dataset files are looked for, in order: `data_dir/<dataset>/<name>`, then
/// `mirror/<dataset>/<name>`, then each canonical URL (downloaded into `data_dir`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetcher {
    /// The dataset cache; downloads are stored here.
    pub data_dir: PathBuf,
    /// A read-only copy of the datasets (a lab's shared drive), used in place.
    pub mirror: Option<PathBuf>,
    /// Whether canonical URLs may be tried at all.
    pub downloads: bool,
}

impl Fetcher {
    /// A fetcher for the cache `data_dir`, configured by [`MIRROR_VAR`] and [`OFFLINE_VAR`].
    pub fn from_env(data_dir: impl Into<PathBuf>) -> Self {
        Self::from_settings(data_dir.into(), std::env::var_os(MIRROR_VAR), std::env::var_os(OFFLINE_VAR))
    }

    fn from_settings(data_dir: PathBuf, mirror: Option<OsString>, offline: Option<OsString>) -> Self {
        let mirror = mirror.filter(|m| !m.is_empty()).map(PathBuf::from);
        let offline = offline.is_some_and(|v| !v.is_empty() && v != "0");
        Self { data_dir, mirror, downloads: !offline }
    }

    /// Where `entry` is, or will be, kept in the cache.
    pub fn cache_path(&self, entry: &FileEntry) -> PathBuf {
        self.data_dir.join(&entry.dataset).join(&entry.name)
    }

    /// Returns the path of a copy of `entry` that passed verification.
    ///
    /// A cached copy that fails verification is removed (and said so on stderr) before the lookup
    /// goes on; a mirror copy is never modified. Entries verified by their members (archives that
    /// mirrors repack) are only checked to exist here, as their reader checks the members while it
    /// unpacks them; a download of one is kept only once its members have matched.
    pub fn locate(&self, entry: &FileEntry) -> Result<PathBuf, DataError> {
        let mut attempts = Vec::new();

        let cached = self.cache_path(entry);
        match verify::check_file(&cached, &entry.verification) {
            Ok(()) => return Ok(cached),
            Err(failure) => {
                if matches!(
                    failure,
                    LookupFailure::WrongSize { .. }
                        | LookupFailure::LargerThanExpected { .. }
                        | LookupFailure::Sha256Mismatch { .. }
                ) {
                    discard(&cached, &failure);
                }
                attempts.push(Attempt { place: cached.display().to_string(), failure });
            }
        }

        match &self.mirror {
            Some(mirror) => {
                let mirrored = mirror.join(&entry.dataset).join(&entry.name);
                match verify::check_file(&mirrored, &entry.verification) {
                    Ok(()) => return Ok(mirrored),
                    Err(failure) => attempts.push(Attempt { place: mirrored.display().to_string(), failure }),
                }
            }
            None => attempts.push(Attempt {
                place: "mirror".to_string(),
                failure: LookupFailure::Skipped("none set, see NNLAB_DATA_MIRROR"),
            }),
        }

        if !self.downloads {
            attempts
                .push(Attempt { place: "download".to_string(), failure: LookupFailure::Skipped("disabled by NNLAB_OFFLINE") });
        } else if entry.urls.is_empty() {
            attempts
                .push(Attempt { place: "download".to_string(), failure: LookupFailure::Skipped("the manifest lists no URL") });
        } else {
            for url in &entry.urls {
                match download::download(url, &cached, &entry.verification) {
                    Ok(()) => return Ok(cached),
                    Err(failure) => attempts.push(Attempt { place: url.clone(), failure }),
                }
            }
        }

        Err(DataError::NotFound { file: entry.key(), attempts, expected: entry.verification.to_string() })
    }

    /// Locates every file of `dataset`, in manifest order; the first file that cannot be found
    /// ends the search with its error.
    pub fn fetch_all(&self, manifest: &Manifest, dataset: &str) -> Result<Vec<PathBuf>, DataError> {
        manifest.dataset(dataset)?.into_iter().map(|entry| self.locate(entry)).collect()
    }
}

/// Removes a cached file that failed verification, so that a good copy can take its place.
fn discard(path: &Path, failure: &LookupFailure) {
    match fs::remove_file(path) {
        Ok(()) => eprintln!("nnlab-data: removed {} ({failure})", path.display()),
        Err(err) => eprintln!("nnlab-data: could not remove {} ({failure}): {err}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    use sha2::{Digest as _, Sha256};

    use super::*;
    use crate::manifest::{Digest, Verification};

    const CONTENT: &[u8] = b"the real dataset bytes";

    fn digest_of(content: &[u8]) -> Digest {
        let sha256 = hex::encode(Sha256::digest(content)).try_into().unwrap();
        Digest { size: content.len() as u64, sha256 }
    }

    fn entry_for(content: &[u8], urls: Vec<String>) -> FileEntry {
        FileEntry {
            dataset: "toy".to_string(),
            name: "toy.gz".to_string(),
            urls,
            verification: Verification::WholeFile(digest_of(content)),
        }
    }

    /// A cache and a mirror in fresh temporary folders, with downloads off unless a test turns them on.
    struct Setup {
        _root: tempfile::TempDir,
        fetcher: Fetcher,
    }

    impl Setup {
        fn new() -> Self {
            let root = tempfile::tempdir().unwrap();
            let fetcher =
                Fetcher { data_dir: root.path().join("data"), mirror: Some(root.path().join("mirror")), downloads: false };
            Self { _root: root, fetcher }
        }

        fn put(&self, folder: &Path, content: &[u8]) -> PathBuf {
            let path = folder.join("toy").join("toy.gz");
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, content).unwrap();
            path
        }

        fn put_cached(&self, content: &[u8]) -> PathBuf {
            self.put(&self.fetcher.data_dir, content)
        }

        fn put_mirrored(&self, content: &[u8]) -> PathBuf {
            self.put(self.fetcher.mirror.as_ref().unwrap(), content)
        }

        /// Every file left in the cache folder of the toy dataset, hidden ones included.
        fn cache_listing(&self) -> Vec<String> {
            let folder = self.fetcher.data_dir.join("toy");
            let mut names: Vec<String> = match fs::read_dir(folder) {
                Ok(entries) => entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
                Err(_) => Vec::new(),
            };
            names.sort();
            names
        }
    }

    /// Serves `routes` (path → status, declared length, body) over HTTP on a loopback port, for
    /// as long as the test process lives. A declared length above the body's makes a cut-off transfer.
    fn serve(routes: Vec<(&'static str, u16, usize, Vec<u8>)>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                let mut header = String::new();
                while reader.read_line(&mut header).unwrap() > 2 {
                    header.clear();
                }
                let path = request_line.split_whitespace().nth(1).unwrap_or("");
                let (status, declared, body) = routes
                    .iter()
                    .find(|(route, ..)| *route == path)
                    .map_or((404, 0, &[][..]), |(_, status, declared, body)| (*status, *declared, &body[..]));
                let head = format!("HTTP/1.1 {status} X\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n");
                let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body));
            }
        });
        base
    }

    #[test]
    fn settings_come_from_the_environment_variables() {
        let fetcher = Fetcher::from_settings("data".into(), Some("/srv/datasets".into()), Some("1".into()));
        assert_eq!(fetcher.mirror.as_deref(), Some(Path::new("/srv/datasets")));
        assert!(!fetcher.downloads);

        let fetcher = Fetcher::from_settings("data".into(), Some("".into()), Some("0".into()));
        assert_eq!(fetcher.mirror, None);
        assert!(fetcher.downloads);
        assert!(Fetcher::from_settings("data".into(), None, None).downloads);
    }

    #[test]
    fn cached_copy_comes_first() {
        let setup = Setup::new();
        let cached = setup.put_cached(CONTENT);
        setup.put_mirrored(CONTENT);
        assert_eq!(setup.fetcher.locate(&entry_for(CONTENT, vec![])).unwrap(), cached);
    }

    #[test]
    fn mirror_copy_is_used_in_place() {
        let setup = Setup::new();
        let mirrored = setup.put_mirrored(CONTENT);
        assert_eq!(setup.fetcher.locate(&entry_for(CONTENT, vec![])).unwrap(), mirrored);
        assert!(setup.cache_listing().is_empty());
    }

    #[test]
    fn corrupt_cached_copy_is_removed_and_the_mirror_used() {
        let setup = Setup::new();
        let mut corrupt = CONTENT.to_vec();
        corrupt[0] ^= 1;
        let cached = setup.put_cached(&corrupt);
        let mirrored = setup.put_mirrored(CONTENT);
        assert_eq!(setup.fetcher.locate(&entry_for(CONTENT, vec![])).unwrap(), mirrored);
        assert!(!cached.exists());
    }

    #[test]
    fn wrong_size_is_reported_and_removed_from_the_cache() {
        let setup = Setup::new();
        let cached = setup.put_cached(b"short");
        let message = setup.fetcher.locate(&entry_for(CONTENT, vec![])).unwrap_err().to_string();
        assert!(message.contains(&format!("{} (wrong size 5 bytes, expected {})", cached.display(), CONTENT.len())), "{message}");
        assert!(!cached.exists());
    }

    #[test]
    fn sha256_mismatch_in_the_mirror_is_reported_and_left_alone() {
        let setup = Setup::new();
        let mirrored = setup.put_mirrored(&CONTENT.to_ascii_uppercase());
        let message = setup.fetcher.locate(&entry_for(CONTENT, vec![])).unwrap_err().to_string();
        let found = hex::encode(Sha256::digest(CONTENT.to_ascii_uppercase()));
        assert!(message.contains(&format!("{} (sha256 mismatch (found {found}))", mirrored.display())), "{message}");
        assert!(mirrored.exists());
    }

    #[test]
    fn nothing_found_lists_every_place_in_one_line() {
        let base = serve(vec![("/wrong", 200, 3, b"abc".to_vec())]);
        let urls = vec![format!("{base}/missing"), format!("{base}/wrong")];
        let mut setup = Setup::new();
        setup.fetcher.downloads = true;
        let entry = entry_for(CONTENT, urls.clone());

        let message = setup.fetcher.locate(&entry).unwrap_err().to_string();
        let cached = setup.fetcher.cache_path(&entry);
        let mirrored = setup.fetcher.mirror.as_ref().unwrap().join("toy/toy.gz");
        let expected = format!(
            "no valid copy of toy/toy.gz: tried {} (missing); {} (missing); {} (download error: http status: 404); \
             {} (wrong size 3 bytes, expected {}); expected {} bytes with sha256 {}",
            cached.display(),
            mirrored.display(),
            urls[0],
            urls[1],
            CONTENT.len(),
            CONTENT.len(),
            hex::encode(Sha256::digest(CONTENT)),
        );
        assert_eq!(message, expected);
        assert!(setup.cache_listing().is_empty(), "left behind: {:?}", setup.cache_listing());
    }

    #[test]
    fn disabled_downloads_and_missing_mirror_are_said() {
        let mut setup = Setup::new();
        setup.fetcher.mirror = None;
        // Nothing listens on the discard port; with downloads off it is never contacted anyway.
        let message =
            setup.fetcher.locate(&entry_for(CONTENT, vec!["http://127.0.0.1:9/toy.gz".into()])).unwrap_err().to_string();
        assert!(message.contains("mirror (none set, see NNLAB_DATA_MIRROR); download (disabled by NNLAB_OFFLINE)"), "{message}");
        assert!(!message.contains("127.0.0.1"), "{message}");
    }

    #[test]
    fn download_is_verified_then_stored_under_its_name() {
        let mut wrong = CONTENT.to_vec();
        wrong[3] ^= 1;
        let base = serve(vec![
            ("/cut", 200, CONTENT.len(), CONTENT[..10].to_vec()),
            ("/long", 200, CONTENT.len() + 1, [CONTENT, b"!"].concat()),
            ("/wrong", 200, CONTENT.len(), wrong),
            ("/good", 200, CONTENT.len(), CONTENT.to_vec()),
        ]);
        let urls: Vec<String> = ["cut", "long", "wrong", "good"].iter().map(|r| format!("{base}/{r}")).collect();
        let mut setup = Setup::new();
        setup.fetcher.mirror = None;
        setup.fetcher.downloads = true;
        let entry = entry_for(CONTENT, urls);

        let path = setup.fetcher.locate(&entry).unwrap();
        assert_eq!(path, setup.fetcher.cache_path(&entry));
        assert_eq!(fs::read(&path).unwrap(), CONTENT);
        // The three bad transfers left no temporary file behind.
        assert_eq!(setup.cache_listing(), vec!["toy.gz".to_string()]);
    }

    #[test]
    fn member_verified_archive_only_has_to_exist() {
        let setup = Setup::new();
        let mirrored = setup.put_mirrored(b"any repacking of the archive");
        let members = BTreeMap::from([("inner.bin".to_string(), digest_of(b"inner"))]);
        let entry = FileEntry { verification: Verification::Members(members), ..entry_for(CONTENT, vec![]) };
        assert_eq!(setup.fetcher.locate(&entry).unwrap(), mirrored);
    }

    #[test]
    fn downloaded_archive_is_kept_only_once_its_members_match() {
        use crate::archive::test_files::{listing, tar_gz};

        let good = tar_gz(&[("dir/inner.bin", b"inner"), ("dir/other.txt", b"x")]);
        let wrong = tar_gz(&[("dir/inner.bin", b"INNER")]);
        let base = serve(vec![
            ("/cut", 200, good.len(), good[..good.len() / 2].to_vec()),
            ("/wrong", 200, wrong.len(), wrong),
            ("/good", 200, good.len(), good.clone()),
        ]);
        let urls: Vec<String> = ["cut", "wrong"].iter().map(|r| format!("{base}/{r}")).collect();
        let mut setup = Setup::new();
        setup.fetcher.mirror = None;
        setup.fetcher.downloads = true;
        let entry = FileEntry {
            verification: Verification::Members(listing(&[("dir/inner.bin", b"inner")])),
            ..entry_for(CONTENT, urls.clone())
        };

        let message = setup.fetcher.locate(&entry).unwrap_err().to_string();
        assert!(message.contains(&format!("{} (download error: transfer failed: ", urls[0])), "{message}");
        assert!(
            message.contains(&format!(
                "{} (member dir/inner.bin has sha256 {}, expected 5 bytes with sha256 {})",
                urls[1],
                hex::encode(Sha256::digest(b"INNER")),
                hex::encode(Sha256::digest(b"inner")),
            )),
            "{message}"
        );
        assert!(setup.cache_listing().is_empty(), "left behind: {:?}", setup.cache_listing());

        let entry = FileEntry { urls: vec![format!("{base}/good")], ..entry };
        let path = setup.fetcher.locate(&entry).unwrap();
        assert_eq!(fs::read(&path).unwrap(), good);
        assert_eq!(setup.cache_listing(), vec!["toy.gz".to_string()]);
    }

    #[test]
    fn fetch_all_returns_paths_in_manifest_order() {
        let setup = Setup::new();
        let mirror = setup.fetcher.mirror.clone().unwrap();
        let mut text = String::new();
        let mut expected = Vec::new();
        for name in ["b.gz", "a.gz"] {
            let path = mirror.join("toy").join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, name).unwrap();
            text.push_str(&format!(
                "[[file]]\ndataset = \"toy\"\nname = \"{name}\"\nsize = {}\nsha256 = \"{}\"\nurls = []\n",
                name.len(),
                hex::encode(Sha256::digest(name)),
            ));
            expected.push(path);
        }
        let manifest = Manifest::parse(&text, "manifest.toml").unwrap();
        assert_eq!(setup.fetcher.fetch_all(&manifest, "toy").unwrap(), expected);
        assert!(setup.fetcher.fetch_all(&manifest, "other").is_err());
    }
}
