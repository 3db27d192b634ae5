//! Keras-like model specifications built into candle modules, with seeded initialisation,
//! Keras' optimisers and losses, and a training loop with Keras' `fit` semantics.

pub mod allocator;
pub mod data;
pub mod error;
pub mod float_mode;
pub mod init;
pub mod kernels;
pub mod loss;
pub mod model;
pub mod optim;
pub mod spec;
pub mod summary;
pub mod train;

pub use data::Dataset;
pub use error::{NnError, Result};
pub use init::rng_stream;
pub use loss::{Loss, LossConvention, Objective};
pub use model::{Mode, Model};
pub use optim::{Optimizer, OptimizerSpec};
pub use spec::{Activation, LayerSpec, ModelSpec};
pub use summary::Summary;
pub use train::{evaluate, fit, EpochRecord, Evaluation, Silent, StepOutcome, TrainConfig, TrainObserver, Trainer};
