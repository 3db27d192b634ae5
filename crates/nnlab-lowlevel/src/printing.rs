//! Arrays made ready for a report: each carries its numbers, its shape as text and a fixed-width
//! rendering (two decimals, right-aligned columns) that reads as a matrix inside a code block.

use ndarray::{Array1, Array2, Array3, ArrayView2};
use serde::Serialize;

/// Decimals shown in every printed matrix.
const DECIMALS: usize = 2;

/// A shape as the report writes it: the dimensions joined by " × ", e.g. "3 × 10 × 10".
pub fn shape_text(dims: &[usize]) -> String {
    dims.iter().map(usize::to_string).collect::<Vec<_>>().join(" × ")
}

/// A number with the report's two decimals. Values that round to zero print as "0.00" whatever
/// their sign, so a matrix does not show a confusing "-0.00".
pub fn number_text(value: f32) -> String {
    let text = format!("{value:.DECIMALS$}");
    if text.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
        text.trim_start_matches('-').to_string()
    } else {
        text
    }
}

/// A 1-D array with its shape and a one-line rendering.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrintedVector {
    /// The shape, e.g. "10".
    pub shape: String,
    /// The values.
    pub values: Vec<f32>,
    /// The values on one line, right-aligned to a common width.
    pub text: String,
}

impl PrintedVector {
    /// Captures `vector` for the report.
    pub fn new(vector: &Array1<f32>) -> Self {
        let values = vector.to_vec();
        let width = column_width(values.iter());
        Self { shape: shape_text(vector.shape()), text: row_text(values.iter(), width), values }
    }
}

/// A 2-D array with its shape and a row-per-line rendering.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrintedMatrix {
    /// The shape, e.g. "3 × 3".
    pub shape: String,
    /// The values, row by row.
    pub values: Vec<Vec<f32>>,
    /// One line per row, columns right-aligned to a common width.
    pub text: String,
}

impl PrintedMatrix {
    /// Captures `matrix` for the report.
    pub fn new(matrix: &Array2<f32>) -> Self {
        let width = column_width(matrix.iter());
        Self { shape: shape_text(matrix.shape()), values: rows(matrix.view()), text: matrix_text(matrix.view(), width) }
    }
}

/// A stack of 2-D maps (C × H × W) with its shape and a rendering of one block per map.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrintedStack {
    /// The shape, e.g. "3 × 10 × 10".
    pub shape: String,
    /// The values, map by map, row by row.
    pub values: Vec<Vec<Vec<f32>>>,
    /// Each map under its heading and size, e.g. "channel 0 (10 × 10)", separated by blank
    /// lines; all maps share one column width so they line up.
    pub text: String,
}

impl PrintedStack {
    /// Captures `stack` for the report; `heading` names map i in the text, e.g. "channel 0" for
    /// an input or "sharpen" for the map a sharpen filter produced.
    pub fn new(stack: &Array3<f32>, heading: impl Fn(usize) -> String) -> Self {
        let width = column_width(stack.iter());
        let map_shape = shape_text(&stack.shape()[1..]);
        let blocks: Vec<String> = stack
            .outer_iter()
            .enumerate()
            .map(|(index, map)| format!("{} ({map_shape})\n{}", heading(index), matrix_text(map, width)))
            .collect();
        Self { shape: shape_text(stack.shape()), values: stack.outer_iter().map(rows).collect(), text: blocks.join("\n\n") }
    }
}

fn rows(matrix: ArrayView2<'_, f32>) -> Vec<Vec<f32>> {
    matrix.outer_iter().map(|row| row.to_vec()).collect()
}

fn column_width<'a>(values: impl Iterator<Item = &'a f32>) -> usize {
    values.map(|&v| number_text(v).len()).max().unwrap_or(0)
}

fn row_text<'a>(values: impl Iterator<Item = &'a f32>, width: usize) -> String {
    values.map(|&v| format!("{:>width$}", number_text(v))).collect::<Vec<_>>().join(" ")
}

fn matrix_text(matrix: ArrayView2<'_, f32>, width: usize) -> String {
    matrix.outer_iter().map(|row| row_text(row.iter(), width)).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn shapes_read_with_times_signs() {
        assert_eq!(shape_text(&[3, 10, 10]), "3 × 10 × 10");
        assert_eq!(shape_text(&[10]), "10");
    }

    #[test]
    fn negative_zero_prints_as_zero() {
        assert_eq!(number_text(-0.0), "0.00");
        assert_eq!(number_text(-0.001), "0.00");
        assert_eq!(number_text(-0.5), "-0.50");
        assert_eq!(number_text(f32::NAN), "NaN");
    }

    #[test]
    fn matrix_columns_share_one_width() {
        let printed = PrintedMatrix::new(&array![[1.0, -12.5], [0.0, 3.0]]);
        assert_eq!(printed.shape, "2 × 2");
        assert_eq!(printed.text, "  1.00 -12.50\n  0.00   3.00");
        assert_eq!(printed.values, vec![vec![1.0, -12.5], vec![0.0, 3.0]]);
    }

    #[test]
    fn stack_prints_one_headed_block_per_map() {
        let stack = Array3::from_shape_vec((2, 1, 2), vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let printed = PrintedStack::new(&stack, |i| format!("map {i}"));
        assert_eq!(printed.shape, "2 × 1 × 2");
        assert_eq!(printed.text, "map 0 (1 × 2)\n1.00 2.00\n\nmap 1 (1 × 2)\n3.00 4.00");
    }

    #[test]
    fn vector_prints_on_one_line() {
        let printed = PrintedVector::new(&array![0.25, 0.75]);
        assert_eq!(printed.shape, "2");
        assert_eq!(printed.text, "0.25 0.75");
    }
}
