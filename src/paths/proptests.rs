//! Property tests: the invariant of the `paths` fuzz target
//! (docs/fuzzing.md), run by `cargo test` with the fuzz target's own
//! sandbox and check (src/invariants/paths.rs). For any path — relative or
//! absolute, with `..`, `~`, `/proc/self/root`, through symlinks to system
//! directories, loops and dangling links — the filter never panics, and
//! whatever it accepts is absolute, symlink-free, and does not really lead
//! into a system directory outside the exceptions. "Really" is the kernel's
//! answer: `std::fs::canonicalize` (realpath) of the longest prefix it can
//! resolve, then the rest of the path applied as written — and canonicalized
//! again wherever a `..` after a missing name climbs back onto something that
//! exists (`missing/../link`), since the kernel cannot tell us that part.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestRunner;
use tempfile::TempDir;

use crate::invariants::paths::{Sandbox, WORDS, sandbox_parent};

/// A path: raw bytes, or words joined by `/` after a start that makes it
/// relative, absolute, home-relative or inside the sandbox.
fn raw_path(root: String) -> impl Strategy<Value = OsString> {
    let part = prop_oneof![
        6 => select(WORDS.to_vec()).prop_map(str::to_owned),
        1 => "[^/\u{0}]{1,6}",
    ];
    let start = prop_oneof![
        select(vec!["", "/", "~/", "~", "~root/", "./"]).prop_map(str::to_owned),
        Just(format!("{root}/")),
    ];
    prop_oneof![
        8 => (start, prop::collection::vec(part, 0..8))
            .prop_map(|(start, parts)| OsString::from(format!("{start}{}", parts.join("/")))),
        1 => prop::collection::vec(any::<u8>(), 0..24).prop_map(OsString::from_vec),
    ]
}

// One sandbox for every case (the strategy needs its path), so the property
// is run by hand rather than by `proptest!`.
#[test]
fn accepted_paths_never_really_lead_into_system_directories() {
    let dir = tempfile::Builder::new()
        .prefix("maqet-")
        .tempdir_in(sandbox_parent())
        .or_else(|_| TempDir::new())
        .expect("temp dir");
    let s = Sandbox::new(dir.path());
    let root = s.root.to_string_lossy().into_owned();
    let config = ProptestConfig {
        cases: 2048,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let strategy = (raw_path(root), 0..s.bases.len());
    let result = TestRunner::new(config).run(&strategy, |(raw, base)| {
        s.check(&raw, &s.bases[base]).map_err(TestCaseError::fail)
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
