//! SVG line charts of measured curves (per-epoch histories) and sweeps (one point per setting),
//! each series drawn as its mean with the spread over replicates around it.

mod axes;
mod draw;

use crate::error::{ReportError, Result};

/// A line chart: one or more series over a shared x axis.
#[derive(Debug, Clone)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Logarithmic x axis, for sweeps over orders of magnitude; every x must then be > 0.
    /// Spread is drawn as error bars on such charts and as a shaded ±std band otherwise.
    pub log_x: bool,
    pub series: Vec<Series>,
}

/// One curve: a legend label and its points.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub points: Vec<Point>,
    /// Drawn dashed, e.g. for validation curves beside solid training curves.
    pub dashed: bool,
}

/// A mean over replicates at one x, with their standard deviation when there were several.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub x: f64,
    pub mean: f64,
    pub std: Option<f64>,
}

/// Draws `chart` as a 640×400 SVG document.
///
/// Fails, naming the chart, when there is nothing to draw or a value cannot be drawn:
/// no points, a non-finite value, a negative std, or x ≤ 0 on a log axis.
pub fn line_chart_svg(chart: &LineChart) -> Result<String> {
    let error = |reason: String| ReportError::Figure { title: chart.title.clone(), reason };
    check_drawable(chart).map_err(error)?;
    let series = sorted_by_x(&chart.series);
    let axes = axes::Axes::fit(&series, chart.log_x);
    draw::svg(chart, &series, &axes).map_err(|e| error(e.to_string()))
}

fn check_drawable(chart: &LineChart) -> Result<(), String> {
    if chart.series.iter().all(|series| series.points.is_empty()) {
        return Err("no points to draw".to_string());
    }
    for series in &chart.series {
        for (index, point) in series.points.iter().enumerate() {
            let at = || format!("series \"{}\" point {index}", series.label);
            let finite = point.x.is_finite() && point.mean.is_finite() && point.std.is_none_or(f64::is_finite);
            if !finite {
                return Err(format!("{} has a non-finite value: {point:?}", at()));
            }
            if point.std.is_some_and(|std| std < 0.0) {
                return Err(format!("{} has a negative std: {point:?}", at()));
            }
            if chart.log_x && point.x <= 0.0 {
                return Err(format!("{} has x = {} on a log axis", at(), point.x));
            }
        }
    }
    Ok(())
}

/// The series with their points in x order, so lines and bands never double back.
fn sorted_by_x(series: &[Series]) -> Vec<Series> {
    series
        .iter()
        .map(|series| {
            let mut series = series.clone();
            series.points.sort_by(|a, b| a.x.total_cmp(&b.x));
            series
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(x: f64, mean: f64, std: Option<f64>) -> Point {
        Point { x, mean, std }
    }

    fn history_chart() -> LineChart {
        let epochs = 1..=12;
        LineChart {
            title: "a1.dense_relu accuracy".to_string(),
            x_label: "epoch".to_string(),
            y_label: "accuracy".to_string(),
            log_x: false,
            series: vec![
                Series {
                    label: "training".to_string(),
                    points: epochs.clone().map(|e| point(f64::from(e), 0.9 + 0.008 * f64::from(e), Some(0.002))).collect(),
                    dashed: false,
                },
                Series {
                    label: "validation".to_string(),
                    points: epochs.map(|e| point(f64::from(e), 0.91 + 0.005 * f64::from(e), Some(0.004))).collect(),
                    dashed: true,
                },
            ],
        }
    }

    fn sweep_chart() -> LineChart {
        LineChart {
            title: "Test accuracy vs L2 factor".to_string(),
            x_label: "L2 factor".to_string(),
            y_label: "test accuracy".to_string(),
            log_x: true,
            series: vec![Series {
                label: "a3.l2".to_string(),
                points: [1e-5, 1e-4, 1e-3, 1e-2].iter().map(|&l| point(l, 0.98 - l, Some(0.003))).collect(),
                dashed: false,
            }],
        }
    }

    /// plotters writes each `<text>` body on its own line; joining the lines lets tests look for `>label<`.
    fn flat(svg: &str) -> String {
        svg.replace('\n', "")
    }

    fn assert_svg(svg: &str) {
        assert!(svg.trim_start().starts_with("<svg"), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"), "{svg}");
    }

    #[test]
    fn history_chart_has_title_legend_and_a_line_per_series() {
        let chart = history_chart();
        let svg = flat(&line_chart_svg(&chart).expect("chart"));
        assert_svg(&svg);
        assert!(svg.contains("a1.dense_relu accuracy"));
        assert!(svg.contains(">training<") && svg.contains(">validation<"));
        assert!(svg.contains(">epoch<") && svg.contains(">accuracy<"));
        for colour in draw::PALETTE.iter().take(chart.series.len()) {
            let hex = format!("#{:02X}{:02X}{:02X}", colour.0, colour.1, colour.2);
            assert!(svg.contains(&format!("stroke=\"{hex}\"")), "{hex}");
        }
        // Two mean lines and the solid legend swatch; the dashed line is many short polylines.
        assert!(svg.matches("<polyline").count() >= 3);
        // One ±std band per series.
        assert_eq!(svg.matches("<polygon").count(), chart.series.len());
    }

    #[test]
    fn epoch_axis_has_integer_ticks() {
        let svg = flat(&line_chart_svg(&history_chart()).expect("chart"));
        assert!(svg.contains(">12<"), "last epoch labelled");
        assert!(!svg.contains(">1.5<") && !svg.contains(">0.5<"));
    }

    #[test]
    fn log_x_sweep_draws_error_bars() {
        let svg = flat(&line_chart_svg(&sweep_chart()).expect("chart"));
        assert_svg(&svg);
        assert!(svg.contains(">a3.l2<"));
        assert!(svg.contains(">1e-4<") && svg.contains(">1e-2<"), "decades in one style");
        assert_eq!(svg.matches("<polygon").count(), 0, "no band on a sweep");
    }

    #[test]
    fn single_point_without_std_is_drawn() {
        let chart = LineChart {
            title: "one".to_string(),
            x_label: "x".to_string(),
            y_label: "y".to_string(),
            log_x: false,
            series: vec![Series { label: "only".to_string(), points: vec![point(3.0, 0.0, None)], dashed: false }],
        };
        assert_svg(&line_chart_svg(&chart).expect("chart"));
    }

    #[test]
    fn empty_chart_is_an_error() {
        let mut chart = history_chart();
        chart.series.iter_mut().for_each(|s| s.points.clear());
        let error = line_chart_svg(&chart).expect_err("empty").to_string();
        assert!(error.contains("a1.dense_relu accuracy") && error.contains("no points"), "{error}");
        chart.series.clear();
        assert!(line_chart_svg(&chart).is_err());
    }

    #[test]
    fn non_finite_values_are_errors() {
        for bad in [
            point(f64::NAN, 0.5, None),
            point(1.0, f64::INFINITY, None),
            point(1.0, 0.5, Some(f64::NAN)),
            point(1.0, 0.5, Some(-0.1)),
        ] {
            let mut chart = history_chart();
            chart.series[1].points[4] = bad;
            let error = line_chart_svg(&chart).expect_err("bad point").to_string();
            assert!(error.contains("\"validation\" point 4"), "{error}");
        }
    }

    #[test]
    fn log_axis_refuses_non_positive_x() {
        let mut chart = sweep_chart();
        chart.series[0].points[0].x = 0.0;
        let error = line_chart_svg(&chart).expect_err("x = 0").to_string();
        assert!(error.contains("log axis"), "{error}");
    }
}
