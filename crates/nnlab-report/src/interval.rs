//! SVG interval charts (forest plots): one row per item, its estimate as a dot and its interval as
//! a bar, against a vertical reference line (no change: 0 for a difference, 1 for a ratio).

use std::fmt::Write;

use crate::error::{ReportError, Result};
use crate::helpers::escape_html;

#[derive(Debug, Clone)]
pub struct IntervalChart {
    pub title: String,
    pub x_label: String,
    /// Where "no change" lies.
    pub reference: f64,
    /// Logarithmic x axis, for ratios: a 2× and a 0.5× change lie equally far from 1.
    pub log_x: bool,
    pub rows: Vec<IntervalRow>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IntervalRow {
    pub label: String,
    pub estimate: f64,
    /// `None` where no interval could be computed (the dot is drawn alone).
    pub interval: Option<(f64, f64)>,
}

const LEFT: f64 = 220.0;
const PLOT_W: f64 = 400.0;
const TOP: f64 = 44.0;
const ROW_H: f64 = 22.0;

/// Draws the chart; fails, naming it, with no rows, a non-finite value, an interval that does not
/// contain its estimate, or a value ≤ 0 on a log axis.
pub fn interval_chart_svg(chart: &IntervalChart) -> Result<String> {
    let error = |reason: String| ReportError::Figure { title: chart.title.clone(), reason };
    if chart.rows.is_empty() {
        return Err(error("no rows to draw".into()));
    }
    let mut values = vec![chart.reference];
    for row in &chart.rows {
        let (low, high) = row.interval.unwrap_or((row.estimate, row.estimate));
        if !(row.estimate.is_finite() && low.is_finite() && high.is_finite()) {
            return Err(error(format!("row \"{}\" has a non-finite value", row.label)));
        }
        if low > row.estimate || row.estimate > high {
            return Err(error(format!("row \"{}\": interval [{low}, {high}] misses its estimate {}", row.label, row.estimate)));
        }
        values.extend([low, high]);
    }
    if chart.log_x && values.iter().any(|v| *v <= 0.0) {
        return Err(error("a value ≤ 0 on a logarithmic axis".into()));
    }
    let scale = |v: f64| if chart.log_x { v.ln() } else { v };
    let (lo, hi) =
        values.iter().map(|v| scale(*v)).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let pad = if hi > lo { (hi - lo) * 0.08 } else { 1.0 };
    let (lo, hi) = (lo - pad, hi + pad);
    let x_of = |v: f64| LEFT + (scale(v) - lo) / (hi - lo) * PLOT_W;

    let width = LEFT + PLOT_W + 30.0;
    let bottom = TOP + ROW_H * chart.rows.len() as f64;
    let height = bottom + 50.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = write!(
        svg,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14">{}</text>"#,
        width / 2.0,
        escape_html(&chart.title)
    );
    let reference = x_of(chart.reference);
    let _ = write!(
        svg,
        r##"<line x1="{reference}" y1="{}" x2="{reference}" y2="{bottom}" stroke="#888" stroke-dasharray="4 3"/>"##,
        TOP - 6.0
    );
    for (i, row) in chart.rows.iter().enumerate() {
        let y = TOP + ROW_H * (i as f64 + 0.5);
        let _ = write!(svg, r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#, LEFT - 10.0, y + 4.0, escape_html(&row.label));
        if let Some((low, high)) = row.interval {
            let _ = write!(
                svg,
                r##"<line x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="#1f4e8c" stroke-width="2"/>"##,
                x_of(low),
                x_of(high)
            );
        }
        let _ = write!(svg, r##"<circle cx="{}" cy="{y}" r="4" fill="#1f4e8c"/>"##, x_of(row.estimate));
    }
    let _ = write!(svg, r#"<line x1="{LEFT}" y1="{bottom}" x2="{}" y2="{bottom}" stroke="black"/>"#, LEFT + PLOT_W);
    for tick in ticks(lo, hi, chart.log_x) {
        let x = LEFT + (scale(tick) - lo) / (hi - lo) * PLOT_W;
        let _ = write!(
            svg,
            r#"<line x1="{x}" y1="{bottom}" x2="{x}" y2="{}" stroke="black"/><text x="{x}" y="{}" text-anchor="middle">{}</text>"#,
            bottom + 4.0,
            bottom + 17.0,
            tick_text(tick)
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        LEFT + PLOT_W / 2.0,
        bottom + 38.0,
        escape_html(&chart.x_label)
    );
    svg.push_str("</svg>\n");
    Ok(svg)
}

/// About five round tick values within the (scaled) range [lo, hi].
fn ticks(lo: f64, hi: f64, log_x: bool) -> Vec<f64> {
    let (a, b) = if log_x { (lo.exp(), hi.exp()) } else { (lo, hi) };
    let raw = (b - a) / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(10.0 * magnitude);
    let first = (a / step).ceil() as i64;
    let last = (b / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).filter(|v| !log_x || *v > 0.0).collect()
}

fn tick_text(v: f64) -> String {
    let text = format!("{v:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> IntervalChart {
        IntervalChart {
            title: "ratio <B/A>".into(),
            x_label: "samples/s, B / A".into(),
            reference: 1.0,
            log_x: true,
            rows: vec![
                IntervalRow { label: "a1.cnn".into(), estimate: 1.5, interval: Some((1.3, 1.7)) },
                IntervalRow { label: "a1.mlp".into(), estimate: 0.9, interval: None },
            ],
        }
    }

    #[test]
    fn rows_carry_their_labels_dots_and_bars() {
        let svg = interval_chart_svg(&chart()).unwrap();
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains(">a1.cnn<") && svg.contains("ratio &lt;B/A&gt;"));
        assert_eq!(svg.matches(r#"stroke-width="2""#).count(), 1, "one interval bar");
        assert!(svg.contains(r#">1<"#), "a tick at the reference: {svg}");
    }

    #[test]
    fn undrawable_rows_are_refused_by_name() {
        let mut c = chart();
        c.rows[0].interval = Some((1.6, 1.7));
        assert!(interval_chart_svg(&c).unwrap_err().to_string().contains("misses its estimate"));
        let mut c = chart();
        c.rows[1].estimate = -1.0;
        assert!(interval_chart_svg(&c).is_err());
        c.rows.clear();
        assert!(interval_chart_svg(&c).unwrap_err().to_string().contains("no rows"));
    }

    #[test]
    fn ticks_are_round() {
        let texts: Vec<String> = ticks(0.0, 1.0, false).into_iter().map(tick_text).collect();
        assert_eq!(texts, ["0", "0.2", "0.4", "0.6", "0.8", "1"]);
    }
}
