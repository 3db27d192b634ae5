//! The nnlab pipeline: plan → fetch → train/evaluate → aggregate → render.
//!
//! This crate is the only one that knows every other: data (`nnlab-data`), models and training
//! (`nnlab-nn`) and rendering (`nnlab-report`). See DESIGN.md for the data flow.

pub mod analysis;
pub mod bench;
pub mod catalogue;
pub mod datasets;
pub mod execute;
pub mod manifest;
pub mod plan;
pub mod profile;
pub mod progress;
pub mod render;
pub mod separation;
pub mod stages;
pub mod stats;
pub mod store;
pub mod tables;
