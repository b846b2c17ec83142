//! Tests that need something of the machine (QEMU, root, Landlock, a tool)
//! and skip without it — and why such a skip is never silent.
//!
//! libtest prints a passing test's output only when it fails, so a skip
//! announced with `eprintln!` is invisible: the test just reads "ok". A skip
//! here is instead
//! - a failure when the environment sets the flag naming what is missing to
//!   `1` ([`FLAGS`]; .ci/run sets every one), so CI never skips;
//! - written straight to the terminal the moment it happens (a write to
//!   `stderr` itself, which libtest does not capture);
//! - listed again, all skips together, when the test binary exits (after
//!   libtest's "test result" line);
//! - appended to `target/maqet-skipped.txt` (or `$MAQET_SKIP_FILE`), which
//!   .ci/run removes before `cargo test` and fails on if it exists after.
//!
//! The unit tests use this file as `crate::skips`; tests/cli includes the
//! same file with `#[path]`.

use std::io::Write as _;
use std::sync::Mutex;

/// Every flag a skip may name. .ci/run sets each to 1, and a test in
/// tests/cli checks that it does.
pub const FLAGS: [&str; 6] = [
    "MAQET_REQUIRE_QEMU",
    "MAQET_REQUIRE_LANDLOCK",
    "MAQET_REQUIRE_TOOLS",
    "MAQET_REQUIRE_ROOT",
    "MAQET_REQUIRE_LIBVIRT",
    "MAQET_REQUIRE_KVM",
];

/// The skips of this process, for the list printed at exit.
static SKIPPED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Whether what `test` needs is here. When it is not (`present` false), the
/// test skips, visibly and on the record — unless the environment sets
/// `flag` to 1, where a missing need fails the test instead.
pub fn needs(test: &str, flag: &str, present: bool, missing: &str) -> bool {
    assert!(
        FLAGS.contains(&flag),
        "{test}: {flag} is not one of the flags CI sets ({FLAGS:?})"
    );
    if !present {
        assert!(
            std::env::var_os(flag).is_none_or(|v| v != "1"),
            "{test}: {missing} and {flag}=1"
        );
        record(&format!("{test}: {missing} (set {flag}=1 to fail instead)"));
    }
    present
}

/// True when `program --version` runs and succeeds.
pub fn runs(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Where skips are recorded: `$MAQET_SKIP_FILE`, or
/// `target/maqet-skipped.txt` in the repository.
pub fn skip_file() -> std::path::PathBuf {
    std::env::var_os("MAQET_SKIP_FILE").map_or_else(
        || {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target")
                .join("maqet-skipped.txt")
        },
        std::path::PathBuf::from,
    )
}

fn record(line: &str) {
    let file = skip_file();
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).expect("create the skip file's directory");
    }
    // One short append per skip: O_APPEND keeps the lines of test threads
    // and test binaries whole.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()))
        .unwrap_or_else(|e| panic!("record a skip in {}: {e}", file.display()));
    // `stderr()` itself, not `eprintln!`: libtest captures only the macros.
    let _ = std::io::stderr().write_all(format!("\n!!! SKIPPED {line} !!!\n").as_bytes());
    let mut skipped = SKIPPED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if skipped.is_empty() {
        // SAFETY: registers a plain function that touches only a static
        // Mutex and stderr, both alive until the process ends.
        unsafe {
            atexit(print_skipped);
        }
    }
    skipped.push(line.to_owned());
}

unsafe extern "C" {
    fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
}

/// Runs when the test binary exits, after libtest's summary.
extern "C" fn print_skipped() {
    let skipped = SKIPPED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut text = format!(
        "\n!!! {} test(s) SKIPPED, so they passed without checking anything \
         (listed in {}):\n",
        skipped.len(),
        skip_file().display()
    );
    for line in skipped.iter() {
        text.push_str(&format!("!!!   {line}\n"));
    }
    text.push('\n');
    let _ = std::io::stderr().write_all(text.as_bytes());
}
