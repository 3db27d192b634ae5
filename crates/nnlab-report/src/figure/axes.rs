//! Axis ranges, tick labels and legend placement, computed from the data before drawing.

use std::ops::Range;

use plotters::chart::SeriesLabelPosition;

use super::Series;

/// Tick labels on an axis whose values are all integers (epochs 1..N); plotters picks steps of
/// 1, 2 or 5 × 10ᵏ, so a hint no larger than the number of integers keeps every tick whole.
const MAX_INTEGER_TICKS: usize = 12;
const MAX_TICKS: usize = 8;
/// Fraction of the data span added on each side so markers do not sit on the frame.
const MARGIN: f64 = 0.04;
/// Log axes get their margin as a factor: a tenth of a decade.
const LOG_MARGIN: f64 = 1.26;

/// Where the chart's axes end and where its legend goes.
pub(super) struct Axes {
    pub x: Range<f64>,
    pub y: Range<f64>,
    pub x_ticks: usize,
    /// Label every x tick as `1e-4`: a log axis reaching beyond everyday magnitudes would
    /// otherwise mix `1e-5` with `0.01`.
    pub x_exponents: bool,
    pub legend: SeriesLabelPosition,
}

impl Axes {
    /// Fits axes around every mean ± std of `series` (which holds at least one point, all
    /// finite, and x > 0 when `log_x`).
    pub fn fit(series: &[Series], log_x: bool) -> Axes {
        let points = || series.iter().flat_map(|s| s.points.iter());
        let (x_min, x_max) = min_max(points().map(|p| p.x));
        let (y_min, y_max) = min_max(points().flat_map(|p| {
            let std = p.std.unwrap_or(0.0);
            [p.mean - std, p.mean + std]
        }));
        let all_integer_x = points().all(|p| p.x.fract() == 0.0);

        let x = if log_x { log_range(x_min, x_max) } else { padded(x_min, x_max) };
        let x_ticks = if all_integer_x && !log_x {
            // Whole-number span, so the cast is exact for any realistic number of epochs.
            let integers = (x_max - x_min) as usize + 1;
            integers.min(MAX_INTEGER_TICKS)
        } else {
            MAX_TICKS
        };
        let x_exponents = log_x && !(is_everyday(x.start) && is_everyday(x.end));
        let y = padded(y_min, y_max);
        let legend = emptiest_corner(series, &x, &y, log_x);
        Axes { x, y, x_ticks, x_exponents, legend }
    }
}

fn min_max(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

fn padded(min: f64, max: f64) -> Range<f64> {
    let span = max - min;
    let pad = if span > 0.0 {
        span * MARGIN
    } else if min != 0.0 {
        min.abs() * 0.05
    } else {
        // A flat line at zero: any visible range will do.
        0.5
    };
    (min - pad)..(max + pad)
}

fn log_range(min: f64, max: f64) -> Range<f64> {
    if max > min {
        (min / LOG_MARGIN)..(max * LOG_MARGIN)
    } else {
        (min / 2.0)..(max * 2.0)
    }
}

/// The plot corner that the curves cross least, so the legend hides as little data as possible.
fn emptiest_corner(series: &[Series], x: &Range<f64>, y: &Range<f64>, log_x: bool) -> SeriesLabelPosition {
    let scale_x = |v: f64| {
        if log_x {
            (v.ln() - x.start.ln()) / (x.end.ln() - x.start.ln())
        } else {
            (v - x.start) / (x.end - x.start)
        }
    };
    let scale_y = |v: f64| (v - y.start) / (y.end - y.start);
    // The legend box in plot-area fractions: roughly its label width and one row per series.
    let width = 0.4;
    let height = (0.08 + 0.07 * series.len() as f64).min(0.6);

    // Sample along each segment, not just at the points, since lines cross corners too.
    const SAMPLES_PER_SEGMENT: usize = 8;
    let mut samples = Vec::new();
    for s in series {
        let scaled: Vec<(f64, f64)> = s.points.iter().map(|p| (scale_x(p.x), scale_y(p.mean))).collect();
        samples.extend(scaled.first().copied());
        for pair in scaled.windows(2) {
            let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
            samples.extend((1..=SAMPLES_PER_SEGMENT).map(|i| {
                let t = i as f64 / SAMPLES_PER_SEGMENT as f64;
                (x0 + t * (x1 - x0), y0 + t * (y1 - y0))
            }));
        }
    }

    let corners = [
        (SeriesLabelPosition::UpperRight, true, true),
        (SeriesLabelPosition::LowerRight, true, false),
        (SeriesLabelPosition::UpperLeft, false, true),
        (SeriesLabelPosition::LowerLeft, false, false),
    ];
    let crossings = |right: bool, upper: bool| {
        samples
            .iter()
            .filter(|&&(sx, sy)| {
                let in_x = if right { sx > 1.0 - width } else { sx < width };
                let in_y = if upper { sy > 1.0 - height } else { sy < height };
                in_x && in_y
            })
            .count()
    };
    corners
        .into_iter()
        .min_by_key(|&(_, right, upper)| crossings(right, upper))
        .map_or(SeriesLabelPosition::UpperRight, |(position, _, _)| position)
}

/// Magnitudes that read well as plain decimals.
fn is_everyday(value: f64) -> bool {
    (1e-3..1e5).contains(&value.abs())
}

/// A tick label: plain decimals for everyday magnitudes, `1e-4` style for the rest, with
/// trailing zeros trimmed (plotters' steps are sums of floats such as 0.30000000000000004).
pub(super) fn tick_label(value: f64) -> String {
    if value == 0.0 {
        "0".to_string()
    } else if is_everyday(value) {
        trim_zeros(&format!("{value:.4}")).to_string()
    } else {
        exponent_label(value)
    }
}

/// A tick label in `1.5e-4` style.
pub(super) fn exponent_label(value: f64) -> String {
    let text = format!("{value:.3e}");
    match text.split_once('e') {
        Some((mantissa, exponent)) => format!("{}e{exponent}", trim_zeros(mantissa)),
        None => text,
    }
}

fn trim_zeros(decimal: &str) -> &str {
    if decimal.contains('.') {
        decimal.trim_end_matches('0').trim_end_matches('.')
    } else {
        decimal
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figure::Point;

    fn series(points: &[(f64, f64)]) -> Series {
        Series {
            label: "s".to_string(),
            points: points.iter().map(|&(x, mean)| Point { x, mean, std: Some(0.01) }).collect(),
            dashed: false,
        }
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick_label(0.0), "0");
        assert_eq!(tick_label(12.0), "12");
        assert_eq!(tick_label(0.30000000000000004), "0.3");
        assert_eq!(tick_label(-2.5), "-2.5");
        assert_eq!(tick_label(1e-4), "1e-4");
        assert_eq!(tick_label(2e-5 + 1e-20), "2e-5");
        assert_eq!(tick_label(1.5e6), "1.5e6");
        assert_eq!(exponent_label(0.01), "1e-2");
    }

    #[test]
    fn ranges_cover_the_spread_with_a_margin() {
        let axes = Axes::fit(&[series(&[(1.0, 0.5), (12.0, 0.9)])], false);
        assert!(axes.x.start < 1.0 && axes.x.end > 12.0);
        assert!(axes.y.start < 0.49 && axes.y.end > 0.91);
        assert_eq!(axes.x_ticks, 12);
    }

    #[test]
    fn log_range_stays_positive() {
        let axes = Axes::fit(&[series(&[(1e-5, 0.9), (1e-2, 0.8)])], true);
        assert!(axes.x.start > 0.0 && axes.x.start < 1e-5 && axes.x.end > 1e-2);
        assert!(axes.x_exponents);
        let batch_sizes = Axes::fit(&[series(&[(16.0, 0.9), (512.0, 0.8)])], true);
        assert!(!batch_sizes.x_exponents);
        let single = Axes::fit(&[series(&[(1e-3, 0.9)])], true);
        assert!(single.x.start > 0.0 && single.x.start < 1e-3 && single.x.end > 1e-3);
    }

    #[test]
    fn legend_avoids_the_curves() {
        // A rising curve crosses the lower-left and upper-right corners.
        let rising = Axes::fit(&[series(&[(1.0, 0.0), (10.0, 1.0)])], false);
        assert!(matches!(rising.legend, SeriesLabelPosition::LowerRight));
        // A falling loss curve leaves the upper right free.
        let falling = Axes::fit(&[series(&[(1.0, 2.0), (10.0, 0.1)])], false);
        assert!(matches!(falling.legend, SeriesLabelPosition::UpperRight));
    }
}
