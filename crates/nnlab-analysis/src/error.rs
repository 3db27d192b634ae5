//! The one error type of the analysis crate; every message is one line naming what was wrong
//! and where.

/// Why a projection or a separability metric could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// `rows × cols` does not match the number of values supplied.
    #[error("feature matrix: {rows} rows × {cols} columns needs {expected} values, got {actual}")]
    Shape { rows: usize, cols: usize, expected: usize, actual: usize },

    /// A feature matrix holds NaN or ±∞.
    #[error("feature matrix: non-finite value {value} at row {row}, column {col}")]
    NonFiniteFeature { row: usize, col: usize, value: f32 },

    /// A 2-D point holds NaN or ±∞.
    #[error("{what}: non-finite coordinate in point {index}: {point:?}")]
    NonFinitePoint { what: &'static str, index: usize, point: [f64; 2] },

    /// Fewer points (or feature columns) than the computation needs.
    #[error("{what}: needs at least {needed} {unit}, got {actual}")]
    TooFew { what: &'static str, unit: &'static str, needed: usize, actual: usize },

    /// Points and labels do not pair up.
    #[error("{what}: {points} points but {labels} labels")]
    LabelCount { what: &'static str, points: usize, labels: usize },

    /// A parameter outside its domain (perplexity ≤ 0, θ ≤ 0, k = 0, …).
    #[error("{what}: invalid {name} = {value}: {expected}")]
    Parameter { what: &'static str, name: &'static str, value: String, expected: &'static str },

    /// The PCA solver (linfa-reduction) failed.
    #[error("PCA to {components} components of {rows} × {cols} features failed: {message}")]
    Pca { components: usize, rows: usize, cols: usize, message: String },

    /// The t-SNE optimiser failed or produced a non-finite embedding.
    #[error("t-SNE of {rows} points: {message}")]
    Tsne { rows: usize, message: String },
}

/// Result of analysis operations.
pub type Result<T> = std::result::Result<T, AnalysisError>;
