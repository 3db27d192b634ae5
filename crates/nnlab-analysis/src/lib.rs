//! 2-D projections of feature matrices (PCA, t-SNE) and measures of how well classes separate in
//! them: neighbourhood hit, convex-hull overlap and Gaussian-ellipse overlap.
//!
//! Everything is deterministic: the same input (and, for t-SNE, the same seed) gives a
//! bit-identical result on a given machine, whatever the thread count.
//!
//! Classes are the distinct labels present in the input, in increasing order; class pairs are
//! listed as `(a, b)` with `a < b`.

mod ellipse;
mod error;
mod features;
mod hull;
mod knn;
mod neighbourhood;
mod pca;
mod tsne;

pub use ellipse::{ellipse_overlap, ClassEllipse, EllipseOverlap, COVARIANCE_EPSILON};
pub use error::{AnalysisError, Result};
pub use features::Features;
pub use hull::{convex_hull, hull_overlap, polygon_area, ClassHull, HullOverlap};
pub use neighbourhood::{neighbourhood_hit, neighbourhood_hit_curve, NeighbourhoodHit};
pub use pca::pca_2d;
pub use tsne::{tsne_2d, TsneConfig};

/// A point of a 2-D projection.
pub type Point = [f64; 2];

/// Every separability measure of one labelled projection.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SeparationMetrics {
    /// Neighbourhood hit at the requested k.
    pub nh: NeighbourhoodHit,
    /// Neighbourhood hit for k = 1..=k_max (element i is k = i + 1).
    pub nh_curve: Vec<f64>,
    pub hulls: HullOverlap,
    pub ellipses: EllipseOverlap,
}

/// Neighbourhood hit at `k` and its curve up to `k_max`, hull overlap and ellipse overlap of a
/// labelled 2-D projection.
pub fn separation_metrics(points: &[Point], labels: &[u8], k: usize, k_max: usize) -> Result<SeparationMetrics> {
    const WHAT: &str = "separation metrics";
    if k == 0 {
        return Err(neighbourhood::zero_k(WHAT, "k"));
    }
    if k_max == 0 {
        return Err(neighbourhood::zero_k(WHAT, "k_max"));
    }
    // One kNN query serves both the single k and the curve.
    let neighbours = neighbourhood::Neighbourhoods::query(points, labels, k.max(k_max), WHAT)?;
    Ok(SeparationMetrics {
        nh: neighbours.hit(k),
        nh_curve: neighbours.curve(k_max),
        hulls: hull_overlap(points, labels)?,
        ellipses: ellipse_overlap(points, labels)?,
    })
}

/// Checks that points and labels pair up and every coordinate is finite.
pub(crate) fn check_labelled(what: &'static str, points: &[Point], labels: &[u8]) -> Result<()> {
    if points.len() != labels.len() {
        return Err(AnalysisError::LabelCount { what, points: points.len(), labels: labels.len() });
    }
    if let Some((index, point)) = points.iter().enumerate().find(|(_, p)| !(p[0].is_finite() && p[1].is_finite())) {
        return Err(AnalysisError::NonFinitePoint { what, index, point: *point });
    }
    Ok(())
}

/// The distinct labels present, sorted, with the indices of their points.
pub(crate) fn group_by_class(labels: &[u8]) -> Vec<(u8, Vec<usize>)> {
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); 256];
    for (index, &label) in labels.iter().enumerate() {
        members[usize::from(label)].push(index);
    }
    members.into_iter().enumerate().filter(|(_, m)| !m.is_empty()).map(|(label, m)| (label as u8, m)).collect()
}

/// Mean and maximum of a pairwise measure; both 0 when there is no pair (a single class).
pub(crate) fn mean_max(pairs: &[(u8, u8, f64)]) -> (f64, f64) {
    if pairs.is_empty() {
        return (0.0, 0.0);
    }
    let sum: f64 = pairs.iter().map(|p| p.2).sum();
    let max = pairs.iter().map(|p| p.2).fold(f64::NEG_INFINITY, f64::max);
    (sum / pairs.len() as f64, max)
}
