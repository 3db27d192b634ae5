//! SVG grids of decision-boundary panels in the style of the TensorFlow Playground: each panel
//! shows a network's output over a square of the input plane (orange −1, light 0, blue +1) with
//! the labelled data points on top; rows and columns are two settings of a sweep.
//!
//! Written by hand rather than with plotters, and compactly, because a reference report holds
//! several of these figures and a 4 × 7 grid of 30 × 30 panels with 250 points each must stay
//! under ~150 kB:
//! - the output is quantised into [`LEVELS`] colours and each row of a panel is run-length
//!   encoded, so a region of one colour costs one run per row, not one element per cell;
//! - each run is a segment `M col row h len` of one `<path>` per colour level and panel, drawn
//!   with a stroke one cell thick in cell units (~9 bytes a run rather than ~45 for a `<rect>`);
//! - each point is a zero-length segment `M x y h0` with a round cap, as in [`crate::scatter`],
//!   at whole-pixel coordinates relative to its panel (~9 bytes a point); the white ring around
//!   the dots is the same path drawn once more, wider and white, through `<use>`, so the
//!   coordinates are written once.
//!
//! The figure is meant to be its own file (`<img src=…>`), so the element ids used by `<use>`
//! only need to be unique within it.

use std::fmt::Write;

use crate::error::{ReportError, Result};
use crate::helpers::escape_html;

/// One panel: the network's output over the square [-extent, extent]², sampled on a
/// resolution × resolution grid, with labelled points on top.
#[derive(Debug, Clone)]
pub struct BoundaryPanel {
    /// Small caption under the panel, e.g. "test loss 0.012"; may be empty.
    pub caption: String,
    pub resolution: usize,
    /// Row-major, `values[row * resolution + col]`; row 0 is the TOP (y = +extent), col 0 the
    /// LEFT (x = -extent); cell centres at -extent + (i + 0.5)·2·extent/resolution. Values in
    /// [-1, 1] (a tanh output; anything outside is clamped).
    pub values: Vec<f64>,
    /// Points (x, y, label) with label > 0 the positive class (blue), otherwise negative
    /// (orange). Points outside the square are not drawn. May be empty.
    pub points: Vec<(f64, f64, f64)>,
}

#[derive(Debug, Clone)]
pub struct BoundaryGrid {
    pub title: String,
    /// Half the side of the square every panel shows, in input units (the Playground uses 6).
    pub extent: f64,
    /// One per row, drawn left of the row.
    pub row_labels: Vec<String>,
    /// One per column, drawn above the column.
    pub column_labels: Vec<String>,
    /// `panels[row][col]`; `None` = not measured (an empty grey-outlined box with "not run").
    pub panels: Vec<Vec<Option<BoundaryPanel>>>,
}

/// Colour levels of the output. Even, so that the decision boundary (output 0) always falls on
/// the edge between two levels ([−1/6, 0) and [0, 1/6)) and is visible as a colour step. 12 steps
/// read as a smooth ramp at 120 px, while a row on which the output rises monotonically from −1
/// to +1 still breaks into at most 12 runs (a saturated, trained network's rows into far fewer).
pub const LEVELS: usize = 12;
/// The Playground's colours for −1, 0 and +1.
const NEGATIVE: (f64, f64, f64) = (245.0, 147.0, 34.0); // #f59322
const MIDDLE: (f64, f64, f64) = (232.0, 234.0, 235.0); // #e8eaeb
const POSITIVE: (f64, f64, f64) = (8.0, 119.0, 189.0); // #0877bd
/// Side of a panel in pixels: a 30 × 30 grid gets whole 4-pixel cells, and seven columns with
/// their gaps and row labels fit a ~1100 px page.
const PANEL: f64 = 120.0;
/// Horizontal space between panels.
const GAP_X: f64 = 16.0;
/// Space under a panel for its caption, then between the caption and the next row.
const CAPTION_H: f64 = 16.0;
const GAP_Y: f64 = 10.0;
/// Title baseline at 22, column labels just above the first row.
const TOP: f64 = 52.0;
/// The legend line under the last row.
const LEGEND_H: f64 = 36.0;
const RIGHT: f64 = 16.0;
/// Dot diameter and the diameter of its white ring, in pixels: a ~0.8 px ring keeps a blue dot
/// visible on a blue region, as in the Playground.
const DOT: f64 = 3.6;
const RING: f64 = 5.2;
/// Height in pixels of the bands the dots are ordered through: ~10 bands of ~25 points for a
/// panel of 250, so consecutive dots are a few pixels apart in both directions.
const DOT_BAND: i64 = 12;
/// Width of the legend line, so narrow grids (one or two columns) are widened to hold it.
const LEGEND_W: f64 = 470.0;

/// Draws the grid as one SVG document.
///
/// Fails (a [`ReportError::Figure`] naming the title) on: no panels, rows or columns that do not
/// match the labels, a non-positive or non-finite extent, a panel of resolution 0 or with
/// `values.len() != resolution²`, or a non-finite value or point.
pub fn boundary_grid_svg(grid: &BoundaryGrid) -> Result<String> {
    let error = |reason: String| ReportError::Figure { title: grid.title.clone(), reason };
    check(grid).map_err(error)?;
    let rows = grid.panels.len();
    let columns = grid.column_labels.len();
    // Row labels are right-aligned against the panels; ~7 px a character at 12 px.
    let longest = grid.row_labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let left = (longest as f64 * 7.0 + 20.0).clamp(24.0, 260.0);
    let width = (left + columns as f64 * (PANEL + GAP_X) - GAP_X + RIGHT).max(left + LEGEND_W).ceil();
    let row_h = PANEL + CAPTION_H + GAP_Y;
    let height = (TOP + rows as f64 * row_h + LEGEND_H).ceil();
    let colours: Vec<String> = (0..LEVELS).map(level_colour).collect();

    let mut svg = String::with_capacity(4096 + rows * columns * 6000);
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = write!(
        svg,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14">{}</text>"#,
        width / 2.0,
        escape_html(&grid.title)
    );
    svg.push('\n');
    for (c, label) in grid.column_labels.iter().enumerate() {
        let x = left + c as f64 * (PANEL + GAP_X) + PANEL / 2.0;
        let _ = write!(svg, r#"<text x="{x}" y="{}" text-anchor="middle">{}</text>"#, TOP - 8.0, escape_html(label));
    }
    svg.push('\n');
    for (r, row) in grid.panels.iter().enumerate() {
        let y = TOP + r as f64 * row_h;
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            left - 10.0,
            y + PANEL / 2.0 + 4.0,
            escape_html(&grid.row_labels[r])
        );
        for (c, panel) in row.iter().enumerate() {
            let x = left + c as f64 * (PANEL + GAP_X);
            match panel {
                Some(panel) => draw_panel(&mut svg, panel, grid.extent, (x, y), &format!("r{r}c{c}"), &colours),
                None => {
                    let _ = writeln!(
                        svg,
                        r##"<rect x="{x}" y="{y}" width="{PANEL}" height="{PANEL}" fill="none" stroke="#bbbbbb"/><text x="{}" y="{}" text-anchor="middle" fill="#999999">not run</text>"##,
                        x + PANEL / 2.0,
                        y + PANEL / 2.0 + 4.0
                    );
                }
            }
        }
    }
    draw_legend(&mut svg, left, height - LEGEND_H / 2.0, &colours);
    svg.push_str("</svg>\n");
    Ok(svg)
}

fn check(grid: &BoundaryGrid) -> Result<(), String> {
    if grid.panels.is_empty() || grid.panels.iter().all(|row| row.is_empty()) {
        return Err("no panels to draw".into());
    }
    let (rows, columns) = (grid.row_labels.len(), grid.column_labels.len());
    if grid.panels.len() != rows || grid.panels.iter().any(|row| row.len() != columns) {
        let shape: Vec<String> = grid.panels.iter().map(|row| row.len().to_string()).collect();
        return Err(format!(
            "panels do not match the labels: {rows} row labels × {columns} column labels, but rows of [{}] panels",
            shape.join(", ")
        ));
    }
    if !(grid.extent.is_finite() && grid.extent > 0.0) {
        return Err(format!("extent {} is not a positive number", grid.extent));
    }
    for (r, row) in grid.panels.iter().enumerate() {
        for (c, panel) in row.iter().enumerate() {
            let Some(panel) = panel else { continue };
            let here = format!("panel \"{}\" × \"{}\"", grid.row_labels[r], grid.column_labels[c]);
            let n = panel.resolution;
            if n == 0 {
                return Err(format!("{here}: resolution 0"));
            }
            if panel.values.len() != n.saturating_mul(n) {
                return Err(format!("{here}: {} values for a {n} × {n} grid", panel.values.len()));
            }
            if let Some(i) = panel.values.iter().position(|v| !v.is_finite()) {
                return Err(format!("{here}: non-finite value {} at row {}, column {}", panel.values[i], i / n, i % n));
            }
            if let Some(i) = panel.points.iter().position(|&(x, y, l)| !(x.is_finite() && y.is_finite() && l.is_finite())) {
                return Err(format!("{here}: point {i} is not finite: {:?}", panel.points[i]));
            }
        }
    }
    Ok(())
}

/// Which of the [`LEVELS`] colours a value falls in: [-1, 1] cut into equal steps.
fn level(value: f64) -> usize {
    let t = (value.clamp(-1.0, 1.0) + 1.0) / 2.0;
    ((t * LEVELS as f64) as usize).min(LEVELS - 1)
}

/// The colour of a level: evenly spaced from exactly −1 (orange) to exactly +1 (blue) through
/// the light middle, so the outermost levels are the Playground's own colours.
fn level_colour(level: usize) -> String {
    let t = -1.0 + 2.0 * level as f64 / (LEVELS - 1) as f64;
    let (end, s) = if t < 0.0 { (NEGATIVE, -t) } else { (POSITIVE, t) };
    let mix = |a: f64, b: f64| (a + (b - a) * s).round() as u8;
    format!("#{:02x}{:02x}{:02x}", mix(MIDDLE.0, end.0), mix(MIDDLE.1, end.1), mix(MIDDLE.2, end.2))
}

/// A number with at most three decimals and no trailing zeros, for transforms.
fn num(value: f64) -> String {
    let text = format!("{value:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.into()
    }
}

/// A path's `d` of horizontal segments, each `M x y h len` written relative to where the last
/// one ended (`m dx dy h len`), which saves a byte or two a segment over absolute coordinates
/// when consecutive segments are near each other (the next row of a band, the next dot).
#[derive(Debug, Clone, Default)]
struct Segments {
    d: String,
    pen: Option<(i64, i64)>,
}

impl Segments {
    fn push(&mut self, (x, y): (i64, i64), len: i64) {
        let _ = match self.pen {
            None => write!(self.d, "M{x} {y}h{len}"),
            // No separator is needed before a minus sign.
            Some((px, py)) => {
                let (dx, dy) = (x - px, y - py);
                write!(self.d, "m{dx}{}{dy}h{len}", if dy < 0 { "" } else { " " })
            }
        };
        self.pen = Some((x + len, y));
    }
}

/// One panel with its top-left corner at `origin`: the colour runs, the dots, the border and
/// the caption. `id` prefixes the ids of the point paths.
fn draw_panel(svg: &mut String, panel: &BoundaryPanel, extent: f64, origin: (f64, f64), id: &str, colours: &[String]) {
    let (x0, y0) = origin;
    let n = panel.resolution;
    // Runs in cell units: the group maps cell (col, row) to pixels and shifts by half a cell so
    // that a run's centre line lies at a whole row number; the stroke is one cell thick.
    let mut runs = vec![Segments::default(); LEVELS];
    for (row, cells) in panel.values.chunks(n).enumerate() {
        let mut start = 0;
        while start < n {
            let current = level(cells[start]);
            let mut end = start + 1;
            while end < n && level(cells[end]) == current {
                end += 1;
            }
            runs[current].push((start as i64, row as i64), (end - start) as i64);
            start = end;
        }
    }
    let _ = write!(
        svg,
        r#"<g transform="translate({} {}) scale({}) translate(0 .5)" fill="none" stroke-width="1" shape-rendering="crispEdges">"#,
        num(x0),
        num(y0),
        num(PANEL / n as f64)
    );
    for (runs, colour) in runs.iter().zip(colours).filter(|(runs, _)| !runs.d.is_empty()) {
        let _ = write!(svg, r#"<path stroke="{colour}" d="{}"/>"#, runs.d);
    }
    svg.push_str("</g>\n");

    // Whole pixels (a dot is 3.6 px wide), negative class first, in serpentine order through
    // horizontal bands so that consecutive relative moves are short; repeated pixels are dropped.
    let mut pixels: Vec<(usize, i64, i64)> = Vec::with_capacity(panel.points.len());
    for &(x, y, label) in &panel.points {
        let px = (x + extent) / (2.0 * extent) * PANEL;
        let py = (extent - y) / (2.0 * extent) * PANEL;
        if (0.0..=PANEL).contains(&px) && (0.0..=PANEL).contains(&py) {
            pixels.push((usize::from(label > 0.0), px.round() as i64, py.round() as i64));
        }
    }
    pixels.sort_unstable_by_key(|&(class, x, y)| {
        let band = y / DOT_BAND;
        (class, band, if band % 2 == 0 { x } else { -x }, y)
    });
    pixels.dedup();
    let mut dots = [Segments::default(), Segments::default()];
    for (class, x, y) in pixels {
        dots[class].push((x, y), 0);
    }
    let dots = dots.map(|segments| segments.d);
    if dots.iter().any(|d| !d.is_empty()) {
        let _ = write!(
            svg,
            r#"<g transform="translate({} {})" fill="none" stroke-linecap="round"><g stroke="white" stroke-width="{RING}">"#,
            num(x0),
            num(y0)
        );
        for (d, class) in dots.iter().zip(["n", "p"]).filter(|(d, _)| !d.is_empty()) {
            let _ = write!(svg, r#"<path id="{id}{class}" d="{d}"/>"#);
        }
        svg.push_str("</g>");
        for (d, (class, colour)) in dots.iter().zip([("n", &colours[0]), ("p", &colours[LEVELS - 1])]) {
            if !d.is_empty() {
                let _ = write!(svg, r##"<use href="#{id}{class}" stroke="{colour}" stroke-width="{DOT}"/>"##);
            }
        }
        svg.push_str("</g>\n");
    }
    let _ = write!(
        svg,
        r##"<rect x="{}" y="{}" width="{PANEL}" height="{PANEL}" fill="none" stroke="#999999" stroke-width=".5"/>"##,
        num(x0),
        num(y0)
    );
    if !panel.caption.is_empty() {
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle" font-size="11">{}</text>"#,
            num(x0 + PANEL / 2.0),
            num(y0 + PANEL + 13.0),
            escape_html(&panel.caption)
        );
    }
    svg.push('\n');
}

/// One line: the colour scale from −1 to +1, then the two point classes.
fn draw_legend(svg: &mut String, left: f64, middle: f64, colours: &[String]) {
    const SWATCH: f64 = 14.0;
    let text_y = middle + 4.0;
    let _ = write!(svg, r#"<text x="{}" y="{text_y}" text-anchor="end">−1</text>"#, left - 4.0);
    for (i, colour) in colours.iter().enumerate() {
        let _ = write!(
            svg,
            r#"<rect x="{}" y="{}" width="{SWATCH}" height="10" fill="{colour}"/>"#,
            left + i as f64 * SWATCH,
            middle - 5.0
        );
    }
    let after = left + LEVELS as f64 * SWATCH;
    let _ = write!(svg, r#"<text x="{}" y="{text_y}">+1   network output</text>"#, after + 4.0);
    let dot = |svg: &mut String, x: f64, colour: &str, text: &str| {
        let _ = write!(
            svg,
            r#"<circle cx="{x}" cy="{middle}" r="{}" fill="{colour}" stroke="white"/><text x="{}" y="{text_y}">{text}</text>"#,
            DOT / 2.0 + 0.5,
            x + 8.0
        );
    };
    dot(svg, after + 150.0, &colours[LEVELS - 1], "positive point");
    dot(svg, after + 260.0, &colours[0], "negative point");
    svg.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic stream of numbers in [0, 1), so the test figures do not depend on a crate.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    fn panel(resolution: usize, f: impl Fn(f64, f64) -> f64, extent: f64) -> BoundaryPanel {
        let centre = |i: usize| -extent + (i as f64 + 0.5) * 2.0 * extent / resolution as f64;
        let mut values = Vec::with_capacity(resolution * resolution);
        for row in 0..resolution {
            for col in 0..resolution {
                values.push(f(centre(col), -centre(row)));
            }
        }
        BoundaryPanel { caption: "test loss 0.012".into(), resolution, values, points: Vec::new() }
    }

    fn halves() -> BoundaryGrid {
        let mut left_right = panel(30, |x, _| if x < 0.0 { -1.0 } else { 1.0 }, 6.0);
        left_right.points = vec![(-3.0, 2.0, -1.0), (3.0, -2.0, 1.0), (50.0, 0.0, 1.0)];
        BoundaryGrid {
            title: "boundaries <test>".into(),
            extent: 6.0,
            row_labels: vec!["1 layer".into()],
            column_labels: vec!["tanh".into(), "relu".into()],
            panels: vec![vec![Some(left_right), None]],
        }
    }

    /// The `d` attribute of every colour-level path.
    fn level_paths(svg: &str) -> Vec<(String, String)> {
        svg.split(r#"<path stroke=""#)
            .skip(1)
            .map(|rest| {
                let (colour, rest) = rest.split_once('"').unwrap();
                let d = rest.split_once(r#"d=""#).unwrap().1.split_once('"').unwrap().0;
                (colour.to_string(), d.to_string())
            })
            .collect()
    }

    /// Reads a `d` written by [`Segments`] back into absolute `(x, y, len)` segments.
    fn decode(d: &str) -> Vec<(i64, i64, i64)> {
        let mut tokens = Vec::new();
        let mut number = String::new();
        for ch in d.chars() {
            if ch.is_ascii_digit() || (ch == '-' && number.is_empty()) {
                number.push(ch);
                continue;
            }
            if !number.is_empty() {
                tokens.push(std::mem::take(&mut number));
            }
            if ch == '-' {
                number.push(ch);
            } else if ch != ' ' {
                tokens.push(ch.to_string());
            }
        }
        tokens.extend((!number.is_empty()).then_some(number));
        let mut segments = Vec::new();
        let mut pen = (0, 0);
        for chunk in tokens.chunks(5) {
            let [m, x, y, h, len] = chunk else { panic!("bad d {d}: {chunk:?}") };
            assert_eq!(h, "h", "{d}");
            let (x, y, len): (i64, i64, i64) = (x.parse().unwrap(), y.parse().unwrap(), len.parse().unwrap());
            let at = match m.as_str() {
                "M" => (x, y),
                "m" => (pen.0 + x, pen.1 + y),
                other => panic!("unexpected {other} in {d}"),
            };
            segments.push((at.0, at.1, len));
            pen = (at.0 + len, at.1);
        }
        segments
    }

    #[test]
    fn relative_segments_decode_to_where_they_were_put() {
        let put = [(3, 40, 0), (90, 7, 0), (90, 7, 5), (0, 0, 0), (119, 120, 1), (10, 100, 0)];
        let mut segments = Segments::default();
        for (x, y, len) in put {
            segments.push((x, y), len);
        }
        assert_eq!(decode(&segments.d), put, "{}", segments.d);
    }

    #[test]
    fn two_halves_make_two_runs_per_row_in_the_end_colours() {
        let svg = boundary_grid_svg(&halves()).expect("figure");
        let paths = level_paths(&svg);
        assert_eq!(paths.len(), 2, "{paths:?}");
        assert_eq!(paths[0].0, "#f59322", "−1 is the Playground's orange");
        assert_eq!(paths[1].0, "#0877bd", "+1 is the Playground's blue");
        for (_, d) in &paths {
            assert_eq!(d.matches(['M', 'm']).count(), 30, "one run per row and colour: {d}");
        }
        assert!(paths[0].1.starts_with("M0 0h15m-15 1h15m-15 1h15"), "{}", paths[0].1);
        assert!(paths[1].1.starts_with("M15 0h15m-15 1h15"), "{}", paths[1].1);
        let rows: Vec<i64> = (0..30).collect();
        for ((_, d), start) in paths.iter().zip([0, 15]) {
            let segments = decode(d);
            assert_eq!(segments.iter().map(|s| s.1).collect::<Vec<_>>(), rows);
            assert!(segments.iter().all(|&(x, _, len)| x == start && len == 15), "{segments:?}");
        }
        // Two points inside the square, one outside it is skipped; one white ring and one
        // coloured copy per class.
        assert_eq!(svg.matches("h0").count(), 2);
        assert!(svg.contains(r##"<use href="#r0c0n" stroke="#f59322""##));
        assert!(svg.contains(r##"<use href="#r0c0p" stroke="#0877bd""##));
        assert!(svg.contains(r#"<path id="r0c0p" d="M90 80h0"/>"#), "(3, −2) lands at 3/4 across, 2/3 down");
        assert!(svg.contains(">test loss 0.012<") && svg.contains(">1 layer<") && svg.contains(">relu<"));
        assert!(svg.contains("boundaries &lt;test&gt;"));
    }

    #[test]
    fn a_missing_panel_is_marked_not_run() {
        let svg = boundary_grid_svg(&halves()).expect("figure");
        assert_eq!(svg.matches(">not run<").count(), 1);
        let mut grid = halves();
        grid.panels[0][0] = None;
        let svg = boundary_grid_svg(&grid).expect("figure of only missing panels");
        assert_eq!(svg.matches(">not run<").count(), 2);
        assert!(level_paths(&svg).is_empty());
    }

    #[test]
    fn output_is_one_balanced_svg_document() {
        let svg = boundary_grid_svg(&halves()).expect("figure");
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<svg").count(), 1);
        assert_eq!(svg.matches("</svg>").count(), 1);
        assert_eq!(svg.matches("<g").count(), svg.matches("</g>").count());
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
        assert!(svg.contains("network output"), "legend");
        // Every element is closed: each `<name` opens either `/>` or a matching `</name>`.
        for name in ["path", "rect", "use", "circle"] {
            let opened = svg.matches(&format!("<{name} ")).count();
            let closed = svg.split(&format!("<{name} ")).skip(1).filter(|s| s.split_once('>').unwrap().0.ends_with('/')).count();
            assert_eq!(opened, closed, "<{name}> elements self-close");
        }
    }

    #[test]
    fn levels_split_at_zero_and_clamp() {
        assert_eq!(level(-5.0), 0);
        assert_eq!(level(-1.0), 0);
        assert_eq!(level(-1e-9), LEVELS / 2 - 1);
        assert_eq!(level(0.0), LEVELS / 2);
        assert_eq!(level(1.0), LEVELS - 1);
        assert_eq!(level(7.0), LEVELS - 1);
        assert_eq!(level_colour(0), "#f59322");
        assert_eq!(level_colour(LEVELS - 1), "#0877bd");
    }

    #[test]
    fn a_four_by_seven_grid_of_busy_panels_stays_small() {
        // Smooth but varied outputs like a trained tanh network's (lines, circles, XOR,
        // spirals, with random tilts), and 250 random points per panel.
        let mut rng = Lcg(7);
        let extent = 6.0;
        let mut panels = Vec::new();
        for r in 0..4 {
            let mut row = Vec::new();
            for c in 0..7 {
                let (a, b, k) = (rng.next() * 2.0 - 1.0, rng.next() * 2.0 - 1.0, 0.3 + rng.next());
                let f = move |x: f64, y: f64| match (r * 7 + c) % 4 {
                    0 => (k * (a * x + b * y + 0.5)).tanh(),
                    1 => (k * (9.0 + a - x * x / 2.0 - y * y / 2.0)).tanh(),
                    2 => (k * x * y / 3.0 + a).tanh(),
                    _ => ((x.hypot(y) + 2.0 * (y.atan2(x) + b)).sin() * 2.0 * k).tanh(),
                };
                let mut p = panel(30, f, extent);
                p.points = (0..250)
                    .map(|_| {
                        let (x, y) = (rng.next() * 12.0 - 6.0, rng.next() * 12.0 - 6.0);
                        (x, y, if f(x, y) + 0.3 * (rng.next() - 0.5) > 0.0 { 1.0 } else { -1.0 })
                    })
                    .collect();
                row.push(Some(p));
            }
            panels.push(row);
        }
        let grid = BoundaryGrid {
            title: "Decision boundaries: depth × activation".into(),
            extent,
            row_labels: (1..=4).map(|d| format!("{d} hidden layers")).collect(),
            column_labels: (0..7).map(|c| format!("setting {c}")).collect(),
            panels,
        };
        let svg = boundary_grid_svg(&grid).expect("figure");
        eprintln!("4 × 7 grid of 30 × 30 panels, 250 points each: {} bytes", svg.len());
        assert!(svg.len() < 150_000, "{} bytes", svg.len());
        let drawn: usize = svg
            .split(r#"<path id=""#)
            .skip(1)
            .map(|rest| decode(rest.split_once(r#"d=""#).unwrap().1.split_once('"').unwrap().0).len())
            .sum();
        assert!(drawn > 28 * 240, "all but a few points sharing a pixel are drawn: {drawn}");
        assert!(level_paths(&svg).len() > 28 * 2, "several levels per panel");
    }

    #[test]
    fn each_bad_input_is_refused_naming_the_figure() {
        let refused = |grid: BoundaryGrid, expect: &str| {
            let message = boundary_grid_svg(&grid).expect_err(expect).to_string();
            assert!(message.contains("boundaries <test>"), "{message}");
            assert!(message.contains(expect), "{message} should say {expect}");
        };
        refused(BoundaryGrid { panels: Vec::new(), row_labels: Vec::new(), ..halves() }, "no panels");
        refused(BoundaryGrid { panels: vec![Vec::new()], ..halves() }, "no panels");

        let mut grid = halves();
        grid.row_labels.push("2 layers".into());
        refused(grid, "2 row labels × 2 column labels");
        let mut grid = halves();
        grid.column_labels.pop();
        refused(grid, "1 column labels, but rows of [2]");

        let mut grid = halves();
        grid.extent = 0.0;
        refused(grid, "extent 0");

        let mut grid = halves();
        grid.panels[0][0].as_mut().unwrap().resolution = 0;
        refused(grid, "panel \"1 layer\" × \"tanh\": resolution 0");
        let mut grid = halves();
        grid.panels[0][0].as_mut().unwrap().values.pop();
        refused(grid, "899 values for a 30 × 30 grid");
        let mut grid = halves();
        grid.panels[0][0].as_mut().unwrap().values[31] = f64::NAN;
        refused(grid, "non-finite value NaN at row 1, column 1");
        let mut grid = halves();
        grid.panels[0][0].as_mut().unwrap().points[1].0 = f64::INFINITY;
        refused(grid, "point 1 is not finite");
        let mut grid = halves();
        grid.panels[0][0].as_mut().unwrap().points[0].2 = f64::NAN;
        refused(grid, "point 0 is not finite");
    }
}
