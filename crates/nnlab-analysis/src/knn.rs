//! Exact k-nearest-neighbour queries, each point excluded from its own list, distance ties
//! broken by the lower index so that results never depend on visiting order or thread count.
//!
//! In 2-D a uniform grid with ring search answers all queries in near-linear time; in many
//! dimensions (the t-SNE input affinities) a blocked brute force over Gram matrices does.

use ndarray::{s, Array2, Axis};
use rayon::prelude::*;

use crate::Point;

/// A neighbour: its index and squared distance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Neighbour {
    pub index: usize,
    pub distance_sq: f64,
}

/// The `k` nearest of `candidates` so far, in increasing (distance, index) order.
struct Nearest {
    k: usize,
    list: Vec<Neighbour>,
}

impl Nearest {
    fn new(k: usize) -> Self {
        Nearest { k, list: Vec::with_capacity(k + 1) }
    }

    fn precedes(a: (f64, usize), b: &Neighbour) -> bool {
        a.0 < b.distance_sq || (a.0 == b.distance_sq && a.1 < b.index)
    }

    #[inline]
    fn offer(&mut self, index: usize, distance_sq: f64) {
        if self.list.len() == self.k {
            let last = self.list[self.k - 1];
            if !Self::precedes((distance_sq, index), &last) {
                return;
            }
            self.list.pop();
        }
        let at = self.list.partition_point(|n| Self::precedes((n.distance_sq, n.index), &Neighbour { index, distance_sq }));
        self.list.insert(at, Neighbour { index, distance_sq });
    }

    fn full(&self) -> bool {
        self.list.len() == self.k
    }

    fn worst(&self) -> f64 {
        self.list.last().map_or(f64::INFINITY, |n| n.distance_sq)
    }
}

/// The `k` nearest neighbours of every point of a 2-D set (`k < points.len()`), row-major
/// `points.len() × k`.
pub(crate) fn knn_2d(points: &[Point], k: usize) -> Vec<Neighbour> {
    debug_assert!(k >= 1 && k < points.len());
    let grid = Grid::new(points);
    points.par_iter().enumerate().flat_map_iter(|(index, point)| grid.nearest(points, index, *point, k).list).collect()
}

/// Points bucketed into square cells, about four per cell on average over the bounding box.
struct Grid {
    origin: Point,
    cell: f64,
    width: usize,
    height: usize,
    /// Start of each cell's run in `members` (`width × height + 1` entries).
    starts: Vec<usize>,
    members: Vec<usize>,
}

impl Grid {
    fn new(points: &[Point]) -> Grid {
        let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for p in points {
            for axis in 0..2 {
                lo[axis] = lo[axis].min(p[axis]);
                hi[axis] = hi[axis].max(p[axis]);
            }
        }
        let span = [hi[0] - lo[0], hi[1] - lo[1]];
        let target_cells = (points.len() / 4).max(1) as f64;
        let area = span[0].max(f64::MIN_POSITIVE) * span[1].max(f64::MIN_POSITIVE);
        let mut cell = (area / target_cells).sqrt();
        // A degenerate (line-like) set: size cells along its long side instead.
        let longest = span[0].max(span[1]);
        if !(cell.is_finite() && cell > 0.0) || cell < longest / target_cells {
            cell = longest / target_cells;
        }
        if !(cell.is_finite() && cell > 0.0) {
            cell = 1.0; // all points identical
        }
        // Cap the cell count near the point count, whatever the spread (a far outlier, spans
        // beyond f64 range).
        let max_cells = 4 * points.len() + 64;
        let cells_along = |s: f64, cell: f64| ((s / cell).floor() as usize).saturating_add(1);
        let (mut width, mut height) = (cells_along(span[0], cell), cells_along(span[1], cell));
        while width.saturating_mul(height) > max_cells {
            cell *= 2.0;
            width = cells_along(span[0], cell);
            height = cells_along(span[1], cell);
        }
        let cell_of = |p: &Point| {
            let cx = (((p[0] - lo[0]) / cell) as usize).min(width - 1);
            let cy = (((p[1] - lo[1]) / cell) as usize).min(height - 1);
            cy * width + cx
        };
        let mut counts = vec![0usize; width * height + 1];
        for p in points {
            counts[cell_of(p) + 1] += 1;
        }
        for i in 1..counts.len() {
            counts[i] += counts[i - 1];
        }
        let starts = counts.clone();
        let mut next = counts;
        let mut members = vec![0; points.len()];
        for (index, p) in points.iter().enumerate() {
            let c = cell_of(p);
            members[next[c]] = index;
            next[c] += 1;
        }
        Grid { origin: lo, cell, width, height, starts, members }
    }

    fn nearest(&self, points: &[Point], query: usize, at: Point, k: usize) -> Nearest {
        let mut nearest = Nearest::new(k);
        let cx = (((at[0] - self.origin[0]) / self.cell) as usize).min(self.width - 1) as isize;
        let cy = (((at[1] - self.origin[1]) / self.cell) as usize).min(self.height - 1) as isize;
        let max_ring = self.width.max(self.height) as isize;
        for ring in 0..=max_ring {
            for_ring_cells(cx, cy, ring, |x, y| {
                if x < 0 || y < 0 || x >= self.width as isize || y >= self.height as isize {
                    return;
                }
                let c = y as usize * self.width + x as usize;
                for &other in &self.members[self.starts[c]..self.starts[c + 1]] {
                    if other != query {
                        let p = points[other];
                        let (dx, dy) = (p[0] - at[0], p[1] - at[1]);
                        nearest.offer(other, dx * dx + dy * dy);
                    }
                }
            });
            if nearest.full() {
                // Anything outside the (2·ring + 1)² block is at least this far away.
                let x0 = self.origin[0] + (cx - ring) as f64 * self.cell;
                let x1 = self.origin[0] + (cx + ring + 1) as f64 * self.cell;
                let y0 = self.origin[1] + (cy - ring) as f64 * self.cell;
                let y1 = self.origin[1] + (cy + ring + 1) as f64 * self.cell;
                let gap = (at[0] - x0).min(x1 - at[0]).min(at[1] - y0).min(y1 - at[1]).max(0.0);
                if nearest.worst() < gap * gap {
                    break;
                }
            }
        }
        nearest
    }
}

/// Calls `visit` on every cell at Chebyshev distance `ring` from `(cx, cy)`.
fn for_ring_cells(cx: isize, cy: isize, ring: isize, mut visit: impl FnMut(isize, isize)) {
    if ring == 0 {
        visit(cx, cy);
        return;
    }
    for dx in -ring..=ring {
        visit(cx + dx, cy - ring);
        visit(cx + dx, cy + ring);
    }
    for dy in -ring + 1..ring {
        visit(cx - ring, cy + dy);
        visit(cx + ring, cy + dy);
    }
}

/// The `k` nearest neighbours (`k < rows`) of every row of `data` in Euclidean distance,
/// row-major `rows × k`. Distances come from `|a|² + |b|² − 2a·b` over blocks of rows, which
/// keeps the work in matrix products; tiny negative round-off is clamped to zero.
pub(crate) fn knn_dense(data: &Array2<f64>, k: usize) -> Vec<Neighbour> {
    const BLOCK: usize = 256;
    let rows = data.nrows();
    debug_assert!(k >= 1 && k < rows);
    let norms: Vec<f64> = data.axis_iter(Axis(0)).map(|r| r.dot(&r)).collect();
    let blocks: Vec<usize> = (0..rows).step_by(BLOCK).collect();
    let per_block: Vec<Vec<Neighbour>> = blocks
        .par_iter()
        .map(|&start| {
            let end = (start + BLOCK).min(rows);
            let gram = data.slice(s![start..end, ..]).dot(&data.t());
            let mut found = Vec::with_capacity((end - start) * k);
            let mut candidates: Vec<(f64, usize)> = Vec::with_capacity(rows);
            for (offset, gram_row) in gram.axis_iter(Axis(0)).enumerate() {
                let i = start + offset;
                candidates.clear();
                candidates.extend(
                    gram_row
                        .iter()
                        .enumerate()
                        .filter(|&(j, _)| j != i)
                        .map(|(j, &g)| ((norms[i] + norms[j] - 2.0 * g).max(0.0), j)),
                );
                let by_distance_then_index = |a: &(f64, usize), b: &(f64, usize)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
                candidates.select_nth_unstable_by(k - 1, by_distance_then_index);
                let nearest = &mut candidates[..k];
                nearest.sort_unstable_by(by_distance_then_index);
                found.extend(nearest.iter().map(|&(distance_sq, index)| Neighbour { index, distance_sq }));
            }
            found
        })
        .collect();
    per_block.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(points: &[Point], k: usize) -> Vec<Neighbour> {
        let mut out = Vec::new();
        for (i, a) in points.iter().enumerate() {
            let mut all: Vec<(f64, usize)> = points
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(j, b)| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2), j))
                .collect();
            all.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
            out.extend(all[..k].iter().map(|&(distance_sq, index)| Neighbour { index, distance_sq }));
        }
        out
    }

    /// A deterministic scatter with clusters, duplicates and a lattice (many exact ties).
    fn awkward_points() -> Vec<Point> {
        let mut state = 12345u64;
        let mut uniform = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut points = Vec::new();
        for c in 0..3 {
            for _ in 0..150 {
                points.push([c as f64 * 10.0 + uniform(), uniform() * 0.1]);
            }
        }
        for x in 0..12 {
            for y in 0..12 {
                points.push([x as f64 - 20.0, y as f64]);
            }
        }
        points.extend([[5.0, 5.0]; 7]);
        points
    }

    #[test]
    fn grid_matches_brute_force_including_ties() {
        let points = awkward_points();
        for k in [1, 5, 30] {
            assert_eq!(knn_2d(&points, k), brute(&points, k), "k = {k}");
        }
    }

    #[test]
    fn grid_handles_degenerate_sets() {
        let line: Vec<Point> = (0..50).map(|i| [i as f64, 0.0]).collect();
        assert_eq!(knn_2d(&line, 3), brute(&line, 3));
        let same = vec![[1.0, 1.0]; 10];
        assert_eq!(knn_2d(&same, 9), brute(&same, 9));
        let two = vec![[0.0, 0.0], [1e300, -1e300]];
        assert_eq!(knn_2d(&two, 1), brute(&two, 1));
    }

    #[test]
    fn dense_matches_brute_force_on_a_plane() {
        let points = awkward_points();
        let data = Array2::from_shape_fn((points.len(), 2), |(r, c)| points[r][c]);
        let dense = knn_dense(&data, 10);
        let exact = brute(&points, 10);
        // Gram-matrix distances round differently; compare the distances, not the tie order.
        for (d, e) in dense.iter().zip(&exact) {
            assert!((d.distance_sq - e.distance_sq).abs() < 1e-9, "{d:?} vs {e:?}");
        }
    }
}
