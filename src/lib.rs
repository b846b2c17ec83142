//! maqet: manage local QEMU virtual machines from one static binary, with no
//! daemon. The binary is a thin layer over this library: parse (`cli`), act
//! (`commands`), render (`render`).

pub mod app;
pub mod cli;
pub mod cloud_init;
pub mod commands;
pub mod config;
pub mod console;
pub mod deadline;
pub mod dirs;
pub mod docgen;
pub mod error;
pub mod export;
// Shared by the proptests and the fuzz targets (fuzz/ enables the feature).
#[cfg(any(test, feature = "invariants"))]
pub mod invariants;
pub mod iso;
pub mod keys;
pub mod layout;
pub mod lock;
pub mod log;
pub mod paths;
pub mod qemu;
pub mod qmp;
pub mod reconcile;
pub mod render;
pub mod rows;
pub mod settings;
#[cfg(test)]
mod skips;
pub mod storage;
pub mod store;
pub mod terminal;
pub mod time;
pub mod vm;

pub use error::{Error, Result};
