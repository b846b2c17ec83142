//! The invariants the fuzz targets (fuzz/, on nightly) and the property
//! tests (`proptests.rs` beside each module, in `cargo test`) both check —
//! one copy, so the two cannot drift apart (docs/fuzzing.md).
//!
//! Each is checked against a model written from the outside contract
//! (QEMU's option syntax, the kernel's path resolution, the size grammar of
//! docs/config.md, the QMP wire format), not copied from the code it
//! checks, so a mistake in maqet is not repeated in its check. Each check
//! returns `Err` with what broke; the caller panics (a fuzz target) or
//! fails the case (a proptest).
//!
//! Compiled for maqet's own tests and, with the `invariants` feature, for
//! the fuzz crate; never part of the binary.

pub mod argv;
pub mod config;
pub mod opts;
pub mod paths;
pub mod qmp;
pub mod sizes;
