//! The one error type of the crate: a shape or parameter that a function cannot work with.

use thiserror::Error;

/// Why a low-level function refused its input. Each message is one line that names the
/// function and the shapes or values involved.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum LowLevelError {
    /// The input stack and the filter bank of a convolution have different channel counts.
    #[error("conv2d: input {input} (C × H × W) and filters {filters} (F × C × kh × kw) have different channel counts")]
    ChannelMismatch {
        /// Shape of the input stack, e.g. "3 × 10 × 10".
        input: String,
        /// Shape of the filter bank, e.g. "2 × 1 × 3 × 3".
        filters: String,
    },
    /// A vector (bias, flattened input) has the wrong number of values.
    #[error("{function}: {what} has {found} values but {expected} are needed for {context}")]
    LengthMismatch {
        /// The function that refused the input.
        function: &'static str,
        /// What had the wrong length, e.g. "the bias".
        what: &'static str,
        /// How many values it has.
        found: usize,
        /// How many values it should have.
        expected: usize,
        /// The shape that fixes the expected length, e.g. "filters 4 × 1 × 3 × 3".
        context: String,
    },
    /// A convolution or pooling window does not fit inside its (padded) input.
    #[error("{function}: window {window} does not fit in the input maps {input}")]
    WindowTooLarge {
        /// The function that refused the input.
        function: &'static str,
        /// The window size, e.g. "3 × 3".
        window: String,
        /// The spatial size of the input after any padding, e.g. "2 × 5".
        input: String,
    },
    /// A size or stride that has to be at least 1 is 0.
    #[error("{function}: {parameter} must be at least 1")]
    ZeroParameter {
        /// The function that refused the input.
        function: &'static str,
        /// The parameter at fault, e.g. "the stride".
        parameter: &'static str,
    },
    /// An input that must hold at least one value is empty.
    #[error("{function}: {what} is empty")]
    Empty {
        /// The function that refused the input.
        function: &'static str,
        /// What is empty, e.g. "the input vector".
        what: &'static str,
    },
    /// An input holds NaN or an infinity where a finite value is required.
    #[error("{function}: value {value} at index {index} is not finite")]
    NonFinite {
        /// The function that refused the input.
        function: &'static str,
        /// Position of the first offending value.
        index: usize,
        /// The offending value.
        value: f32,
    },
}
