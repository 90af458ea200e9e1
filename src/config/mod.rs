//! Configuration: YAML text → raw serde types (unknown keys rejected, every
//! node spanned) → validation → typed [`Config`].
//!
//! All problems in a file are collected and reported in one go, each with the
//! file, line, column, key path and what to do.

pub mod duration;
mod types;

pub use types::*;
