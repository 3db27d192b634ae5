//! The TensorFlow Playground, reproduced: its small fully connected networks on its 2-D data sets
//! (`nnlab_data::playground`), trained example by example with its update rule, and a search for the
//! smallest network that reaches a test-loss bar.

pub mod network;
pub mod search;
pub mod train;

pub use network::{Activation, Network, Regularization};
pub use search::{Candidate, SearchSpace};
pub use train::{output_grid, train, Feature, Replicate, Schedule, Settings, Trained};

#[derive(Debug, thiserror::Error)]
pub enum PlaygroundError {
    #[error("playground setting `{field}`: {why}")]
    Settings { field: String, why: String },
    #[error("playground training diverged (non-finite loss) at epoch {epoch} with {settings}")]
    Diverged { epoch: usize, settings: String },
}
