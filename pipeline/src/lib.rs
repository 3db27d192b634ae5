//! nnlab pipeline
