//! Test-set transforms applied to images before a trained model evaluates them.

use serde::{Deserialize, Serialize};

/// A direction in which images are rolled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Right,
    Left,
    Up,
    Down,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Right => "right",
            Direction::Left => "left",
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }

    /// The shift as (rows down, columns right).
    fn offsets(self, pixels: usize) -> (isize, isize) {
        let k = pixels as isize;
        match self {
            Direction::Right => (0, k),
            Direction::Left => (0, -k),
            Direction::Up => (-k, 0),
            Direction::Down => (k, 0),
        }
    }
}

/// Rolls every `height × width × channels` image (row-major, channels last) of `images` by `pixels`
/// in `direction`, with wrap-around: what leaves one edge comes back at the opposite one, like
/// `numpy.roll(image, k, axis)` on each image.
pub fn roll_images<T: Copy>(images: &[T], shape: [usize; 3], direction: Direction, pixels: usize) -> Vec<T> {
    let [height, width, channels] = shape;
    let per_image = height * width * channels;
    assert!(per_image > 0 && images.len().is_multiple_of(per_image), "{} values are not whole {shape:?} images", images.len());
    let (down, right) = direction.offsets(pixels);
    let mut out = Vec::with_capacity(images.len());
    for image in images.chunks_exact(per_image) {
        for row in 0..height {
            let from_row = (row as isize - down).rem_euclid(height as isize) as usize;
            for col in 0..width {
                let from_col = (col as isize - right).rem_euclid(width as isize) as usize;
                let start = (from_row * width + from_col) * channels;
                out.extend_from_slice(&image[start..start + channels]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // One 3 × 4 single-channel image:
    //  0  1  2  3
    //  4  5  6  7
    //  8  9 10 11
    fn image() -> Vec<u8> {
        (0..12).collect()
    }

    #[test]
    fn rolls_wrap_around_like_numpy() {
        // numpy.roll(img, 1, axis=1)
        assert_eq!(roll_images(&image(), [3, 4, 1], Direction::Right, 1), vec![3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10]);
        // numpy.roll(img, -1, axis=1)
        assert_eq!(roll_images(&image(), [3, 4, 1], Direction::Left, 1), vec![1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8]);
        // numpy.roll(img, 1, axis=0)
        assert_eq!(roll_images(&image(), [3, 4, 1], Direction::Down, 1), vec![8, 9, 10, 11, 0, 1, 2, 3, 4, 5, 6, 7]);
        // numpy.roll(img, -1, axis=0)
        assert_eq!(roll_images(&image(), [3, 4, 1], Direction::Up, 1), vec![4, 5, 6, 7, 8, 9, 10, 11, 0, 1, 2, 3]);
    }

    #[test]
    fn a_full_turn_is_the_identity_and_channels_move_together() {
        assert_eq!(roll_images(&image(), [3, 4, 1], Direction::Right, 4), image());
        assert_eq!(roll_images(&image(), [3, 4, 1], Direction::Right, 0), image());
        let two_images: Vec<u8> = image().into_iter().chain(image().into_iter().map(|v| v + 100)).collect();
        let rolled = roll_images(&two_images, [3, 4, 1], Direction::Up, 2);
        assert_eq!(&rolled[12..16], &[108, 109, 110, 111]);
        // Two channels per pixel stay paired.
        let rgb: Vec<u8> = (0..8).collect(); // 1 × 4 pixels × 2 channels
        assert_eq!(roll_images(&rgb, [1, 4, 2], Direction::Right, 1), vec![6, 7, 0, 1, 2, 3, 4, 5]);
    }
}
