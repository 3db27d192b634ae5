//! Principal component analysis through linfa-reduction.

use linfa::traits::{Fit, Predict};
use linfa::DatasetBase;
use linfa_linalg::eigh::EighInto;
use linfa_reduction::Pca;
use ndarray::{Array1, Array2, Axis};

use crate::{AnalysisError, Features, Point, Result};

/// Projection onto the first two principal components (linfa-reduction's `Pca`, whose
/// truncated SVD is seeded, so the result is deterministic). Each component's sign is fixed so
/// that its largest-magnitude loading is positive, which keeps plots from flipping between
/// versions of the solver.
///
/// linfa's truncated SVD runs LOBPCG, which is only meant for a few eigenvectors of a large
/// problem (linfa-linalg's own guard, commented out, asks for at least 5 × components): on
/// 3 feature columns it returns a first axis 15° off. Below that size — tiny feature counts
/// or point counts, where it is cheap anyway — the projection comes from a dense symmetric
/// eigendecomposition (linfa-linalg's `eigh`) of the covariance or Gram matrix instead.
pub fn pca_2d(features: Features<'_>) -> Result<Vec<Point>> {
    features.check()?;
    let projected = project(features, 2)?;
    Ok(projected.rows().into_iter().map(|r| [r[0], r[1]]).collect())
}

/// The features projected onto their first `components` principal components.
pub(crate) fn project(features: Features<'_>, components: usize) -> Result<Array2<f64>> {
    let error = |message: String| AnalysisError::Pca { components, rows: features.rows, cols: features.cols, message };
    if features.rows < 2 {
        return Err(AnalysisError::TooFew { what: "PCA", unit: "points", needed: 2, actual: features.rows });
    }
    if features.cols < components {
        return Err(AnalysisError::TooFew { what: "PCA", unit: "feature columns", needed: components, actual: features.cols });
    }
    let records = features.to_array();
    let (mut projected, loadings) = if features.rows.min(features.cols) >= 5 * components {
        let dataset = DatasetBase::from(records);
        let model = Pca::params(components).fit(&dataset).map_err(|e| error(e.to_string()))?;
        let projected: Array2<f64> = model.predict(dataset.records());
        (projected, model.components().t().to_owned())
    } else {
        dense_pca(records, components).map_err(|e| error(e.to_string()))?
    };
    // Canonical signs: the largest-magnitude loading of each component positive.
    for (loading, mut column) in loadings.axis_iter(Axis(1)).zip(projected.axis_iter_mut(Axis(1))) {
        let largest = loading.iter().copied().fold(0.0f64, |m, v| if v.abs() > m.abs() { v } else { m });
        if largest < 0.0 {
            column.mapv_inplace(|v| -v);
        }
    }
    if projected.iter().any(|v| !v.is_finite()) {
        return Err(error("non-finite projection".to_string()));
    }
    Ok(projected)
}

/// Exact PCA of a small problem: the projection (`rows × components`) and the loadings
/// (`cols × components`, unit columns where the variance is non-zero).
fn dense_pca(
    records: Array2<f64>,
    components: usize,
) -> std::result::Result<(Array2<f64>, Array2<f64>), linfa_linalg::LinalgError> {
    let mean = records.mean_axis(Axis(0)).expect("at least one row");
    let centred = records - &mean;
    let largest_first = |values: &Array1<f64>| {
        let mut order: Vec<usize> = (0..values.len()).collect();
        order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
        order.truncate(components);
        order
    };
    if centred.ncols() <= centred.nrows() {
        // Eigenvectors of the covariance are the loadings.
        let (values, vectors) = centred.t().dot(&centred).eigh_into()?;
        let loadings = vectors.select(Axis(1), &largest_first(&values));
        Ok((centred.dot(&loadings), loadings))
    } else {
        // Eigenvectors of the Gram matrix X Xᵀ are the left singular vectors u; the projection
        // is u σ and the loadings Xᵀ u / σ.
        let (values, vectors) = centred.dot(&centred.t()).eigh_into()?;
        let order = largest_first(&values);
        let mut projected = vectors.select(Axis(1), &order);
        for (mut column, &i) in projected.axis_iter_mut(Axis(1)).zip(&order) {
            column *= values[i].max(0.0).sqrt();
        }
        let mut loadings = centred.t().dot(&projected);
        for (mut column, &i) in loadings.axis_iter_mut(Axis(1)).zip(&order) {
            if values[i] > 0.0 {
                column /= values[i];
            }
        }
        Ok((projected, loadings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_the_dominant_direction() {
        // Points along (3, 4)/5 in 3-D with a little spread in z, uncorrelated with the line.
        let values: Vec<f32> = (0..20)
            .flat_map(|i| {
                let t = i as f32 - 10.0;
                [3.0 * t, 4.0 * t, if i % 4 == 0 || i % 4 == 3 { 0.1 } else { -0.1 }]
            })
            .collect();
        let features = Features::new(20, 3, &values).unwrap();
        let points = pca_2d(features).unwrap();
        for (i, p) in points.iter().enumerate() {
            let t = i as f64 - 10.0 + 0.5; // centred
            assert!((p[0].abs() - 5.0 * t.abs()).abs() < 1e-3, "{i}: {p:?}");
            assert!((p[1].abs() - 0.1).abs() < 1e-3, "{i}: {p:?}");
        }
        assert_eq!(points, pca_2d(features).unwrap(), "deterministic");
    }

    #[test]
    fn few_points_and_two_columns_are_exact() {
        // Four points in 6-D on a plane spanned by two orthogonal directions.
        let (u, v) = ([1.0f32, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0f32, 0.6, 0.8, 0.0, 0.0, 0.0]);
        let coefficients = [(3.0f32, 1.0f32), (-3.0, 1.0), (3.0, -1.0), (-3.0, -1.0)];
        let values: Vec<f32> = coefficients.iter().flat_map(|&(a, b)| (0..6).map(move |d| a * u[d] + b * v[d])).collect();
        let points = pca_2d(Features::new(4, 6, &values).unwrap()).unwrap();
        for (p, &(a, b)) in points.iter().zip(&coefficients) {
            assert!((p[0] - f64::from(a)).abs() < 1e-6 && (p[1] - f64::from(b)).abs() < 1e-6, "{p:?}");
        }
        // Two columns: PCA is a rotation onto the axes of the spread.
        let values = [0.0f32, 0.0, 2.0, 2.0, 4.0, 4.0, 1.0, 3.0, 3.0, 1.0];
        let points = pca_2d(Features::new(5, 2, &values).unwrap()).unwrap();
        let r2 = 2f64.sqrt();
        let expected = [[-2.0 * r2, 0.0], [0.0, 0.0], [2.0 * r2, 0.0], [0.0, r2], [0.0, -r2]];
        for (p, e) in points.iter().zip(expected) {
            assert!((p[0] - e[0]).abs() < 1e-9 && (p[1].abs() - e[1].abs()).abs() < 1e-9, "{p:?} vs {e:?}");
        }
    }

    #[test]
    fn bad_shapes_are_errors() {
        let values = [0.0f32; 6];
        let wrong = Features { rows: 4, cols: 2, values: &values };
        assert!(pca_2d(wrong).unwrap_err().to_string().contains("needs 8 values, got 6"));
        let narrow = Features { rows: 6, cols: 1, values: &values };
        assert!(pca_2d(narrow).unwrap_err().to_string().contains("feature columns"));
        let nan = [0.0, 1.0, f32::NAN, 2.0];
        let at = pca_2d(Features { rows: 2, cols: 2, values: &nan }).unwrap_err().to_string();
        assert!(at.contains("row 1, column 0"), "{at}");
    }
}
