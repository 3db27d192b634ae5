use thiserror::Error;

/// Everything that can go wrong while building or training a model.
///
/// Each message is one complete line: it names the layer, field or job step and what was expected.
#[derive(Debug, Error)]
pub enum NnError {
    /// The model or training specification is invalid (unknown layer, bad size, impossible shape).
    #[error("model spec: {field}: {message}")]
    Spec { field: String, message: String },

    /// The loss became NaN or infinite: the run diverged and its results must not be stored.
    #[error("training diverged: loss is {value} at epoch {epoch}, batch {batch}")]
    Diverged { epoch: usize, batch: usize, value: f64 },

    /// Input data does not fit the model.
    #[error("data: {0}")]
    Data(String),

    #[error("tensor backend: {0}")]
    Candle(#[from] candle_core::Error),
}

impl NnError {
    pub(crate) fn spec(field: impl Into<String>, message: impl Into<String>) -> Self {
        NnError::Spec { field: field.into(), message: message.into() }
    }
}

pub type Result<T> = std::result::Result<T, NnError>;
