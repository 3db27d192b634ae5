//! A Gaussian fitted to each class, its 2-σ ellipse, and the pairwise overlap of the Gaussians
//! measured by the Bhattacharyya coefficient.

use std::f64::consts::PI;

use crate::{check_labelled, group_by_class, mean_max, Point, Result};

/// Ridge added to every class covariance before it is inverted, relative to the spread of the
/// whole projection: `ε = COVARIANCE_EPSILON × (mean per-axis variance of all points)` (or
/// `COVARIANCE_EPSILON` itself when every point coincides). A class with one point, or points on
/// a line, has a singular covariance; the ridge keeps its Gaussian proper (a needle of width
/// ~√ε rather than a NaN) while moving ordinary classes by a relative 1e-9.
pub const COVARIANCE_EPSILON: f64 = 1e-9;

/// The Gaussian approximation of one class and its 2-σ ellipse.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClassEllipse {
    pub class: u8,
    pub mean: Point,
    /// Sample covariance (divisor n − 1; zero for a single point), without the ridge.
    pub covariance: [[f64; 2]; 2],
    /// Major then minor semi-axis of the 2-σ ellipse: 2 √λ for the covariance's eigenvalues.
    pub semi_axes: [f64; 2],
    /// Direction of the major axis, radians counter-clockwise from +x, in (−π/2, π/2].
    pub angle: f64,
}

impl ClassEllipse {
    /// The 2-σ ellipse as a polygon of `segments` vertices (at least 3), counter-clockwise,
    /// starting at the end of the major axis; the closing edge back to the first vertex is
    /// implied, as for hull vertices.
    pub fn outline(&self, segments: usize) -> Vec<Point> {
        let segments = segments.max(3);
        let (sin, cos) = self.angle.sin_cos();
        let [a, b] = self.semi_axes;
        (0..segments)
            .map(|i| {
                let t = 2.0 * PI * i as f64 / segments as f64;
                let (u, v) = (a * t.cos(), b * t.sin());
                [self.mean[0] + u * cos - v * sin, self.mean[1] + u * sin + v * cos]
            })
            .collect()
    }
}

/// Class Gaussians and how much each pair overlaps.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EllipseOverlap {
    pub ellipses: Vec<ClassEllipse>,
    /// `(a, b, BC)` for every pair of classes `a < b`: BC = exp(−D_B) ∈ (0, 1], 1 for
    /// identical Gaussians.
    pub pairwise_bhattacharyya: Vec<(u8, u8, f64)>,
    /// Mean and maximum over the pairs; 0 with a single class.
    pub mean_bc: f64,
    pub max_bc: f64,
}

/// Fits a Gaussian (mean, sample covariance) to each class and measures every pair's overlap by
/// the Bhattacharyya coefficient exp(−D_B), with
/// D_B = ⅛ Δμᵀ Σ⁻¹ Δμ + ½ ln(det Σ / √(det Σ₁ det Σ₂)), Σ = (Σ₁ + Σ₂) / 2, each covariance
/// regularised as described at [`COVARIANCE_EPSILON`].
pub fn ellipse_overlap(points: &[Point], labels: &[u8]) -> Result<EllipseOverlap> {
    check_labelled("ellipse overlap", points, labels)?;
    let ridge = COVARIANCE_EPSILON * {
        let all: Vec<usize> = (0..points.len()).collect();
        let (_, cov) = mean_covariance(points, &all);
        let scale = (cov[0][0] + cov[1][1]) / 2.0;
        if scale > 0.0 && scale.is_finite() {
            scale
        } else {
            1.0
        }
    };
    let ellipses: Vec<ClassEllipse> = group_by_class(labels)
        .into_iter()
        .map(|(class, members)| {
            let (mean, covariance) = mean_covariance(points, &members);
            let (semi_axes, angle) = axes(&covariance);
            ClassEllipse { class, mean, covariance, semi_axes, angle }
        })
        .collect();
    let mut pairwise_bhattacharyya = Vec::new();
    for (i, a) in ellipses.iter().enumerate() {
        for b in &ellipses[i + 1..] {
            pairwise_bhattacharyya.push((a.class, b.class, bhattacharyya(a, b, ridge)));
        }
    }
    let (mean_bc, max_bc) = mean_max(&pairwise_bhattacharyya);
    Ok(EllipseOverlap { ellipses, pairwise_bhattacharyya, mean_bc, max_bc })
}

/// Mean and sample covariance (divisor n − 1, zero for n = 1) of the chosen points.
fn mean_covariance(points: &[Point], members: &[usize]) -> (Point, [[f64; 2]; 2]) {
    let n = members.len() as f64;
    let mut mean = [0.0; 2];
    for &i in members {
        mean[0] += points[i][0];
        mean[1] += points[i][1];
    }
    mean = [mean[0] / n, mean[1] / n];
    let (mut xx, mut xy, mut yy) = (0.0, 0.0, 0.0);
    for &i in members {
        let (dx, dy) = (points[i][0] - mean[0], points[i][1] - mean[1]);
        xx += dx * dx;
        xy += dx * dy;
        yy += dy * dy;
    }
    let divisor = (n - 1.0).max(1.0);
    let (xx, xy, yy) = (xx / divisor, xy / divisor, yy / divisor);
    (mean, [[xx, xy], [xy, yy]])
}

/// Eigenvalues of a symmetric 2×2 matrix, larger first.
fn eigenvalues(m: &[[f64; 2]; 2]) -> [f64; 2] {
    let (a, b, c) = (m[0][0], m[0][1], m[1][1]);
    let centre = (a + c) / 2.0;
    let radius = ((a - c) / 2.0).hypot(b);
    [centre + radius, centre - radius]
}

/// 2-σ semi-axes (major, minor) and the major axis direction of a covariance.
fn axes(covariance: &[[f64; 2]; 2]) -> ([f64; 2], f64) {
    let [major, minor] = eigenvalues(covariance);
    let (a, b, c) = (covariance[0][0], covariance[0][1], covariance[1][1]);
    let mut angle = 0.5 * (2.0 * b).atan2(a - c);
    if angle <= -PI / 2.0 {
        angle += PI;
    }
    ([2.0 * major.max(0.0).sqrt(), 2.0 * minor.max(0.0).sqrt()], angle)
}

fn determinant(m: &[[f64; 2]; 2]) -> f64 {
    m[0][0] * m[1][1] - m[0][1] * m[1][0]
}

fn bhattacharyya(a: &ClassEllipse, b: &ClassEllipse, ridge: f64) -> f64 {
    let regularised = |m: &[[f64; 2]; 2]| [[m[0][0] + ridge, m[0][1]], [m[1][0], m[1][1] + ridge]];
    let (s1, s2) = (regularised(&a.covariance), regularised(&b.covariance));
    let s =
        [[(s1[0][0] + s2[0][0]) / 2.0, (s1[0][1] + s2[0][1]) / 2.0], [(s1[1][0] + s2[1][0]) / 2.0, (s1[1][1] + s2[1][1]) / 2.0]];
    let det = determinant(&s);
    let d = [b.mean[0] - a.mean[0], b.mean[1] - a.mean[1]];
    // Δμᵀ Σ⁻¹ Δμ with the adjugate inverse.
    let mahalanobis = (s[1][1] * d[0] * d[0] - 2.0 * s[0][1] * d[0] * d[1] + s[0][0] * d[1] * d[1]) / det;
    // Logarithms taken apart so identical covariances cancel exactly.
    let log_ratio = 0.5 * det.ln() - 0.25 * determinant(&s1).ln() - 0.25 * determinant(&s2).ln();
    let distance = mahalanobis / 8.0 + log_ratio;
    (-distance).exp().clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four points at (cx ± sx, cy ± sy): mean (cx, cy), sample variances 4/3 sx², 4/3 sy².
    fn corners(cx: f64, cy: f64, sx: f64, sy: f64) -> Vec<Point> {
        vec![[cx - sx, cy - sy], [cx + sx, cy - sy], [cx - sx, cy + sy], [cx + sx, cy + sy]]
    }

    fn overlap(sets: &[(u8, Vec<Point>)]) -> EllipseOverlap {
        let mut points = Vec::new();
        let mut labels = Vec::new();
        for (label, set) in sets {
            points.extend(set);
            labels.extend(std::iter::repeat_n(*label, set.len()));
        }
        ellipse_overlap(&points, &labels).unwrap()
    }

    #[test]
    fn identical_gaussians_overlap_fully() {
        let o = overlap(&[(0, corners(1.0, 2.0, 1.0, 0.5)), (1, corners(1.0, 2.0, 1.0, 0.5))]);
        assert_eq!(o.pairwise_bhattacharyya, vec![(0, 1, 1.0)]);
        assert_eq!((o.mean_bc, o.max_bc), (1.0, 1.0));
    }

    #[test]
    fn distant_gaussians_do_not_overlap() {
        let o = overlap(&[(0, corners(0.0, 0.0, 1.0, 1.0)), (5, corners(1e3, 0.0, 1.0, 1.0))]);
        assert!(o.max_bc < 1e-100, "{}", o.max_bc);
    }

    #[test]
    fn shifted_equal_variances_match_the_closed_form() {
        // Equal covariances σ² = 4/3 on each axis, means 2 apart in x: D_B = d² / (8σ²) = 0.375.
        let o = overlap(&[(0, corners(0.0, 0.0, 1.0, 1.0)), (1, corners(2.0, 0.0, 1.0, 1.0))]);
        assert!((o.max_bc - (-0.375f64).exp()).abs() < 1e-8, "{}", o.max_bc);
    }

    #[test]
    fn unequal_variances_match_the_closed_form() {
        // x variances 4/3 and 16/3, equal y variances, means 4 apart in x:
        // D_B = d² / (4 (σ₁² + σ₂²)) + ½ ln((σ₁² + σ₂²) / (2 σ₁ σ₂)) = 0.6 + ½ ln 1.25.
        let o = overlap(&[(0, corners(0.0, 0.0, 1.0, 1.0)), (1, corners(4.0, 0.0, 2.0, 1.0))]);
        let expected = (-(0.6 + 0.5 * 1.25f64.ln())).exp();
        assert!((o.max_bc - expected).abs() < 1e-8, "{} vs {expected}", o.max_bc);
    }

    #[test]
    fn diagonal_covariance_gives_axis_aligned_ellipses() {
        // x variance 4/3 · 9 = 12, y variance 4/3 · 0.75 = 1: semi-axes 2√12 and 2.
        let o = overlap(&[(0, corners(0.0, 0.0, 3.0, 0.75f64.sqrt())), (1, corners(0.0, 0.0, 0.75f64.sqrt(), 3.0))]);
        let [wide, tall] = [&o.ellipses[0], &o.ellipses[1]];
        assert!((wide.semi_axes[0] - 2.0 * 12f64.sqrt()).abs() < 1e-12);
        assert!((wide.semi_axes[1] - 2.0).abs() < 1e-12);
        assert_eq!(wide.angle, 0.0);
        assert!((tall.angle - PI / 2.0).abs() < 1e-15);
        assert_eq!(wide.semi_axes, tall.semi_axes);
        let outline = wide.outline(4);
        let expected = [[2.0 * 12f64.sqrt(), 0.0], [0.0, 2.0], [-2.0 * 12f64.sqrt(), 0.0], [0.0, -2.0]];
        for (p, e) in outline.iter().zip(expected) {
            assert!((p[0] - e[0]).abs() < 1e-12 && (p[1] - e[1]).abs() < 1e-12, "{p:?} vs {e:?}");
        }
    }

    #[test]
    fn rotated_covariance_has_its_angle() {
        // Points along the diagonal y = x with a little spread across it.
        let points: Vec<Point> = (0..10)
            .flat_map(|i| {
                let t = f64::from(i);
                [[t + 0.1, t - 0.1], [t - 0.1, t + 0.1]]
            })
            .collect();
        let o = ellipse_overlap(&points, &[0; 20]).unwrap();
        assert!((o.ellipses[0].angle - PI / 4.0).abs() < 1e-12);
        assert!(o.pairwise_bhattacharyya.is_empty());
    }

    #[test]
    fn singular_covariances_stay_finite() {
        let o = overlap(&[
            (0, vec![[1.0, 1.0]]),
            (1, vec![[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]),
            (2, vec![[1.0, 1.0]; 3]),
            (3, corners(0.0, 0.0, 1.0, 1.0)),
        ]);
        assert!(o.pairwise_bhattacharyya.iter().all(|p| p.2.is_finite() && (0.0..=1.0).contains(&p.2)));
        // A point on another class's line overlaps it more than a point far from it would.
        assert!(o.ellipses.iter().all(|e| e.semi_axes.iter().all(|a| a.is_finite())));
        assert_eq!(o.ellipses[0].semi_axes, [0.0, 0.0]);
        // Two identical degenerate classes still count as identical.
        let same = overlap(&[(0, vec![[1.0, 1.0]]), (1, vec![[1.0, 1.0]])]);
        assert_eq!(same.max_bc, 1.0);
        // All points identical: no NaN anywhere.
        let flat = overlap(&[(0, vec![[2.0, 2.0]; 2]), (1, vec![[2.0, 2.0]; 2])]);
        assert_eq!(flat.max_bc, 1.0);
    }
}
