//! A model's layers drawn as a column of boxes, top to bottom, each as wide as its output is large
//! (on a square-root scale, so 784 and 32 units both stay readable): an autoencoder shows its
//! hourglass.

use crate::helpers::escape_html as escape_xml;

/// One box of the diagram.
#[derive(Debug, Clone)]
pub struct DiagramLayer {
    /// E.g. `dense_1 (Dense)`.
    pub name: String,
    /// E.g. `32, relu`.
    pub detail: String,
    /// Values per sample of the layer's output: the box's width.
    pub size: usize,
    /// A group label drawn beside the box (`encoder`, `decoder`), if any.
    pub group: Option<String>,
}

const WIDTH: f64 = 640.0;
const ROW: f64 = 46.0;
const BOX: f64 = 32.0;
const MAX_BOX: f64 = 360.0;
const MIN_BOX: f64 = 90.0;

/// The diagram as SVG, titled `title`.
pub fn layer_diagram_svg(title: &str, layers: &[DiagramLayer]) -> String {
    let largest = layers.iter().map(|l| l.size).max().unwrap_or(1).max(1) as f64;
    let height = 40.0 + ROW * layers.len() as f64;
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="13"><rect width="100%" height="100%" fill="white"/><text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"##,
        WIDTH / 2.0,
        escape_xml(title)
    );
    for (i, layer) in layers.iter().enumerate() {
        let top = 34.0 + ROW * i as f64;
        let width = (MIN_BOX + (MAX_BOX - MIN_BOX) * (layer.size as f64 / largest).sqrt()).min(MAX_BOX);
        let left = (WIDTH - width) / 2.0;
        if i > 0 {
            let (x, y) = (WIDTH / 2.0, top - (ROW - BOX));
            svg += &format!(r##"<line x1="{x}" y1="{y}" x2="{x}" y2="{top}" stroke="#555"/>"##);
        }
        svg += &format!(
            r##"<rect x="{left:.1}" y="{top}" width="{width:.1}" height="{BOX}" rx="4" fill="#dbe8f5" stroke="#3a6ea5"/><text x="{}" y="{}" text-anchor="middle">{} · {}</text>"##,
            WIDTH / 2.0,
            top + BOX / 2.0 + 4.5,
            escape_xml(&layer.name),
            escape_xml(&layer.detail)
        );
        if let Some(group) = &layer.group {
            svg += &format!(r##"<text x="12" y="{}" fill="#555">{}</text>"##, top + BOX / 2.0 + 4.5, escape_xml(group));
        }
    }
    svg + "</svg>\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layer_is_a_box_with_its_name_and_wider_for_larger_outputs() {
        let layer = |name: &str, size: usize| DiagramLayer { name: name.into(), detail: size.to_string(), size, group: None };
        let svg = layer_diagram_svg("t <1>", &[layer("in", 784), layer("code", 32), layer("out", 784)]);
        assert_eq!(svg.matches("<rect x=").count(), 3);
        assert!(svg.contains("code · 32") && svg.contains("t &lt;1&gt;"));
        let widths: Vec<f64> = svg
            .split("<rect x=")
            .skip(1)
            .map(|s| s.split("width=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap())
            .collect();
        assert!(widths[0] > widths[1] && widths[0] == widths[2], "{widths:?}");
    }
}
