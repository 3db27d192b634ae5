//! Report rendering for nnlab: handlebars templates with number-formatting helpers, Markdown to
//! HTML inside a layout, SVG line charts, and the site index.
//!
//! The crate knows nothing about models or assignments: callers hand it a JSON context per page
//! and chart data per figure.

mod atomic;
pub mod boundary;
pub mod diagram;
pub mod error;
pub mod figure;
pub mod heatmap;
mod helpers;
pub mod image_grid;
pub mod interval;
mod markdown;
pub mod render;
pub mod scatter;

pub use atomic::write_atomic;
pub use boundary::{boundary_grid_svg, BoundaryGrid, BoundaryPanel};
pub use diagram::{layer_diagram_svg, DiagramLayer};
pub use error::{ReportError, Result};
pub use figure::{line_chart_svg, LineChart, Point, Series};
pub use heatmap::{heat_map_svg, HeatMap};
pub use helpers::RecordedAnswer;
pub use image_grid::{grey_png, png_size, ImageGrid};
pub use interval::{interval_chart_svg, IntervalChart, IntervalRow};
pub use markdown::markdown_to_html;
pub use render::{IndexEntry, Page, Renderer, SiteIndex};
pub use scatter::{scatter_svg, ScatterChart};
