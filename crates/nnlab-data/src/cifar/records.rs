//! The records of a CIFAR-10 binary batch file: one label byte (0-9), then the 32x32 image as
//! three planes, all red bytes, all green, all blue, each plane row-major.

/// Height and width of every CIFAR-10 image.
pub const IMAGE_SIDE: usize = 32;
/// Colour channels per pixel: red, green, blue.
pub const CHANNELS: usize = 3;
/// Bytes of one image, in either layout.
pub const IMAGE_LEN: usize = IMAGE_SIDE * IMAGE_SIDE * CHANNELS;
/// Bytes of one record: the label byte and the image.
pub const RECORD_LEN: usize = 1 + IMAGE_LEN;
/// Number of classes; every label is below it.
pub const CLASS_COUNT: usize = 10;

const PLANE_LEN: usize = IMAGE_SIDE * IMAGE_SIDE;

/// Colour images stored one after another, each in height, width, channel order (HWC, the
/// `(32, 32, 3)` layout Keras uses), one byte (0-255) per channel value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColorImageSet {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub channels: usize,
    /// `count * rows * cols * channels` bytes.
    pub pixels: Vec<u8>,
}

impl ColorImageSet {
    /// Bytes per image.
    pub fn image_len(&self) -> usize {
        self.rows * self.cols * self.channels
    }

    /// The pixels of image `index`, HWC. Panics if `index >= count`.
    pub fn image(&self, index: usize) -> &[u8] {
        let len = self.image_len();
        &self.pixels[index * len..(index + 1) * len]
    }

    /// The channel values of one pixel of image `index`. Panics if out of range.
    pub fn pixel(&self, index: usize, row: usize, col: usize) -> &[u8] {
        assert!(row < self.rows && col < self.cols, "pixel ({row}, {col}) outside {}x{}", self.rows, self.cols);
        let at = (row * self.cols + col) * self.channels;
        &self.image(index)[at..at + self.channels]
    }
}

/// Decodes `records` (whole records only) into `labels` (one per record) and `pixels` (HWC,
/// [`IMAGE_LEN`] per record). On a bad label, says which record and what it holds.
pub(crate) fn decode(records: &[u8], labels: &mut [u8], pixels: &mut [u8]) -> Result<(), String> {
    debug_assert_eq!(records.len(), labels.len() * RECORD_LEN);
    debug_assert_eq!(pixels.len(), labels.len() * IMAGE_LEN);
    let records = records.chunks_exact(RECORD_LEN);
    let images = pixels.chunks_exact_mut(IMAGE_LEN);
    for (index, ((record, label), image)) in records.zip(labels.iter_mut()).zip(images).enumerate() {
        if usize::from(record[0]) >= CLASS_COUNT {
            return Err(format!("record {index} has label {}, expected 0-{}", record[0], CLASS_COUNT - 1));
        }
        *label = record[0];
        let (red, rest) = record[1..].split_at(PLANE_LEN);
        let (green, blue) = rest.split_at(PLANE_LEN);
        for (((pixel, &r), &g), &b) in image.chunks_exact_mut(CHANNELS).zip(red).zip(green).zip(blue) {
            pixel.copy_from_slice(&[r, g, b]);
        }
    }
    Ok(())
}

/// Builders of batch files for tests of this module and of the CIFAR-10 loader.
#[cfg(test)]
pub(crate) mod test_files {
    use super::{IMAGE_LEN, PLANE_LEN};

    /// The value test images hold at (`image`, `channel`, `position` in the plane): varied, and
    /// telling all three apart.
    pub fn value(image: usize, channel: usize, position: usize) -> u8 {
        (image * 7 + channel * 101 + position * 13) as u8
    }

    /// A batch file in the published layout: per record its label, then the R, G and B planes.
    pub fn batch(labels: &[u8], first_image: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        for (offset, &label) in labels.iter().enumerate() {
            bytes.push(label);
            for channel in 0..3 {
                bytes.extend((0..PLANE_LEN).map(|p| value(first_image + offset, channel, p)));
            }
        }
        debug_assert_eq!(bytes.len(), labels.len() * (1 + IMAGE_LEN));
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::test_files::{batch, value};
    use super::*;

    #[test]
    fn planes_become_hwc_pixels() {
        let records = batch(&[4, 9], 0);
        let mut labels = [0u8; 2];
        let mut pixels = vec![0u8; 2 * IMAGE_LEN];
        decode(&records, &mut labels, &mut pixels).unwrap();
        assert_eq!(labels, [4, 9]);

        let set = ColorImageSet { count: 2, rows: IMAGE_SIDE, cols: IMAGE_SIDE, channels: CHANNELS, pixels };
        // Row 2, column 5 of image 1: plane position 2 * 32 + 5 in the file.
        let position = 2 * IMAGE_SIDE + 5;
        assert_eq!(set.pixel(1, 2, 5), [value(1, 0, position), value(1, 1, position), value(1, 2, position)]);
        let hwc_at = (2 * IMAGE_SIDE + 5) * CHANNELS;
        assert_eq!(set.image(1)[hwc_at + 2], records[RECORD_LEN + 1 + 2 * PLANE_LEN + position]);
    }

    #[test]
    fn label_out_of_range_names_the_record() {
        let records = batch(&[1, 2, 10], 0);
        let mut labels = [0u8; 3];
        let mut pixels = vec![0u8; 3 * IMAGE_LEN];
        assert_eq!(decode(&records, &mut labels, &mut pixels).unwrap_err(), "record 2 has label 10, expected 0-9");
    }
}
