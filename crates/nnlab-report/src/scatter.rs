//! SVG scatter plots of labelled 2-D projections: one colour per class, a legend beside the
//! plot, and optionally each class's hull or ellipse outline.
//!
//! plotters draws the frame, ticks, titles and legend; the markers and outlines are then
//! written straight into the SVG, grouped by class with shared attributes, because plotters
//! writes every marker as a standalone element with integer coordinates and seven attributes
//! (~110 bytes each) — too much for 10,000 points.

use std::fmt::Write as _;
use std::io;

use plotters::prelude::*;

use crate::error::{ReportError, Result};

const SIZE: (u32, u32) = (720, 560);
/// Width of the legend column to the right of the plot.
const LEGEND_WIDTH: u32 = 130;
const FONT: &str = "sans-serif";
const MARKER_DIAMETER: f64 = 3.2;
/// Fraction of the data span added on each side so markers do not sit on the frame.
const MARGIN: f64 = 0.04;

/// Tableau's ten categorical colours (matplotlib's `tab10`), the usual palette for the ten
/// MNIST digits; classes beyond ten reuse them in order.
pub(crate) const CLASS_PALETTE: [RGBColor; 10] = [
    RGBColor(0x1F, 0x77, 0xB4), // blue
    RGBColor(0xFF, 0x7F, 0x0E), // orange
    RGBColor(0x2C, 0xA0, 0x2C), // green
    RGBColor(0xD6, 0x27, 0x28), // red
    RGBColor(0x94, 0x67, 0xBD), // purple
    RGBColor(0x8C, 0x56, 0x4B), // brown
    RGBColor(0xE3, 0x77, 0xC2), // pink
    RGBColor(0x7F, 0x7F, 0x7F), // grey
    RGBColor(0xBC, 0xBD, 0x22), // olive
    RGBColor(0x17, 0xBE, 0xCF), // cyan
];

/// A labelled 2-D point cloud, e.g. a t-SNE or PCA projection of test images.
#[derive(Debug, Clone)]
pub struct ScatterChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Legend name of each class; the index is the label.
    pub class_names: Vec<String>,
    pub points: Vec<[f64; 2]>,
    /// Class of each point, `< class_names.len()`.
    pub labels: Vec<u8>,
    /// Convex-hull outline per class index (vertices in order, closing edge implied), drawn as
    /// a solid closed line in the class colour; an empty outline is skipped.
    pub hulls: Option<Vec<Vec<[f64; 2]>>>,
    /// Ellipse outline per class index, drawn as a dashed closed line.
    pub ellipses: Option<Vec<Vec<[f64; 2]>>>,
}

/// Draws `chart` as a 720×560 SVG document.
///
/// Fails, naming the chart, when there is nothing to draw or it cannot be drawn: no points,
/// points and labels of different lengths, a label without a class name, more outlines than
/// classes, or a non-finite coordinate.
pub fn scatter_svg(chart: &ScatterChart) -> Result<String> {
    let error = |reason: String| ReportError::Figure { title: chart.title.clone(), reason };
    check_drawable(chart).map_err(error)?;
    let (x, y) = ranges(chart);
    let mut svg = String::new();
    let frame = draw_frame(chart, x.clone(), y.clone(), &mut svg).map_err(|e| error(e.to_string()))?;
    let body = data_elements(chart, &frame);
    let end = svg.rfind("</svg>").ok_or_else(|| error("plotters wrote no closing </svg>".to_string()))?;
    svg.insert_str(end, &body);
    Ok(svg)
}

fn check_drawable(chart: &ScatterChart) -> Result<(), String> {
    if chart.points.is_empty() {
        return Err("no points to draw".to_string());
    }
    if chart.points.len() != chart.labels.len() {
        return Err(format!("{} points but {} labels", chart.points.len(), chart.labels.len()));
    }
    let finite = |p: &[f64; 2]| p[0].is_finite() && p[1].is_finite();
    if let Some(index) = chart.points.iter().position(|p| !finite(p)) {
        return Err(format!("point {index} has a non-finite coordinate: {:?}", chart.points[index]));
    }
    if let Some(index) = chart.labels.iter().position(|&l| usize::from(l) >= chart.class_names.len()) {
        return Err(format!(
            "point {index} has label {} but there are {} class names",
            chart.labels[index],
            chart.class_names.len()
        ));
    }
    for (kind, outlines) in [("hull", &chart.hulls), ("ellipse", &chart.ellipses)] {
        let Some(outlines) = outlines else { continue };
        if outlines.len() > chart.class_names.len() {
            return Err(format!("{} {kind} outlines for {} classes", outlines.len(), chart.class_names.len()));
        }
        for (class, outline) in outlines.iter().enumerate() {
            if let Some(vertex) = outline.iter().position(|p| !finite(p)) {
                return Err(format!("{kind} of class {class}: vertex {vertex} is not finite"));
            }
        }
    }
    Ok(())
}

/// Axis ranges around every point and outline vertex, with a margin.
fn ranges(chart: &ScatterChart) -> (std::ops::Range<f64>, std::ops::Range<f64>) {
    let outlines = [&chart.hulls, &chart.ellipses].into_iter().flatten().flatten().flatten();
    let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
    for p in chart.points.iter().chain(outlines) {
        for axis in 0..2 {
            lo[axis] = lo[axis].min(p[axis]);
            hi[axis] = hi[axis].max(p[axis]);
        }
    }
    let padded = |lo: f64, hi: f64| {
        let span = hi - lo;
        let pad = if span > 0.0 { span * MARGIN } else { lo.abs().max(1.0) * 0.05 };
        (lo - pad)..(hi + pad)
    };
    (padded(lo[0], hi[0]), padded(lo[1], hi[1]))
}

/// Where data coordinates land in the SVG: pixel = offset + scale × value, per axis.
struct Frame {
    x: (f64, f64),
    y: (f64, f64),
}

impl Frame {
    fn pixel(&self, p: &[f64; 2]) -> (f64, f64) {
        (self.x.0 + self.x.1 * p[0], self.y.0 + self.y.1 * p[1])
    }
}

type DrawError = DrawingAreaErrorKind<io::Error>;

/// Draws title, axes, grid and legend, and returns the data-to-pixel mapping of the plot.
fn draw_frame(
    chart: &ScatterChart,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    svg: &mut String,
) -> Result<Frame, DrawError> {
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let (plot_area, legend_area) = root.split_horizontally(SIZE.0 - LEGEND_WIDTH);
    let mut plot = ChartBuilder::on(&plot_area)
        .caption(&chart.title, (FONT, 18))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(x.clone(), y.clone())?;
    plot.configure_mesh()
        .x_desc(chart.x_label.as_str())
        .y_desc(chart.y_label.as_str())
        .x_labels(8)
        .y_labels(8)
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 13))
        .bold_line_style(BLACK.mix(0.08))
        .light_line_style(TRANSPARENT)
        .draw()?;

    // The mapping from two opposite corners; plotters rounds to whole pixels, markers need not.
    let (x0, y0) = plot.backend_coord(&(x.start, y.start));
    let (x1, y1) = plot.backend_coord(&(x.end, y.end));
    let scale_x = f64::from(x1 - x0) / (x.end - x.start);
    let scale_y = f64::from(y1 - y0) / (y.end - y.start);
    let frame = Frame { x: (f64::from(x0) - scale_x * x.start, scale_x), y: (f64::from(y0) - scale_y * y.start, scale_y) };

    let row_height = 20;
    let top = 50;
    for (class, name) in chart.class_names.iter().enumerate() {
        let row = top + row_height * class as i32;
        legend_area.draw(&Circle::new((12, row), 5, class_colour(class).filled()))?;
        legend_area.draw(&Text::new(name.as_str(), (24, row - 7), (FONT, 13).into_font().color(&BLACK)))?;
    }
    root.present()?;
    Ok(frame)
}

fn class_colour(class: usize) -> RGBColor {
    CLASS_PALETTE[class % CLASS_PALETTE.len()]
}

fn hex(colour: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", colour.0, colour.1, colour.2)
}

/// One path of dots per class, then the outlines above them. Each dot is a zero-length segment
/// with a round cap (`M x y h0`, ~14 bytes) rather than a `<circle>` (~40 bytes): a figure of the
/// 10,000 MNIST test images stays near 150 kB, which matters for the committed reference reports.
fn data_elements(chart: &ScatterChart, frame: &Frame) -> String {
    let mut body = String::with_capacity(16 * chart.points.len() + 1024);
    for class in 0..chart.class_names.len() {
        let mut members = chart.points.iter().zip(&chart.labels).filter(|(_, &l)| usize::from(l) == class).peekable();
        if members.peek().is_none() {
            continue;
        }
        let _ = write!(
            body,
            r#"<path class="markers" data-class="{class}" stroke="{}" stroke-opacity="0.7" stroke-width="{}" stroke-linecap="round" fill="none" d=""#,
            hex(class_colour(class)),
            MARKER_DIAMETER
        );
        for (point, _) in members {
            let (px, py) = frame.pixel(point);
            let _ = write!(body, "M{px:.1} {py:.1}h0");
        }
        body.push_str("\"/>\n");
    }
    for (kind, dash, outlines) in [("hull", "", &chart.hulls), ("ellipse", r#" stroke-dasharray="6 3""#, &chart.ellipses)] {
        let Some(outlines) = outlines else { continue };
        for (class, outline) in outlines.iter().enumerate().filter(|(_, o)| !o.is_empty()) {
            let vertices: Vec<String> = outline
                .iter()
                .map(|p| {
                    let (px, py) = frame.pixel(p);
                    format!("{px:.1},{py:.1}")
                })
                .collect();
            let _ = writeln!(
                body,
                r#"<polygon class="{kind}" data-class="{class}" points="{}" fill="none" stroke="{}" stroke-width="1.5"{dash}/>"#,
                vertices.join(" "),
                hex(class_colour(class))
            );
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(points_per_class: usize) -> ScatterChart {
        let mut points = Vec::new();
        let mut labels = Vec::new();
        for class in 0..10u8 {
            for i in 0..points_per_class {
                let angle = f64::from(class) * 0.628 + i as f64 * 0.001;
                let radius = 10.0 + (i % 17) as f64 * 0.3;
                points.push([radius * angle.cos(), radius * angle.sin()]);
                labels.push(class);
            }
        }
        ScatterChart {
            title: "t-SNE of the raw test images".to_string(),
            x_label: "t-SNE 1".to_string(),
            y_label: "t-SNE 2".to_string(),
            class_names: (0..10).map(|d| format!("digit {d}")).collect(),
            points,
            labels,
            hulls: None,
            ellipses: None,
        }
    }

    fn flat(svg: &str) -> String {
        svg.replace('\n', "")
    }

    #[test]
    fn one_marker_per_point_and_a_legend() {
        let chart = chart(30);
        let svg = flat(&scatter_svg(&chart).expect("chart"));
        assert!(svg.trim_start().starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("h0").count(), chart.points.len());
        assert_eq!(svg.matches(r#"<path class="markers""#).count(), 10);
        for (d, colour) in CLASS_PALETTE.iter().enumerate() {
            assert!(svg.contains(&format!(">digit {d}<")), "legend entry {d}");
            assert!(svg.contains(&hex(*colour)));
        }
        assert!(svg.contains("t-SNE of the raw test images") && svg.contains(">t-SNE 2<"));
        assert!(!svg.contains("<polygon"), "no outlines unless asked");
    }

    #[test]
    fn ten_thousand_points_stay_small() {
        // ~14 bytes a marker: the 10,000 MNIST test images make a ~150 kB figure.
        let svg = scatter_svg(&chart(1000)).expect("chart");
        assert!(svg.len() < 170_000, "{} bytes", svg.len());
    }

    #[test]
    fn outlines_are_drawn_when_given() {
        let mut chart = chart(5);
        let square = vec![[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]];
        let mut hulls = vec![Vec::new(); 10];
        hulls[3] = square.clone();
        chart.hulls = Some(hulls);
        chart.ellipses = Some(vec![square.clone(), square]);
        let svg = scatter_svg(&chart).expect("chart");
        assert_eq!(svg.matches(r#"<polygon class="hull""#).count(), 1);
        assert!(svg.contains(r#"<polygon class="hull" data-class="3" points="#));
        assert!(svg.contains(&format!(r#"stroke="{}" stroke-width="1.5"/>"#, hex(CLASS_PALETTE[3]))));
        assert_eq!(svg.matches(r#"<polygon class="ellipse""#).count(), 2);
        assert_eq!(svg.matches("stroke-dasharray").count(), 2);
    }

    #[test]
    fn outlines_widen_the_axes() {
        let mut chart = chart(3);
        chart.ellipses = Some(vec![vec![[100.0, 100.0], [101.0, 100.0], [100.0, 101.0]]]);
        let svg = scatter_svg(&chart).expect("chart");
        // Every drawn coordinate lies inside the 720 × 560 canvas.
        for number in svg.split(['"', ' ', ',']).filter_map(|t| t.parse::<f64>().ok()) {
            assert!((-1.0..=720.0).contains(&number), "{number}");
        }
    }

    #[test]
    fn mismatched_or_bad_input_is_an_error() {
        let mut short = chart(2);
        short.labels.pop();
        let message = scatter_svg(&short).expect_err("mismatch").to_string();
        assert!(message.contains("t-SNE of the raw test images") && message.contains("20 points but 19 labels"), "{message}");

        let mut unnamed = chart(2);
        unnamed.class_names.truncate(9);
        assert!(scatter_svg(&unnamed).expect_err("label 9").to_string().contains("label 9"));

        let mut nan = chart(2);
        nan.points[4][1] = f64::NAN;
        assert!(scatter_svg(&nan).expect_err("nan").to_string().contains("point 4"));

        let mut empty = chart(0);
        empty.labels.clear();
        assert!(scatter_svg(&empty).expect_err("empty").to_string().contains("no points"));

        let mut too_many = chart(1);
        too_many.hulls = Some(vec![Vec::new(); 11]);
        assert!(scatter_svg(&too_many).is_err());
    }

    #[test]
    fn a_single_point_is_drawn() {
        let chart = ScatterChart { points: vec![[3.0, 3.0]], labels: vec![0], class_names: vec!["only".to_string()], ..chart(0) };
        let svg = scatter_svg(&chart).expect("chart");
        assert_eq!(svg.matches("h0").count(), 1, "one marker");
        assert_eq!(svg.matches("<circle").count(), 1, "the legend swatch");
    }
}
