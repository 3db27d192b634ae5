//! SVG heat maps of a two-axis sweep: one cell per (row, column) setting, coloured by its value on
//! a light-to-dark scale and labelled with the value itself, so the figure reads without a legend.

use std::fmt::Write;

use crate::error::{ReportError, Result};
use crate::helpers::escape_html;

#[derive(Debug, Clone)]
pub struct HeatMap {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub columns: Vec<String>,
    pub rows: Vec<String>,
    /// `values[row][column]`; `None` for a cell that was not measured.
    pub values: Vec<Vec<Option<f64>>>,
    /// How each value is printed in its cell, e.g. as a percentage with one decimal.
    pub percent: bool,
}

const CELL_W: f64 = 64.0;
const CELL_H: f64 = 30.0;
const LEFT: f64 = 110.0;
const TOP: f64 = 50.0;

/// Draws the heat map; fails, naming it, on a shape that does not match its labels or a
/// non-finite value.
pub fn heat_map_svg(map: &HeatMap) -> Result<String> {
    let error = |reason: String| ReportError::Figure { title: map.title.clone(), reason };
    if map.rows.is_empty() || map.columns.is_empty() {
        return Err(error("no cells to draw".into()));
    }
    if map.values.len() != map.rows.len() || map.values.iter().any(|r| r.len() != map.columns.len()) {
        return Err(error(format!("values are not {} rows × {} columns", map.rows.len(), map.columns.len())));
    }
    let present: Vec<f64> = map.values.iter().flatten().flatten().copied().collect();
    if let Some(bad) = present.iter().find(|v| !v.is_finite()) {
        return Err(error(format!("non-finite value {bad}")));
    }
    let (lo, hi) = present.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let width = LEFT + CELL_W * map.columns.len() as f64 + 20.0;
    let height = TOP + CELL_H * map.rows.len() as f64 + 60.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ =
        write!(svg, r#"<text x="{}" y="22" text-anchor="middle" font-size="14">{}</text>"#, width / 2.0, escape_html(&map.title));
    for (r, row) in map.values.iter().enumerate() {
        let y = TOP + CELL_H * r as f64;
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            LEFT - 8.0,
            y + CELL_H / 2.0 + 4.0,
            escape_html(&map.rows[r])
        );
        for (c, value) in row.iter().enumerate() {
            let x = LEFT + CELL_W * c as f64;
            let (fill, ink, text) = match value {
                Some(v) => {
                    let t = if hi > lo { (v - lo) / (hi - lo) } else { 1.0 };
                    let label = if map.percent { format!("{:.1}", v * 100.0) } else { format!("{v:.3}") };
                    (shade(t), if t > 0.55 { "white" } else { "black" }, label)
                }
                None => ("#eeeeee".to_string(), "#888888", "–".to_string()),
            };
            let _ = write!(
                svg,
                r#"<rect x="{x}" y="{y}" width="{CELL_W}" height="{CELL_H}" fill="{fill}" stroke="white"/><text x="{}" y="{}" text-anchor="middle" fill="{ink}">{text}</text>"#,
                x + CELL_W / 2.0,
                y + CELL_H / 2.0 + 4.0
            );
        }
    }
    let bottom = TOP + CELL_H * map.rows.len() as f64;
    for (c, column) in map.columns.iter().enumerate() {
        let x = LEFT + CELL_W * (c as f64 + 0.5);
        let _ = write!(svg, r#"<text x="{x}" y="{}" text-anchor="middle">{}</text>"#, bottom + 16.0, escape_html(column));
    }
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        LEFT + CELL_W * map.columns.len() as f64 / 2.0,
        bottom + 40.0,
        escape_html(&map.x_label)
    );
    let _ = write!(
        svg,
        r#"<text x="14" y="{}" text-anchor="middle" transform="rotate(-90 14 {})">{}</text>"#,
        TOP + CELL_H * map.rows.len() as f64 / 2.0,
        TOP + CELL_H * map.rows.len() as f64 / 2.0,
        escape_html(&map.y_label)
    );
    svg.push_str("</svg>\n");
    Ok(svg)
}

/// White to dark blue.
fn shade(t: f64) -> String {
    let t = t.clamp(0.0, 1.0);
    let channel = |light: f64, dark: f64| (light + (dark - light) * t).round() as u8;
    format!("#{:02x}{:02x}{:02x}", channel(247.0, 8.0), channel(251.0, 48.0), channel(255.0, 107.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> HeatMap {
        HeatMap {
            title: "grid <test>".into(),
            x_label: "units".into(),
            y_label: "lr".into(),
            columns: vec!["10".into(), "100".into()],
            rows: vec!["0.1".into()],
            values: vec![vec![Some(0.9), None]],
            percent: true,
        }
    }

    #[test]
    fn cells_carry_their_values_and_missing_cells_are_marked() {
        let svg = heat_map_svg(&map()).unwrap();
        assert!(svg.contains(">90.0<") && svg.contains(">–<"));
        assert!(svg.contains("grid &lt;test&gt;"));
        assert_eq!(svg.matches("<rect").count(), 3, "background and two cells");
    }

    #[test]
    fn bad_shapes_and_values_are_refused() {
        let mut m = map();
        m.values = vec![vec![Some(0.9)]];
        assert!(heat_map_svg(&m).unwrap_err().to_string().contains("1 rows × 2 columns"));
        let mut m = map();
        m.values = vec![vec![Some(f64::NAN), None]];
        assert!(heat_map_svg(&m).is_err());
    }
}
