//! The TensorFlow Playground's four 2-D classification data sets, generated as the Playground's own
//! `dataset.ts` does: the same shapes, noise rules, draw order, Fisher–Yates shuffle and train/test
//! split. Labels are ±1.
//!
//! The random source is a closure returning uniform values in [0, 1) (the Playground's
//! `Math.random`), so the draw order is the Playground's and the caller chooses the generator.

use serde::{Deserialize, Serialize};

/// Which data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    Circle,
    Xor,
    Gaussians,
    Spiral,
}

impl Shape {
    pub const ALL: [Shape; 4] = [Shape::Circle, Shape::Xor, Shape::Gaussians, Shape::Spiral];

    pub fn title(self) -> &'static str {
        match self {
            Shape::Circle => "circle",
            Shape::Xor => "exclusive or",
            Shape::Gaussians => "two gaussians",
            Shape::Spiral => "spiral",
        }
    }
}

/// One labelled point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point2 {
    pub x: f64,
    pub y: f64,
    /// +1 or −1.
    pub label: f64,
}

/// The Playground's number of points for classification.
pub const SAMPLES: usize = 500;

/// The half-width of the square the Playground draws ([-6, 6]²).
pub const EXTENT: f64 = 6.0;

/// A generated data set, shuffled and split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Split {
    pub train: Vec<Point2>,
    pub test: Vec<Point2>,
}

/// `samples` points of `shape` with the Playground's noise (its 0–50 slider divided by 100),
/// shuffled, the first `train_percent`% for training (the floor, as the Playground splits).
pub fn split(shape: Shape, samples: usize, noise: f64, train_percent: f64, random: &mut impl FnMut() -> f64) -> Split {
    let mut points = generate(shape, samples, noise, random);
    shuffle(&mut points, random);
    let at = ((points.len() as f64 * train_percent / 100.0).floor() as usize).min(points.len());
    let test = points.split_off(at);
    Split { train: points, test }
}

/// The unshuffled points of `shape`, positives first where the Playground generates them so.
pub fn generate(shape: Shape, samples: usize, noise: f64, random: &mut impl FnMut() -> f64) -> Vec<Point2> {
    match shape {
        Shape::Circle => circle(samples, noise, random),
        Shape::Xor => xor(samples, noise, random),
        Shape::Gaussians => gaussians(samples, noise, random),
        Shape::Spiral => spiral(samples, noise, random),
    }
}

/// Fisher–Yates from the back, as the Playground's `shuffle`.
pub fn shuffle<T>(items: &mut [T], random: &mut impl FnMut() -> f64) {
    let mut counter = items.len();
    while counter > 0 {
        let index = ((random() * counter as f64).floor() as usize).min(counter - 1);
        counter -= 1;
        items.swap(counter, index);
    }
}

fn uniform(random: &mut impl FnMut() -> f64, a: f64, b: f64) -> f64 {
    random() * (b - a) + a
}

fn label(positive: bool) -> f64 {
    if positive {
        1.0
    } else {
        -1.0
    }
}

/// Positives uniformly in radius [0, 2.5), negatives in [3.5, 5); noise moves the point the label
/// is decided at, not the point itself, so noisy labels sit on the wrong side.
fn circle(samples: usize, noise: f64, random: &mut impl FnMut() -> f64) -> Vec<Point2> {
    const RADIUS: f64 = 5.0;
    let mut points = Vec::with_capacity(samples);
    for (r_low, r_high) in [(0.0, RADIUS * 0.5), (RADIUS * 0.7, RADIUS)] {
        for _ in 0..samples / 2 {
            let r = uniform(random, r_low, r_high);
            let angle = uniform(random, 0.0, 2.0 * std::f64::consts::PI);
            let (x, y) = (r * angle.sin(), r * angle.cos());
            let noise_x = uniform(random, -RADIUS, RADIUS) * noise;
            let noise_y = uniform(random, -RADIUS, RADIUS) * noise;
            let inside = (x + noise_x).hypot(y + noise_y) < RADIUS * 0.5;
            points.push(Point2 { x, y, label: label(inside) });
        }
    }
    points
}

/// Uniform in [-5, 5]², each coordinate pushed 0.3 away from its axis; the label is the sign of
/// the (noise-moved) product.
fn xor(samples: usize, noise: f64, random: &mut impl FnMut() -> f64) -> Vec<Point2> {
    const PADDING: f64 = 0.3;
    let pad = |v: f64| if v > 0.0 { v + PADDING } else { v - PADDING };
    (0..samples)
        .map(|_| {
            let x = pad(uniform(random, -5.0, 5.0));
            let y = pad(uniform(random, -5.0, 5.0));
            let noise_x = uniform(random, -5.0, 5.0) * noise;
            let noise_y = uniform(random, -5.0, 5.0) * noise;
            Point2 { x, y, label: label((x + noise_x) * (y + noise_y) >= 0.0) }
        })
        .collect()
}

/// Half the points around (2, 2) labelled +1, half around (−2, −2) labelled −1; the variance grows
/// linearly from 0.5 at noise 0 to 4 at noise 0.5.
fn gaussians(samples: usize, noise: f64, random: &mut impl FnMut() -> f64) -> Vec<Point2> {
    let variance = 0.5 + (4.0 - 0.5) * noise / 0.5;
    let mut points = Vec::with_capacity(samples);
    for (centre, positive) in [(2.0, true), (-2.0, false)] {
        for _ in 0..samples / 2 {
            let x = normal(random, centre, variance);
            let y = normal(random, centre, variance);
            points.push(Point2 { x, y, label: label(positive) });
        }
    }
    points
}

/// Two interleaved arms of 1.75 turns, radius growing to 5; noise jitters the position.
fn spiral(samples: usize, noise: f64, random: &mut impl FnMut() -> f64) -> Vec<Point2> {
    let n = samples / 2;
    let mut points = Vec::with_capacity(samples);
    for (delta, positive) in [(0.0, true), (std::f64::consts::PI, false)] {
        for i in 0..n {
            let r = i as f64 / n as f64 * 5.0;
            let t = 1.75 * i as f64 / n as f64 * 2.0 * std::f64::consts::PI + delta;
            let x = r * t.sin() + uniform(random, -1.0, 1.0) * noise;
            let y = r * t.cos() + uniform(random, -1.0, 1.0) * noise;
            points.push(Point2 { x, y, label: label(positive) });
        }
    }
    points
}

/// Marsaglia's polar method, as the Playground's `normalRandom` (which takes a variance).
fn normal(random: &mut impl FnMut() -> f64, mean: f64, variance: f64) -> f64 {
    loop {
        let v1 = 2.0 * random() - 1.0;
        let v2 = 2.0 * random() - 1.0;
        let s = v1 * v1 + v2 * v2;
        // s = 0 would divide by zero; the Playground never meets it in practice, we skip it.
        if s <= 1.0 && s > 0.0 {
            return mean + variance.sqrt() * (-2.0 * s.ln() / s).sqrt() * v1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic stand-in for Math.random: a 64-bit LCG's top 53 bits.
    fn lcg(seed: u64) -> impl FnMut() -> f64 {
        let mut state = seed;
        move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    fn replay(values: &[f64]) -> impl FnMut() -> f64 + '_ {
        let mut at = 0;
        move || {
            let v = values[at % values.len()];
            at += 1;
            v
        }
    }

    #[test]
    fn circle_draws_radius_angle_then_noise_in_that_order() {
        // r = U(0, 2.5) at 0.5 → 1.25; angle = U(0, 2π) at 0.25 → π/2: the point is (1.25, 0).
        // Noise 0.5: nx = U(-5, 5)·0.5 at 1.0 → 2.5, ny at 0.5 → 0: the label point is (3.75, 0), outside.
        let points = circle(2, 0.5, &mut replay(&[0.5, 0.25, 1.0, 0.5]));
        assert!((points[0].x - 1.25).abs() < 1e-12 && points[0].y.abs() < 1e-12, "{:?}", points[0]);
        assert_eq!(points[0].label, -1.0, "noise moved the label point out of the circle");
        // The second point (a negative) re-uses the same draws: r = U(3.5, 5) at 0.5 → 4.25, still outside.
        assert!((points[1].x - 4.25).abs() < 1e-12);
        assert_eq!(points[1].label, -1.0);
        // Without noise, every label is the point's own side of radius 2.5.
        for p in circle(500, 0.0, &mut lcg(1)) {
            assert_eq!(p.label > 0.0, p.x.hypot(p.y) < 2.5, "{p:?}");
        }
    }

    #[test]
    fn xor_pads_coordinates_away_from_the_axes() {
        // x = U(-5, 5) at 0.5 → 0 → padded to −0.3 (0 is not > 0); y at 0.75 → 2.5 → 2.8.
        let points = xor(1, 0.0, &mut replay(&[0.5, 0.75, 0.5, 0.5]));
        assert!((points[0].x + 0.3).abs() < 1e-12 && (points[0].y - 2.8).abs() < 1e-12, "{:?}", points[0]);
        assert_eq!(points[0].label, -1.0);
        for p in xor(500, 0.0, &mut lcg(2)) {
            assert!(p.x.abs() >= 0.3 && p.y.abs() >= 0.3 && p.x.abs() <= 5.3);
            assert_eq!(p.label > 0.0, p.x * p.y >= 0.0);
        }
    }

    #[test]
    fn gaussians_variance_follows_the_noise_slider() {
        let spread = |noise: f64| {
            let points = gaussians(20_000, noise, &mut lcg(3));
            let positives: Vec<f64> = points.iter().filter(|p| p.label > 0.0).map(|p| p.x).collect();
            let mean = positives.iter().sum::<f64>() / positives.len() as f64;
            let var = positives.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / positives.len() as f64;
            (mean, var)
        };
        let (mean, var) = spread(0.0);
        assert!((mean - 2.0).abs() < 0.05 && (var - 0.5).abs() < 0.05, "{mean} {var}");
        let (_, var) = spread(0.5);
        assert!((var - 4.0).abs() < 0.3, "{var}");
    }

    #[test]
    fn spiral_arms_are_half_a_turn_apart() {
        let points = spiral(500, 0.0, &mut lcg(4));
        assert_eq!(points.len(), 500);
        // Point i of the negative arm is point i of the positive arm rotated by π.
        for i in 0..250 {
            let (p, q) = (points[i], points[250 + i]);
            assert!((p.x + q.x).abs() < 1e-9 && (p.y + q.y).abs() < 1e-9);
            assert_eq!((p.label, q.label), (1.0, -1.0));
        }
        // i = 125: r = 2.5, t = 1.75π: (2.5 sin 1.75π, 2.5 cos 1.75π).
        let t = 1.75 * std::f64::consts::PI;
        assert!((points[125].x - 2.5 * t.sin()).abs() < 1e-12 && (points[125].y - 2.5 * t.cos()).abs() < 1e-12);
    }

    #[test]
    fn split_shuffles_then_takes_the_floor_of_the_ratio() {
        let s = split(Shape::Xor, 500, 0.0, 30.0, &mut lcg(5));
        assert_eq!((s.train.len(), s.test.len()), (150, 350));
        let s = split(Shape::Spiral, 500, 0.0, 50.0, &mut lcg(6));
        // Shuffled: the first half is not the positive arm.
        let positives = s.train.iter().filter(|p| p.label > 0.0).count();
        assert!((80..170).contains(&positives), "{positives} positives among 250 training points");
        // Same random source, same data set.
        assert_eq!(split(Shape::Circle, 500, 0.2, 50.0, &mut lcg(7)), split(Shape::Circle, 500, 0.2, 50.0, &mut lcg(7)));
    }

    #[test]
    fn shuffle_is_fisher_yates_from_the_back() {
        // counter 3: index floor(0.0·3) = 0 → swap(2, 0) → [c, b, a]; counter 2: floor(0.99·2) = 1 →
        // swap(1, 1); counter 1: swap(0, 0).
        let mut items = ['a', 'b', 'c'];
        shuffle(&mut items, &mut replay(&[0.0, 0.99, 0.5]));
        assert_eq!(items, ['c', 'b', 'a']);
    }
}
