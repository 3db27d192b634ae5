//! Gzip-compressed IDX files of unsigned bytes, the format MNIST is published in: a big-endian
//! magic number (0x0000_08NN, NN = number of dimensions), one big-endian u32 per dimension, then
//! the array in row-major order.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::DataError;

/// The IDX element type code for unsigned bytes, the only one MNIST uses.
const UNSIGNED_BYTE: u8 = 0x08;
const IMAGE_DIMENSIONS: u8 = 3;
const LABEL_DIMENSIONS: u8 = 1;

/// Grayscale images stored one after another, row-major, one byte (0-255) per pixel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSet {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    /// `count * rows * cols` bytes.
    pub pixels: Vec<u8>,
}

impl ImageSet {
    /// Bytes per image.
    pub fn image_len(&self) -> usize {
        self.rows * self.cols
    }

    /// The pixels of image `index`. Panics if `index >= count`.
    pub fn image(&self, index: usize) -> &[u8] {
        let len = self.image_len();
        &self.pixels[index * len..(index + 1) * len]
    }
}

/// Reads a gzip-compressed IDX file of images (magic 2051).
pub fn read_images(path: impl AsRef<Path>) -> Result<ImageSet, DataError> {
    let path = path.as_ref();
    let (dims, pixels) = read_idx(path, IMAGE_DIMENSIONS)?;
    Ok(ImageSet { count: dims[0], rows: dims[1], cols: dims[2], pixels })
}

/// Reads a gzip-compressed IDX file of digit labels (magic 2049); every label must be 0-9.
pub fn read_labels(path: impl AsRef<Path>) -> Result<Vec<u8>, DataError> {
    let path = path.as_ref();
    let (_, labels) = read_idx(path, LABEL_DIMENSIONS)?;
    if let Some((index, &value)) = labels.iter().enumerate().find(|(_, &label)| label >= 10) {
        return Err(DataError::LabelOutOfRange { path: path.to_path_buf(), index, value });
    }
    Ok(labels)
}

/// Reads the whole file: its dimensions and exactly as many bytes as they declare.
fn read_idx(path: &Path, dimensions: u8) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let header_error = |detail: String| DataError::IdxHeader { path: path.to_path_buf(), detail };
    let gzip_error = |source: io::Error| DataError::Gzip { path: path.to_path_buf(), source };

    let file = File::open(path).map_err(|source| DataError::Unreadable { path: path.to_path_buf(), source })?;
    // Multi-member gzip is still one valid gzip file; reading all members matches `gunzip`.
    let mut stream = MultiGzDecoder::new(BufReader::new(file));

    let expected_magic = u32::from_be_bytes([0, 0, UNSIGNED_BYTE, dimensions]);
    let header_len = 4 * (1 + usize::from(dimensions));
    let mut header = vec![0u8; header_len];
    let got = read_up_to(&mut stream, &mut header).map_err(gzip_error)?;
    if got < 4 {
        return Err(header_error(format!("file ends after {got} bytes, inside its IDX header")));
    }
    let magic = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    if header[..3] != [0, 0, UNSIGNED_BYTE] {
        return Err(header_error(format!(
            "magic number {magic:#010x} ({magic}), expected {expected_magic:#010x} ({expected_magic}): an IDX file of unsigned bytes"
        )));
    }
    if header[3] != dimensions {
        return Err(header_error(format!(
            "magic number {magic:#010x} ({magic}) declares {} dimensions, expected {dimensions} (magic {expected_magic})",
            header[3]
        )));
    }
    if got < header_len {
        return Err(header_error(format!("file ends after {got} bytes, inside its {header_len}-byte IDX header")));
    }

    let dims: Vec<u64> = header[4..].chunks_exact(4).map(|b| u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))).collect();
    let shape = format!("dimensions {}", dims.iter().map(u64::to_string).collect::<Vec<_>>().join("x"));
    let expected_len = dims
        .iter()
        .try_fold(1u64, |product, &dim| product.checked_mul(dim))
        .filter(|&len| usize::try_from(len).is_ok())
        .ok_or_else(|| header_error(format!("{shape} are too large to hold in memory")))?;

    // Capacity follows the bytes actually read, so a corrupt header cannot force a huge allocation.
    let mut payload = Vec::with_capacity(expected_len.min(1 << 26) as usize);
    // One byte past the declared length tells an over-long payload; reaching the end of the stream
    // instead makes the decoder check the gzip trailer (CRC and length).
    stream.take(expected_len + 1).read_to_end(&mut payload).map_err(gzip_error)?;
    let found = payload.len() as u64;
    if found < expected_len {
        return Err(DataError::IdxTruncated { path: path.to_path_buf(), found, expected: expected_len, shape });
    }
    if found > expected_len {
        return Err(DataError::IdxOverlong { path: path.to_path_buf(), expected: expected_len, shape });
    }
    // Each dimension fits in usize: their product does.
    Ok((dims.into_iter().map(|d| d as usize).collect(), payload))
}

/// Fills `buffer` as far as the stream goes; returns how many bytes were read.
fn read_up_to(stream: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match stream.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

/// Builders of small IDX files for tests of this module and of the MNIST loader.
#[cfg(test)]
pub(crate) mod test_files {
    use std::io::Write;

    use flate2::write::GzEncoder;
    use flate2::Compression;

    /// Uncompressed IDX bytes: the magic number, the dimensions, the payload.
    pub fn idx(magic: u32, dims: &[u32], payload: &[u8]) -> Vec<u8> {
        let mut bytes = magic.to_be_bytes().to_vec();
        for dim in dims {
            bytes.extend_from_slice(&dim.to_be_bytes());
        }
        bytes.extend_from_slice(payload);
        bytes
    }

    pub fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;

    use super::test_files::{gzip, idx};
    use super::*;

    const IMAGES: u32 = 2051;
    const LABELS: u32 = 2049;

    fn write(dir: &tempfile::TempDir, gz: &[u8]) -> PathBuf {
        let path = dir.path().join("file.gz");
        fs::write(&path, gz).unwrap();
        path
    }

    fn image_error(gz: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let message = read_images(write(&dir, gz)).unwrap_err().to_string();
        assert!(!message.contains('\n'), "{message}");
        message
    }

    #[test]
    fn reads_good_images_and_labels() {
        let dir = tempfile::tempdir().unwrap();
        let pixels: Vec<u8> = (0..2 * 3 * 2).collect();
        let images = read_images(write(&dir, &gzip(&idx(IMAGES, &[2, 3, 2], &pixels)))).unwrap();
        assert_eq!((images.count, images.rows, images.cols), (2, 3, 2));
        assert_eq!(images.image(1), &pixels[6..]);

        let labels = read_labels(write(&dir, &gzip(&idx(LABELS, &[3], &[9, 0, 4])))).unwrap();
        assert_eq!(labels, vec![9, 0, 4]);
    }

    #[test]
    fn bad_magic_is_an_error() {
        let message = image_error(&gzip(&idx(0x1f8b_0803, &[1, 1, 1], &[0])));
        assert!(message.contains("magic number 0x1f8b0803"), "{message}");
        assert!(message.contains("expected 0x00000803 (2051)"), "{message}");
    }

    #[test]
    fn labels_read_as_images_have_the_wrong_dimensions() {
        let message = image_error(&gzip(&idx(LABELS, &[3], &[1, 2, 3])));
        assert!(message.contains("declares 1 dimensions, expected 3 (magic 2051)"), "{message}");
    }

    #[test]
    fn truncated_payload_is_an_error() {
        let message = image_error(&gzip(&idx(IMAGES, &[2, 2, 2], &[0; 7])));
        assert!(message.ends_with("payload is cut off: 7 bytes, expected 8 (dimensions 2x2x2)"), "{message}");
    }

    #[test]
    fn over_long_payload_is_an_error() {
        let message = image_error(&gzip(&idx(IMAGES, &[2, 2, 2], &[0; 9])));
        assert!(message.ends_with("payload is longer than the 8 bytes its header declares (dimensions 2x2x2)"), "{message}");
    }

    #[test]
    fn truncated_header_is_an_error() {
        let message = image_error(&gzip(&idx(IMAGES, &[2, 2], &[])));
        assert!(message.contains("inside its 16-byte IDX header"), "{message}");
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        // Varied pixels, so the compressed stream is long enough to cut in its middle.
        let pixels: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        let gz = gzip(&idx(IMAGES, &[16, 16, 16], &pixels));
        for cut_at in [gz.len() / 2, gz.len() - 6] {
            let message = image_error(&gz[..cut_at]);
            assert!(message.contains("gzip data is corrupt or cut off"), "cut at {cut_at}: {message}");
        }
    }

    #[test]
    fn corrupt_gzip_is_an_error() {
        let mut gz = gzip(&idx(IMAGES, &[1, 2, 2], &[1, 2, 3, 4]));
        let crc_at = gz.len() - 8;
        gz[crc_at] ^= 0xff;
        assert!(image_error(&gz).contains("gzip data is corrupt or cut off"));
        assert!(image_error(b"not gzip at all").contains("gzip data is corrupt or cut off"));
    }

    #[test]
    fn label_out_of_range_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, &gzip(&idx(LABELS, &[4], &[1, 2, 10, 3])));
        let message = read_labels(&path).unwrap_err().to_string();
        assert_eq!(message, format!("{}: label 2 is 10, expected 0-9", path.display()));
    }

    #[test]
    fn missing_file_names_the_path() {
        let message = read_labels("/nonexistent/labels.gz").unwrap_err().to_string();
        assert!(message.starts_with("cannot read /nonexistent/labels.gz: "), "{message}");
    }
}
