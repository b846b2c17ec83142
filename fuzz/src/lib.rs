//! What the fuzz targets share: independent models of what QEMU and the
//! kernel will make of maqet's output, used as oracles.
//!
//! Each model is written from the outside contract (QEMU's option syntax,
//! DESIGN.md §4/§6, docs/config.md), not copied from maqet's code, so that a
//! mistake in maqet is not repeated in its check.

pub mod argv;
pub mod opts;
pub mod paths;
pub mod sizes;

/// libFuzzer's own `main()` leaves SIGPIPE at its default disposition, which
/// kills the process when a peer closes a socket; the real maqet is a Rust
/// binary, whose runtime ignores it. Call once from each target's setup.
pub fn ignore_sigpipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: SIG_IGN installs no handler code; nothing else is racing to
    // set SIGPIPE's disposition during setup.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) }.expect("ignore SIGPIPE");
}
