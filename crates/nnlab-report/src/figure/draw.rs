//! Drawing a checked, x-sorted chart with plotters' SVG backend.

use std::io;
use std::ops::Range;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::axes::{exponent_label, tick_label, Axes};
use super::{LineChart, Series};

const SIZE: (u32, u32) = (640, 400);
const FONT: &str = "sans-serif";

/// Okabe–Ito colours, told apart under the common colour-vision deficiencies; their yellow is
/// left out because it vanishes on white.
pub(super) const PALETTE: [RGBColor; 7] = [
    RGBColor(0x00, 0x72, 0xB2), // blue
    RGBColor(0xD5, 0x5E, 0x00), // vermillion
    RGBColor(0x00, 0x9E, 0x73), // bluish green
    RGBColor(0xCC, 0x79, 0xA7), // reddish purple
    RGBColor(0xE6, 0x9F, 0x00), // orange
    RGBColor(0x56, 0xB4, 0xE9), // sky blue
    RGBColor(0x00, 0x00, 0x00), // black
];

type DrawError = DrawingAreaErrorKind<io::Error>;
type Chart<'a, 'b, X> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, RangedCoordf64>>;

/// Renders the chart to an SVG string.
pub(super) fn svg(chart: &LineChart, series: &[Series], axes: &Axes) -> Result<String, DrawError> {
    let mut svg = String::new();
    if chart.log_x {
        draw(chart, series, axes, axes.x.clone().log_scale(), &mut svg)?;
    } else {
        draw(chart, series, axes, axes.x.clone(), &mut svg)?;
    }
    Ok(svg)
}

/// Generic over the x coordinate so linear and log axes share one drawing path.
fn draw<X>(chart: &LineChart, series: &[Series], axes: &Axes, x_spec: X, svg: &mut String) -> Result<(), DrawError>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let x_label = |x: &f64| {
        if axes.x_exponents {
            exponent_label(*x)
        } else {
            tick_label(*x)
        }
    };
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut plot = ChartBuilder::on(&root)
        .caption(&chart.title, (FONT, 18))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(x_spec, axes.y.clone())?;
    plot.configure_mesh()
        .x_desc(chart.x_label.as_str())
        .y_desc(chart.y_label.as_str())
        .x_labels(axes.x_ticks)
        .y_labels(8)
        .x_label_formatter(&x_label)
        .y_label_formatter(&|y| tick_label(*y))
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 13))
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(BLACK.mix(0.04))
        .draw()?;

    for (index, series) in series.iter().enumerate() {
        let colour = PALETTE[index % PALETTE.len()];
        if chart.log_x {
            draw_error_bars(&mut plot, series, colour)?;
        } else {
            draw_band(&mut plot, series, colour, &axes.y)?;
        }
        draw_mean(&mut plot, series, colour)?;
    }

    plot.configure_series_labels()
        .position(axes.legend.clone())
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font((FONT, 13))
        .draw()?;
    root.present()
}

/// The mean line with a marker at every measured point, and its legend entry.
fn draw_mean<'a, X: Ranged<ValueType = f64>>(
    plot: &mut Chart<'a, 'a, X>,
    series: &Series,
    colour: RGBColor,
) -> Result<(), DrawError> {
    let line: Vec<(f64, f64)> = series.points.iter().map(|p| (p.x, p.mean)).collect();
    let style = colour.stroke_width(2);
    if series.dashed {
        plot.draw_series(DashedLineSeries::new(line.iter().copied(), 7, 5, style))?.label(series.label.clone()).legend(
            move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (8, 0)], style)
                    + PathElement::new(vec![(12, 0), (20, 0)], style)
            },
        );
    } else {
        plot.draw_series(LineSeries::new(line.iter().copied(), style))?
            .label(series.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    plot.draw_series(line.iter().map(|&at| Circle::new(at, 3, colour.filled())))?;
    Ok(())
}

/// A translucent ±std band behind a curve; a point without std contributes zero width.
fn draw_band<'a, 'b: 'a, X: Ranged<ValueType = f64>>(
    plot: &mut Chart<'a, 'b, X>,
    series: &Series,
    colour: RGBColor,
    y: &Range<f64>,
) -> Result<(), DrawError> {
    if series.points.iter().all(|p| p.std.is_none()) {
        return Ok(());
    }
    let upper = series.points.iter().map(|p| (p.x, p.mean + p.std.unwrap_or(0.0)));
    let lower = series.points.iter().rev().map(|p| (p.x, p.mean - p.std.unwrap_or(0.0)));
    // Clamped to the plot so the polygon never spills over the frame.
    let outline: Vec<(f64, f64)> = upper.chain(lower).map(|(x, v)| (x, v.clamp(y.start, y.end))).collect();
    plot.draw_series(std::iter::once(Polygon::new(outline, colour.mix(0.18).filled())))?;
    Ok(())
}

/// A vertical ±std bar with caps at every point that has a std.
fn draw_error_bars<'a, 'b: 'a, X: Ranged<ValueType = f64>>(
    plot: &mut Chart<'a, 'b, X>,
    series: &Series,
    colour: RGBColor,
) -> Result<(), DrawError> {
    let style = colour.stroke_width(1);
    let bars: Vec<(f64, f64, f64)> =
        series.points.iter().filter_map(|p| p.std.map(|std| (p.x, p.mean - std, p.mean + std))).collect();
    plot.draw_series(bars.iter().map(|&(x, low, high)| PathElement::new(vec![(x, low), (x, high)], style)))?;
    // Caps are a fixed width in pixels, which on a log axis no data-space width could give.
    plot.draw_series(
        bars.iter()
            .flat_map(|&(x, low, high)| [(x, low), (x, high)])
            .map(|end| EmptyElement::at(end) + PathElement::new(vec![(-4, 0), (4, 0)], style)),
    )?;
    Ok(())
}
