//! A test that skips passes without checking anything, so skips follow one
//! set of rules (src/skips.rs): each is named by a flag CI sets (where it
//! becomes a failure), shows on the terminal despite libtest's capture, is
//! listed again when the test binary exits, and is recorded in a file that
//! .ci/run checks.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::skips::FLAGS;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Run by `a_skip_is_seen_recorded_and_a_failure_under_its_flag`, never by
/// `cargo test` itself.
#[test]
#[ignore = "run by a_skip_is_seen_recorded_and_a_failure_under_its_flag"]
fn a_test_that_always_skips() {
    if !crate::harness::needs(
        "a_test_that_always_skips",
        "MAQET_REQUIRE_TOOLS",
        false,
        "what it needs is missing",
    ) {
        return;
    }
    unreachable!("needs returned true for a missing need");
}

/// This test binary running only `a_test_that_always_skips`, its stderr
/// merged into its stdout as on a terminal, with no `MAQET_REQUIRE_*` but
/// `require`, and skips recorded in `skip_file`.
fn run_the_skipping_test(skip_file: &Path, require: Option<&str>) -> (i32, String) {
    let exe = std::env::current_exe().expect("this test binary");
    let mut command = Command::new("sh");
    command
        .args(["-c", "exec \"$0\" \"$@\" 2>&1"])
        .arg(exe)
        .args([
            "--include-ignored",
            "--exact",
            "skip_rules::a_test_that_always_skips",
            "--test-threads=1",
        ])
        .env("MAQET_SKIP_FILE", skip_file);
    for flag in FLAGS {
        command.env_remove(flag);
    }
    if let Some(flag) = require {
        command.env(flag, "1");
    }
    let out = command.output().expect("run the test binary");
    let code = out.status.code().expect("an exit code");
    (code, String::from_utf8(out.stdout).expect("UTF-8 output"))
}

#[test]
fn a_skip_is_seen_recorded_and_a_failure_under_its_flag() {
    let dir = tempfile::tempdir().expect("temp dir");
    let skip_file = dir.path().join("skipped.txt");
    let line = "a_test_that_always_skips: what it needs is missing \
                (set MAQET_REQUIRE_TOOLS=1 to fail instead)";

    let (code, output) = run_the_skipping_test(&skip_file, None);
    assert_eq!(code, 0, "{output}");
    // Shown when it happens, although libtest captured the test's output...
    let shown = format!("\n!!! SKIPPED {line} !!!\n");
    let at = output.find(&shown).unwrap_or_else(|| panic!("{output}"));
    // ...and listed again after libtest's summary, at the very end.
    let summary = format!(
        "\n!!! 1 test(s) SKIPPED, so they passed without checking anything (listed in {}):\n\
         !!!   {line}\n\n",
        skip_file.display()
    );
    let result = output
        .find("test result: ok. 1 passed")
        .unwrap_or_else(|| panic!("{output}"));
    assert!(at < result, "{output}");
    assert!(output.ends_with(&summary), "{output}");
    assert!(output[result..].contains(&summary), "{output}");
    assert_eq!(
        std::fs::read_to_string(&skip_file).expect("the skip file"),
        format!("{line}\n")
    );

    // A second skip is appended, not written over.
    run_the_skipping_test(&skip_file, None);
    assert_eq!(
        std::fs::read_to_string(&skip_file).expect("the skip file"),
        format!("{line}\n{line}\n")
    );

    // Under its flag, as in CI, the same test fails and records nothing.
    std::fs::remove_file(&skip_file).expect("rm");
    let (code, output) = run_the_skipping_test(&skip_file, Some("MAQET_REQUIRE_TOOLS"));
    assert_eq!(code, 101, "{output}");
    assert!(
        output.contains(
            "a_test_that_always_skips: what it needs is missing and MAQET_REQUIRE_TOOLS=1"
        ),
        "{output}"
    );
    assert!(!output.contains("SKIPPED"), "{output}");
    assert!(!skip_file.exists());
}

/// .ci/run sets every flag a skip may name, so CI never skips.
#[test]
fn ci_sets_every_flag_a_skip_may_name() {
    let ci = std::fs::read_to_string(Path::new(ROOT).join(".ci/run")).expect("read .ci/run");
    let missing: Vec<&str> = FLAGS
        .iter()
        .copied()
        .filter(|flag| !ci.lines().any(|l| l.trim() == format!("export {flag}=1")))
        .collect();
    assert!(missing.is_empty(), ".ci/run does not set {missing:?}");
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("read dir").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every skip goes through `needs`: no test announces its own skip (which
/// libtest would hide) or reads a `MAQET_REQUIRE_*` flag itself, and no
/// code names a flag CI does not set.
#[test]
fn every_skip_goes_through_the_skip_rules() {
    let mut files = Vec::new();
    for dir in ["src", "tests", "fuzz/src", "fuzz/fuzz_targets", "benches"] {
        let dir = Path::new(ROOT).join(dir);
        if dir.exists() {
            rust_files(&dir, &mut files);
        }
    }
    let rules = [Path::new(ROOT).join("src/skips.rs"), PathBuf::from(file!())];
    let skipped = concat!("SKIP", "PED");
    let flag = concat!("MAQET_", "REQUIRE_");
    let mut found = Vec::new();
    for file in files {
        if rules.iter().any(|r| file.ends_with(r)) {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read a source file");
        for (n, line) in text.lines().enumerate() {
            let at = format!("{}:{}: {}", file.display(), n + 1, line.trim());
            if line.contains(skipped) {
                found.push(at.clone());
            }
            if line.contains(&format!("var_os(\"{flag}")) || line.contains(&format!("var(\"{flag}"))
            {
                found.push(at.clone());
            }
            let mut rest = line;
            while let Some(i) = rest.find(flag) {
                let name: String = rest[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                    .collect();
                if !FLAGS.contains(&name.as_str()) && !name.ends_with('_') {
                    found.push(at.clone());
                }
                rest = &rest[i + flag.len()..];
            }
        }
    }
    assert!(
        found.is_empty(),
        "skips outside src/skips.rs, or flags CI does not set:\n{}",
        found.join("\n")
    );
}
