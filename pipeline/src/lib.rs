//! The nnlab pipeline: plan → fetch → train/evaluate → aggregate → render.
//!
//! This crate is the only one that knows every other: datasets (`nnlab-data`), models and
//! training (`nnlab-nn`), projections and separation metrics (`nnlab-analysis`), the from-scratch
//! building blocks of a1's third exercise (`nnlab-lowlevel`) and rendering (`nnlab-report`). The
//! README's "Where outputs go" describes the data flow from the catalogue to the reports.

pub mod analysis;
pub mod bench;
pub mod catalogue;
pub mod choice;
pub mod compare;
pub mod datasets;
pub mod execute;
pub mod follow_up;
pub mod grade;
pub mod key;
pub mod manifest;
pub mod plan;
pub mod playground;
pub mod profile;
pub mod progress;
pub mod render;
pub mod separation;
pub mod slurm;
pub mod stages;
pub mod stats;
pub mod store;
pub mod tables;
pub mod workers;
