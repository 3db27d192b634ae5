//! Neighbourhood hit: how often a point's nearest neighbours in the projection share its class.

use crate::knn::{knn_2d, Neighbour};
use crate::{check_labelled, group_by_class, AnalysisError, Point, Result};

/// Neighbourhood hit at one k: the fraction of each point's k nearest neighbours (itself
/// excluded, distance ties broken by the lower index) that share its class, averaged over all
/// points and over each class's points.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NeighbourhoodHit {
    pub k: usize,
    pub overall: f64,
    /// `(class, mean hit over that class's points)`, classes in increasing order.
    pub per_class: Vec<(u8, f64)>,
}

/// Neighbourhood hit of a labelled 2-D projection at `k` (1 ≤ k < number of points).
pub fn neighbourhood_hit(points: &[Point], labels: &[u8], k: usize) -> Result<NeighbourhoodHit> {
    const WHAT: &str = "neighbourhood hit";
    if k == 0 {
        return Err(zero_k(WHAT, "k"));
    }
    Ok(Neighbourhoods::query(points, labels, k, WHAT)?.hit(k))
}

/// Neighbourhood hit for every k in 1..=k_max from one kNN query: element i is k = i + 1.
pub fn neighbourhood_hit_curve(points: &[Point], labels: &[u8], k_max: usize) -> Result<Vec<f64>> {
    const WHAT: &str = "neighbourhood hit curve";
    if k_max == 0 {
        return Err(zero_k(WHAT, "k_max"));
    }
    Ok(Neighbourhoods::query(points, labels, k_max, WHAT)?.curve(k_max))
}

pub(crate) fn zero_k(what: &'static str, name: &'static str) -> AnalysisError {
    AnalysisError::Parameter { what, name, value: "0".to_string(), expected: "at least 1 neighbour" }
}

/// The nearest neighbours of every point, up to some k, and which of them share its class.
pub(crate) struct Neighbourhoods<'a> {
    labels: &'a [u8],
    k: usize,
    /// Row-major `points × k`: whether neighbour j of point i has point i's class.
    same: Vec<bool>,
}

impl<'a> Neighbourhoods<'a> {
    /// Finds the `k` nearest neighbours of every point (`k ≥ 1`).
    pub fn query(points: &[Point], labels: &'a [u8], k: usize, what: &'static str) -> Result<Self> {
        check_labelled(what, points, labels)?;
        if points.len() <= k {
            return Err(AnalysisError::TooFew { what, unit: "points (k + 1)", needed: k + 1, actual: points.len() });
        }
        let neighbours: Vec<Neighbour> = knn_2d(points, k);
        let same = neighbours
            .chunks_exact(k)
            .zip(labels)
            .flat_map(|(row, &label)| row.iter().map(move |n| labels[n.index] == label))
            .collect();
        Ok(Neighbourhoods { labels, k, same })
    }

    /// Per-point hit fraction at `k ≤ self.k`.
    fn point_hits(&self, k: usize) -> impl Iterator<Item = f64> + '_ {
        self.same.chunks_exact(self.k).map(move |row| row[..k].iter().filter(|&&s| s).count() as f64 / k as f64)
    }

    pub fn hit(&self, k: usize) -> NeighbourhoodHit {
        let hits: Vec<f64> = self.point_hits(k).collect();
        let overall = hits.iter().sum::<f64>() / hits.len() as f64;
        let per_class = group_by_class(self.labels)
            .into_iter()
            .map(|(class, members)| {
                let sum: f64 = members.iter().map(|&i| hits[i]).sum();
                (class, sum / members.len() as f64)
            })
            .collect();
        NeighbourhoodHit { k, overall, per_class }
    }

    pub fn curve(&self, k_max: usize) -> Vec<f64> {
        let n = self.labels.len() as f64;
        let mut sums = vec![0.0; k_max];
        for row in self.same.chunks_exact(self.k) {
            let mut count = 0usize;
            for (k, &s) in row[..k_max].iter().enumerate() {
                count += usize::from(s);
                sums[k] += count as f64 / (k + 1) as f64;
            }
        }
        sums.into_iter().map(|s| s / n).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separated_clusters_hit_every_time() {
        let mut points = Vec::new();
        let mut labels = Vec::new();
        for class in 0..3u8 {
            for i in 0..20 {
                points.push([f64::from(class) * 100.0 + f64::from(i % 5), f64::from(i / 5)]);
                labels.push(class);
            }
        }
        let nh = neighbourhood_hit(&points, &labels, 10).unwrap();
        assert_eq!(nh.overall, 1.0);
        assert_eq!(nh.per_class, vec![(0, 1.0), (1, 1.0), (2, 1.0)]);
        assert!(neighbourhood_hit_curve(&points, &labels, 19).unwrap().iter().all(|&h| h == 1.0));
    }

    #[test]
    fn alternating_line_has_known_counts() {
        // Labels 0 1 0 1 … on integer positions: the 2 nearest neighbours are both of the other
        // class; with k = 3 the third is at distance 2 on the lower-index side (tie broken by
        // index), which shares the class — except for point 0, whose third is point 3 (other
        // class), and point 1, whose third is point 3 (same class).
        let n = 10;
        let points: Vec<Point> = (0..n).map(|i| [i as f64, 0.0]).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % 2) as u8).collect();
        assert_eq!(neighbourhood_hit(&points, &labels, 2).unwrap().overall, {
            // Ends have neighbours 1 and 2 (resp. n−2, n−3) away: one of each class.
            (8.0 * 0.0 + 2.0 * 0.5) / 10.0
        });
        let nh3 = neighbourhood_hit(&points, &labels, 3).unwrap();
        // Point 0: neighbours 1, 2, 3 → one hit. Point 9: 8, 7, 6 → one hit (7).
        // Interior points: two opposite neighbours at distance 1, then the lower-index one at
        // distance 2 (a hit) — except point 1, whose lower side at distance 2 does not exist,
        // so its third is 3 (a hit) as well; point 8 takes 6 (a hit).
        let expected = (1.0 + 1.0 + 8.0 * 1.0) / 3.0 / 10.0;
        assert!((nh3.overall - expected).abs() < 1e-15, "{}", nh3.overall);
        let curve = neighbourhood_hit_curve(&points, &labels, 3).unwrap();
        assert_eq!(curve[1], 0.1);
        assert!((curve[2] - expected).abs() < 1e-15);
    }

    #[test]
    fn per_class_averages_over_that_class() {
        // Class 0 is a tight pair; class 1 sits between class 2's points.
        let points = [[0.0, 0.0], [0.1, 0.0], [10.0, 0.0], [9.0, 0.0], [11.0, 0.0]];
        let labels = [0, 0, 1, 2, 2];
        let nh = neighbourhood_hit(&points, &labels, 1).unwrap();
        // 0→1 hit, 1→0 hit, 2→3 (tie with 4, lower index) miss, 3→2 miss, 4→2 miss.
        assert_eq!(nh.per_class, vec![(0, 1.0), (1, 0.0), (2, 0.0)]);
        assert!((nh.overall - 0.4).abs() < 1e-15);
    }

    #[test]
    fn bad_input_is_an_error() {
        let points = [[0.0, 0.0], [1.0, 0.0]];
        assert!(neighbourhood_hit(&points, &[0], 1).unwrap_err().to_string().contains("2 points but 1 labels"));
        assert!(neighbourhood_hit(&points, &[0, 1], 2).is_err());
        assert!(neighbourhood_hit(&points, &[0, 1], 0).is_err());
        assert!(neighbourhood_hit(&[[0.0, f64::NAN], [1.0, 0.0]], &[0, 1], 1).unwrap_err().to_string().contains("point 0"));
        assert!(neighbourhood_hit_curve(&points, &[0, 1], 0).is_err());
    }
}
