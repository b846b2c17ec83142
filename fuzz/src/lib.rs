//! What the fuzz targets share beyond the invariants, which live in maqet
//! itself (`maqet::invariants`, behind its `invariants` feature) so that
//! the property tests in `cargo test` check exactly the same thing.

/// libFuzzer's own `main()` leaves SIGPIPE at its default disposition, which
/// kills the process when a peer closes a socket; the real maqet is a Rust
/// binary, whose runtime ignores it. Call once from each target's setup.
pub fn ignore_sigpipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: SIG_IGN installs no handler code; nothing else is racing to
    // set SIGPIPE's disposition during setup.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) }.expect("ignore SIGPIPE");
}
