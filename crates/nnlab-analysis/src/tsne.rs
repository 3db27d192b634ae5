//! Barnes–Hut t-SNE into 2-D, seeded and bit-for-bit reproducible; see [`tsne_2d`].

use std::panic::{catch_unwind, AssertUnwindSafe};

use bhtsne::{tSNE, Neighbor};
use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::knn::knn_dense;
use crate::{pca, AnalysisError, Features, Point, Result};

/// Fewest points t-SNE accepts.
const MIN_POINTS: usize = 4;

/// Settings of [`tsne_2d`]. The remaining settings are the usual ones: learning rate
/// max(n / 12, 200), momentum 0.5 then 0.8 from iteration 250, early exaggeration 12 for the
/// first 250 iterations.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TsneConfig {
    /// Effective number of neighbours of the input affinities; each point's affinities use its
    /// ⌊3 × perplexity⌋ nearest neighbours. Lowered to (n − 1) / 3 on sets too small for it.
    pub perplexity: f64,
    /// Barnes–Hut opening angle: larger is faster and coarser; must be > 0.
    pub theta: f64,
    /// Gradient-descent iterations (the first 250 with early exaggeration 12).
    pub max_iter: usize,
    /// Seed of the initial embedding.
    pub seed: u64,
    /// When `Some(d)`, features with more than `d` columns are first projected onto their
    /// first `d` principal components (skipped when there are no more rows than `d`). The
    /// default, 50, is the usual practice for image data: it removes pixel noise and makes the
    /// neighbour search ~16× cheaper for MNIST's 784 pixels.
    pub pca_dims: Option<usize>,
}

impl Default for TsneConfig {
    /// Perplexity 30, θ = 0.5, 1,000 iterations, seed 0, PCA to 50 dimensions first.
    fn default() -> Self {
        TsneConfig { perplexity: 30.0, theta: 0.5, max_iter: 1000, seed: 0, pca_dims: Some(50) }
    }
}

/// Embeds the rows of `features` in 2-D with Barnes–Hut t-SNE (bhtsne 0.7). The same features
/// and config give a bit-identical embedding, whatever the caller's thread count.
///
/// # Why bhtsne and not linfa-tsne
///
/// The project's stack names linfa-tsne, but linfa-tsne 0.8.1 (a wrapper over bhtsne 0.4) failed
/// this crate's bar on both counts that matter here: it drew its initial solution from an
/// unseeded RNG, so every run gave a different embedding, and its recursive space-partitioning
/// tree overflowed the stack on duplicate points (3 aborts in 15 runs on 1,000 MNIST images —
/// an abort that no `Result` or `catch_unwind` can turn into an error). It also took ~234 s
/// for the 10,000 MNIST test images. bhtsne 0.7 used directly builds its Barnes–Hut tree
/// iteratively over Morton codes (duplicates share a leaf), takes the initial embedding and
/// the input neighbourhoods from the caller, and is several times faster.
///
/// # How determinism is obtained
///
/// * The input neighbourhoods are computed here, exactly, with ties broken by index (bhtsne's
///   own vantage-point tree picks its vantage points with an unseeded RNG, so with duplicate
///   points it could order tied neighbours differently from run to run).
/// * The initial embedding is drawn here from ChaCha8 seeded with [`TsneConfig::seed`]:
///   N(0, 10⁻⁴) per coordinate, as in the reference implementation.
/// * The optimisation runs inside a one-thread rayon pool: bhtsne recentres the embedding every
///   iteration with a parallel fold/reduce whose split points depend on work stealing, so with
///   several threads the last bits — and after hundreds of iterations the whole picture —
///   would vary between runs. (Its gradient is computed per point and summed in order, so
///   these two reductions — and the one normalising P — are all that stands between bhtsne and
///   a deterministic multi-threaded run.) The price is one core: the 10,000 MNIST test images
///   take ~23 s on the 2-core development machine (PCA to 50 and the exact kNN on both cores,
///   ~5 s of it), against 52 s for scikit-learn's Barnes–Hut TSNE on both cores.
///
/// Any panic inside bhtsne is caught and returned as [`AnalysisError::Tsne`]; the embedding is
/// checked to be finite.
pub fn tsne_2d(features: Features<'_>, config: &TsneConfig) -> Result<Vec<Point>> {
    features.check()?;
    check_config(config)?;
    let n = features.rows;
    if n < MIN_POINTS {
        return Err(AnalysisError::TooFew { what: "t-SNE", unit: "points", needed: MIN_POINTS, actual: n });
    }
    let tsne_error = |message: String| AnalysisError::Tsne { rows: n, message };

    let data = match config.pca_dims {
        Some(dims) if features.cols > dims && features.rows > dims => pca::project(features, dims)?,
        _ => features.to_array(),
    };
    let perplexity = config.perplexity.min((n - 1) as f64 / 3.0);
    let k = ((3.0 * perplexity) as usize).clamp(1, n - 1);
    let neighbours = input_neighbours(&data, k);
    let initial = initial_embedding(n, config.seed);

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .map_err(|e| tsne_error(format!("cannot start its thread: {e}")))?;
    let indices: Vec<usize> = (0..n).collect();
    let embedding = pool
        .install(|| {
            catch_unwind(AssertUnwindSafe(|| {
                tSNE::<f64, usize, 2>::new(&indices)
                    .perplexity(perplexity)
                    .learning_rate(learning_rate(n))
                    .epochs(config.max_iter)
                    .initial_embedding(initial)
                    .barnes_hut_with_neighbors(config.theta, &neighbours)
                    .embedding()
            }))
        })
        .map_err(|panic| tsne_error(format!("bhtsne panicked: {}", panic_message(&panic))))?;

    if let Some(at) = embedding.iter().position(|v| !v.is_finite()) {
        return Err(tsne_error(format!("the embedding diverged (non-finite at point {})", at / 2)));
    }
    Ok(embedding.chunks_exact(2).map(|p| [p[0], p[1]]).collect())
}

/// max(n / 12, 200): the step openTSNE uses and scikit-learn's `learning_rate="auto"` amounts
/// to (sklearn writes it as max(n / 12 / 4, 50) against a gradient with a factor 4 that bhtsne's
/// gradient, like the reference implementation's, leaves out). bhtsne's own default copies
/// sklearn's formula without the 4, a step four times smaller, which leaves 10,000 MNIST images
/// visibly under-converged after 1,000 iterations (clusters split in two).
fn learning_rate(n: usize) -> f64 {
    (n as f64 / 12.0).max(200.0)
}

fn check_config(config: &TsneConfig) -> Result<()> {
    let invalid = |name, value: String, expected| AnalysisError::Parameter { what: "t-SNE", name, value, expected };
    if !(config.perplexity.is_finite() && config.perplexity > 0.0) {
        return Err(invalid("perplexity", config.perplexity.to_string(), "a finite number > 0"));
    }
    if !(config.theta.is_finite() && config.theta > 0.0) {
        return Err(invalid("theta", config.theta.to_string(), "a finite number > 0"));
    }
    if config.pca_dims == Some(0) {
        return Err(invalid("pca_dims", "0".to_string(), "at least 1 dimension, or none"));
    }
    Ok(())
}

/// Each row's `k` nearest neighbours, as bhtsne wants them (Euclidean distances).
fn input_neighbours(data: &Array2<f64>, k: usize) -> Vec<Vec<Neighbor<f64>>> {
    knn_dense(data, k)
        .chunks_exact(k)
        .map(|row| row.iter().map(|n| Neighbor { index: n.index, distance: n.distance_sq.sqrt() }).collect())
        .collect()
}

/// N(0, 10⁻⁴) per coordinate from ChaCha8 seeded with `seed`.
fn initial_embedding(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let normal = Normal::new(0.0, 1e-4).expect("valid normal");
    (0..2 * n).map(|_| normal.sample(&mut rng)).collect()
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".to_string())
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neighbourhood_hit;

    /// `per_class` points around each of `classes` centres in `dims` dimensions, from a fixed
    /// LCG, with a few exact duplicates.
    fn clusters(classes: usize, per_class: usize, dims: usize) -> (Vec<f32>, Vec<u8>) {
        let mut state = 7u64;
        let mut uniform = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 40) as f32 / (1u64 << 24) as f32
        };
        let mut values = Vec::new();
        let mut labels = Vec::new();
        for c in 0..classes {
            for i in 0..per_class {
                if i % 25 == 24 {
                    // A duplicate of the previous point.
                    let previous = values[values.len() - dims..].to_vec();
                    values.extend(previous);
                } else {
                    values.extend((0..dims).map(|d| if d % classes == c { 4.0 } else { 0.0 } + uniform()));
                }
                labels.push(c as u8);
            }
        }
        (values, labels)
    }

    fn quick(seed: u64) -> TsneConfig {
        TsneConfig { max_iter: 300, seed, ..TsneConfig::default() }
    }

    #[test]
    fn same_seed_is_bit_identical_and_another_seed_differs() {
        let (values, labels) = clusters(4, 75, 60);
        let features = Features::new(300, 60, &values).unwrap();
        let first = tsne_2d(features, &quick(11)).unwrap();
        let second = tsne_2d(features, &quick(11)).unwrap();
        let bits = |e: &[Point]| e.iter().flat_map(|p| p.map(f64::to_bits)).collect::<Vec<_>>();
        assert_eq!(bits(&first), bits(&second));
        let other = tsne_2d(features, &quick(12)).unwrap();
        assert_ne!(bits(&first), bits(&other));
        // And it is a t-SNE: the clusters come out separated.
        assert!(neighbourhood_hit(&first, &labels, 10).unwrap().overall > 0.95);
    }

    #[test]
    fn result_does_not_depend_on_the_callers_thread_count() {
        let (values, _) = clusters(3, 40, 20);
        let features = Features::new(120, 20, &values).unwrap();
        let config = TsneConfig { max_iter: 200, ..TsneConfig::default() };
        let here = tsne_2d(features, &config).unwrap();
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        let there = pool.install(|| tsne_2d(features, &config).unwrap());
        assert_eq!(here, there);
    }

    #[test]
    fn small_and_degenerate_sets_do_not_crash() {
        for n in [4usize, 5, 10, 40, 91] {
            let (values, _) = clusters(2, n.div_ceil(2), 3);
            let features = Features::new(n, 3, &values[..n * 3]).unwrap();
            let embedding = tsne_2d(features, &quick(0)).unwrap();
            assert_eq!(embedding.len(), n);
        }
        // Every point identical.
        let same = vec![0.5f32; 50 * 4];
        let embedding = tsne_2d(Features::new(50, 4, &same).unwrap(), &quick(0)).unwrap();
        assert!(embedding.iter().all(|p| p[0].is_finite() && p[1].is_finite()));
        // Two groups of exact duplicates.
        let pairs: Vec<f32> = (0..60).flat_map(|i| [f32::from(u8::from(i % 2 == 0)); 5]).collect();
        assert!(tsne_2d(Features::new(60, 5, &pairs).unwrap(), &quick(0)).is_ok());
    }

    #[test]
    fn bad_input_is_an_error() {
        let values = [0.0f32; 12];
        let features = Features { rows: 3, cols: 4, values: &values };
        assert!(tsne_2d(features, &TsneConfig::default()).unwrap_err().to_string().contains("at least 4 points"));
        let features = Features { rows: 6, cols: 2, values: &values };
        for config in [
            TsneConfig { perplexity: 0.0, ..TsneConfig::default() },
            TsneConfig { theta: f64::NAN, ..TsneConfig::default() },
            TsneConfig { pca_dims: Some(0), ..TsneConfig::default() },
        ] {
            assert!(tsne_2d(features, &config).is_err(), "{config:?}");
        }
    }
}
