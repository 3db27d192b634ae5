//! Convex hull of each class and the pairwise overlap (intersection over union) of the hulls.

use crate::{check_labelled, group_by_class, mean_max, Point, Result};

/// The convex hull of one class's points.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClassHull {
    pub class: u8,
    /// Counter-clockwise, without repeating the first vertex and without collinear vertices;
    /// one or two points for a degenerate class (a single point, a segment).
    pub vertices: Vec<Point>,
    /// 0 for a degenerate hull.
    pub area: f64,
}

/// Class hulls and how much each pair overlaps.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HullOverlap {
    pub hulls: Vec<ClassHull>,
    /// `(a, b, area(A ∩ B) / area(A ∪ B))` for every pair of classes `a < b`; 0 when both
    /// hulls are degenerate.
    pub pairwise_iou: Vec<(u8, u8, f64)>,
    /// Mean and maximum over the pairs; 0 with a single class.
    pub mean_iou: f64,
    pub max_iou: f64,
}

/// Convex hull of each class (Andrew's monotone chain) and the IoU of every pair of hulls
/// (Sutherland–Hodgman clipping of one convex polygon by the other, shoelace areas).
pub fn hull_overlap(points: &[Point], labels: &[u8]) -> Result<HullOverlap> {
    check_labelled("hull overlap", points, labels)?;
    let hulls: Vec<ClassHull> = group_by_class(labels)
        .into_iter()
        .map(|(class, members)| {
            let vertices = convex_hull(members.iter().map(|&i| points[i]).collect());
            let area = polygon_area(&vertices);
            ClassHull { class, vertices, area }
        })
        .collect();
    let mut pairwise_iou = Vec::new();
    for (i, a) in hulls.iter().enumerate() {
        for b in &hulls[i + 1..] {
            pairwise_iou.push((a.class, b.class, iou(a, b)));
        }
    }
    let (mean_iou, max_iou) = mean_max(&pairwise_iou);
    Ok(HullOverlap { hulls, pairwise_iou, mean_iou, max_iou })
}

fn iou(a: &ClassHull, b: &ClassHull) -> f64 {
    if a.area == 0.0 || b.area == 0.0 {
        return 0.0;
    }
    let intersection = polygon_area(&clip(&a.vertices, &b.vertices));
    let union = a.area + b.area - intersection;
    // Round-off can leave the intersection a hair above the smaller area.
    (intersection / union).clamp(0.0, 1.0)
}

/// z of (b − a) × (c − a): positive when a → b → c turns counter-clockwise.
fn cross(a: Point, b: Point, c: Point) -> f64 {
    (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
}

/// The convex hull of `points`, counter-clockwise from the lowest-x (then lowest-y) point,
/// collinear points dropped; duplicates are fine.
pub fn convex_hull(mut points: Vec<Point>) -> Vec<Point> {
    points.sort_by(|p, q| p[0].total_cmp(&q[0]).then(p[1].total_cmp(&q[1])));
    points.dedup();
    if points.len() < 3 {
        return points;
    }
    let mut hull: Vec<Point> = Vec::with_capacity(2 * points.len());
    let chain = |point: Point, floor: usize, hull: &mut Vec<Point>| {
        while hull.len() >= floor + 2 && cross(hull[hull.len() - 2], hull[hull.len() - 1], point) <= 0.0 {
            hull.pop();
        }
        hull.push(point);
    };
    for &p in &points {
        chain(p, 0, &mut hull);
    }
    let lower = hull.len() - 1;
    for &p in points.iter().rev().skip(1) {
        chain(p, lower, &mut hull);
    }
    hull.pop(); // the first point again
    if hull.len() < 3 {
        // All collinear: the two extremes.
        return vec![points[0], points[points.len() - 1]];
    }
    hull
}

/// Area of a simple polygon (shoelace), positive for counter-clockwise vertices; 0 for fewer
/// than three.
pub fn polygon_area(vertices: &[Point]) -> f64 {
    if vertices.len() < 3 {
        return 0.0;
    }
    let twice: f64 = vertices.iter().zip(vertices.iter().cycle().skip(1)).map(|(p, q)| p[0] * q[1] - q[0] * p[1]).sum();
    twice / 2.0
}

/// `subject` clipped to the convex, counter-clockwise polygon `clipper` (Sutherland–Hodgman).
fn clip(subject: &[Point], clipper: &[Point]) -> Vec<Point> {
    let mut output = subject.to_vec();
    for (&edge_start, &edge_end) in clipper.iter().zip(clipper.iter().cycle().skip(1)) {
        if output.is_empty() {
            break;
        }
        let input = std::mem::take(&mut output);
        let inside = |p: Point| cross(edge_start, edge_end, p) >= 0.0;
        let crossing = |p: Point, q: Point| {
            // Where segment p–q meets the clip edge's line.
            let (dp, dq) = (cross(edge_start, edge_end, p), cross(edge_start, edge_end, q));
            let t = dp / (dp - dq);
            [p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])]
        };
        for (&current, &next) in input.iter().zip(input.iter().cycle().skip(1)) {
            match (inside(current), inside(next)) {
                (true, true) => output.push(next),
                (true, false) => output.push(crossing(current, next)),
                (false, true) => {
                    output.push(crossing(current, next));
                    output.push(next);
                }
                (false, false) => {}
            }
        }
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(x: f64, y: f64, side: f64) -> Vec<Point> {
        vec![[x, y], [x + side, y], [x + side, y + side], [x, y + side]]
    }

    fn labelled(sets: &[(u8, Vec<Point>)]) -> (Vec<Point>, Vec<u8>) {
        let mut points = Vec::new();
        let mut labels = Vec::new();
        for (label, set) in sets {
            points.extend(set);
            labels.extend(std::iter::repeat_n(*label, set.len()));
        }
        (points, labels)
    }

    #[test]
    fn hull_drops_interior_collinear_and_duplicate_points() {
        let mut points = square(0.0, 0.0, 2.0);
        points.extend([[1.0, 1.0], [1.0, 0.0], [2.0, 1.0], [0.0, 0.0], [0.5, 1.5]]);
        let hull = convex_hull(points);
        assert_eq!(hull, vec![[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]]);
        assert_eq!(polygon_area(&hull), 4.0);
    }

    #[test]
    fn offset_unit_squares_overlap_by_a_third() {
        let (points, labels) = labelled(&[(3, square(0.0, 0.0, 1.0)), (7, square(0.5, 0.0, 1.0))]);
        let overlap = hull_overlap(&points, &labels).unwrap();
        assert_eq!(overlap.hulls.len(), 2);
        assert_eq!((overlap.hulls[0].class, overlap.hulls[0].area), (3, 1.0));
        assert_eq!(overlap.hulls[1].area, 1.0);
        let (a, b, iou) = overlap.pairwise_iou[0];
        assert_eq!((a, b), (3, 7));
        assert!((iou - 1.0 / 3.0).abs() < 1e-12, "{iou}");
        assert_eq!(overlap.mean_iou, overlap.max_iou);
    }

    #[test]
    fn nested_disjoint_and_identical_hulls() {
        let (points, labels) = labelled(&[
            (0, square(0.0, 0.0, 4.0)),
            (1, square(1.0, 1.0, 2.0)),
            (2, square(10.0, 10.0, 1.0)),
            (3, square(0.0, 0.0, 4.0)),
        ]);
        let overlap = hull_overlap(&points, &labels).unwrap();
        let iou = |a: u8, b: u8| overlap.pairwise_iou.iter().find(|p| p.0 == a && p.1 == b).unwrap().2;
        assert!((iou(0, 1) - 0.25).abs() < 1e-12);
        assert_eq!(iou(0, 2), 0.0);
        assert!((iou(0, 3) - 1.0).abs() < 1e-12);
        assert_eq!(overlap.pairwise_iou.len(), 6);
        assert!((overlap.max_iou - 1.0).abs() < 1e-12);
        let mean = (0.25 + 0.0 + 1.0 + 0.0 + 0.25 + 0.0) / 6.0;
        assert!((overlap.mean_iou - mean).abs() < 1e-12);
    }

    #[test]
    fn rotated_triangle_against_square() {
        // Triangle (0,0), (2,0), (0,2) against the unit square: the square lies inside it.
        let (points, labels) = labelled(&[(0, vec![[0.0, 2.0], [2.0, 0.0], [0.0, 0.0]]), (1, square(0.0, 0.0, 1.0))]);
        let overlap = hull_overlap(&points, &labels).unwrap();
        assert_eq!(overlap.hulls[0].area, 2.0);
        assert!((overlap.pairwise_iou[0].2 - 0.5).abs() < 1e-12);
    }

    #[test]
    fn degenerate_classes_have_zero_area() {
        let (points, labels) = labelled(&[
            (0, vec![[1.0, 1.0]]),
            (1, vec![[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [1.0, 1.0]]),
            (2, vec![[5.0, 5.0]; 4]),
            (4, square(0.0, 0.0, 2.0)),
        ]);
        let overlap = hull_overlap(&points, &labels).unwrap();
        let areas: Vec<f64> = overlap.hulls.iter().map(|h| h.area).collect();
        assert_eq!(areas, vec![0.0, 0.0, 0.0, 4.0]);
        assert_eq!(overlap.hulls[1].vertices, vec![[0.0, 0.0], [2.0, 2.0]]);
        assert_eq!(overlap.hulls[2].vertices, vec![[5.0, 5.0]]);
        assert!(overlap.pairwise_iou.iter().all(|p| p.2 == 0.0));
    }

    #[test]
    fn single_class_has_no_pairs() {
        let overlap = hull_overlap(&square(0.0, 0.0, 1.0), &[2; 4]).unwrap();
        assert!(overlap.pairwise_iou.is_empty());
        assert_eq!((overlap.mean_iou, overlap.max_iou), (0.0, 0.0));
        assert!(hull_overlap(&square(0.0, 0.0, 1.0), &[2; 3]).is_err());
    }
}
