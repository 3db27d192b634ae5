//! Grids of small greyscale images (digits) as PNG files: each image enlarged by a whole factor,
//! rows and columns separated by a light gap. The encoder writes one IDAT chunk compressed by zlib.

use std::io::Write;

/// A grid of `rows × columns` images, each `height × width` bytes (0 = black, 255 = white), row-major.
#[derive(Debug, Clone)]
pub struct ImageGrid {
    pub height: usize,
    pub width: usize,
    /// Each row's images, left to right; every row has the same number.
    pub rows: Vec<Vec<Vec<u8>>>,
    /// Each pixel becomes `scale × scale` pixels.
    pub scale: usize,
}

/// Pixels between images, drawn in [`GAP_SHADE`].
const GAP: usize = 2;
const GAP_SHADE: u8 = 200;

impl ImageGrid {
    /// The grid's size in pixels: (width, height).
    pub fn size(&self) -> (usize, usize) {
        let columns = self.rows.first().map_or(0, Vec::len);
        let cell = |n: usize, side: usize| n * side * self.scale + (n + 1) * GAP;
        (cell(columns, self.width), cell(self.rows.len(), self.height))
    }

    /// The grid as an 8-bit greyscale PNG. Fails on images of the wrong size or ragged rows.
    pub fn to_png(&self) -> Result<Vec<u8>, String> {
        let columns = self.rows.first().map_or(0, Vec::len);
        if columns == 0 || self.scale == 0 {
            return Err("an image grid needs at least one image and a scale of at least 1".into());
        }
        for (r, row) in self.rows.iter().enumerate() {
            if row.len() != columns {
                return Err(format!("row {r} has {} images, the first has {columns}", row.len()));
            }
            if let Some(image) = row.iter().find(|i| i.len() != self.height * self.width) {
                return Err(format!("an image of row {r} has {} pixels, not {}×{}", image.len(), self.height, self.width));
            }
        }
        let (width, height) = self.size();
        let mut canvas = vec![GAP_SHADE; width * height];
        for (r, row) in self.rows.iter().enumerate() {
            for (c, image) in row.iter().enumerate() {
                let top = GAP + r * (self.height * self.scale + GAP);
                let left = GAP + c * (self.width * self.scale + GAP);
                for y in 0..self.height * self.scale {
                    for x in 0..self.width * self.scale {
                        canvas[(top + y) * width + left + x] = image[(y / self.scale) * self.width + x / self.scale];
                    }
                }
            }
        }
        Ok(grey_png(width, height, &canvas))
    }
}

/// An 8-bit greyscale PNG of `pixels` (row-major, `width × height`).
pub fn grey_png(width: usize, height: usize, pixels: &[u8]) -> Vec<u8> {
    assert_eq!(pixels.len(), width * height, "pixel count");
    let mut raw = Vec::with_capacity((width + 1) * height);
    for row in pixels.chunks(width) {
        raw.push(0); // filter: none
        raw.extend_from_slice(row);
    }
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    zlib.write_all(&raw).expect("writing to memory");
    let compressed = zlib.finish().expect("writing to memory");

    let mut header = Vec::with_capacity(13);
    header.extend((width as u32).to_be_bytes());
    header.extend((height as u32).to_be_bytes());
    header.extend([8, 0, 0, 0, 0]); // 8 bits, greyscale, deflate, no filter method, no interlace
    let mut png = vec![0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
    for (kind, data) in [(b"IHDR", &header[..]), (b"IDAT", &compressed[..]), (b"IEND", &[][..])] {
        png.extend((data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        png.extend(crc.sum().to_be_bytes());
    }
    png
}

/// The (width, height) a PNG's header states, for checks.
pub fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    if png.len() < 24 || &png[..8] != b"\x89PNG\r\n\x1a\n" || &png[12..16] != b"IHDR" {
        return None;
    }
    let read = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().expect("four bytes"));
    Some((read(16), read(20)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grid_has_the_stated_size_and_decodes_to_its_pixels() {
        let image = |v: u8| vec![v; 6];
        let grid = ImageGrid { height: 2, width: 3, rows: vec![vec![image(0), image(255)], vec![image(9), image(90)]], scale: 2 };
        let png = grid.to_png().unwrap();
        let (w, h) = grid.size();
        assert_eq!((w, h), (2 * 3 * 2 + 3 * GAP, 2 * 2 * 2 + 3 * GAP));
        assert_eq!(png_size(&png), Some((w as u32, h as u32)));
        // Inflate the IDAT chunk and find the second image of the first row: white, at (GAP, GAP + 6 + GAP).
        let idat_len = u32::from_be_bytes(png[33..37].try_into().unwrap()) as usize;
        assert_eq!(&png[37..41], b"IDAT");
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(&png[41..41 + idat_len]), &mut raw).unwrap();
        assert_eq!(raw.len(), (w + 1) * h);
        let at = |x: usize, y: usize| raw[y * (w + 1) + 1 + x];
        assert_eq!((at(GAP, GAP), at(GAP + 6 + GAP, GAP), at(0, 0)), (0, 255, GAP_SHADE));
        assert_eq!(at(GAP + 6 + GAP + 5, GAP + 4 + GAP + 3), 90);
    }

    #[test]
    fn ragged_or_misshapen_grids_are_refused() {
        let grid = ImageGrid { height: 2, width: 2, rows: vec![vec![vec![0; 4]], vec![]], scale: 1 };
        assert!(grid.to_png().unwrap_err().contains("row 1"));
        let grid = ImageGrid { height: 2, width: 2, rows: vec![vec![vec![0; 3]]], scale: 1 };
        assert!(grid.to_png().unwrap_err().contains("3 pixels"));
    }
}
