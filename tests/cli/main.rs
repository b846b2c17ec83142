//! Integration tests: the real `maqet` binary, in temp dirs, with assertions
//! on exact output, exit codes and file modes. One test binary; every file
//! in this directory is a module of it.

mod add;
mod apply;
mod cloud_init;
mod confinement;
mod dirs;
mod disks;
mod docgen;
mod doctor;
mod drive;
mod errors;
mod export;
mod faults;
mod guest;
mod harness;
mod help;
mod hostile;
mod hotplug;
mod info;
mod isolation;
mod json_docs;
mod libvirt;
mod lifecycle;
mod lists;
mod ls;
mod matrix;
mod rm;
mod run;
mod settings;
mod skip_rules;
// The skip rules and record the unit tests use too.
#[path = "../../src/skips.rs"]
mod skips;
mod store;
mod stress;
mod version;
mod wait;

/// A test file that is not declared here would silently never run.
#[test]
fn every_test_file_is_a_module() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli");
    let main = std::fs::read_to_string(dir.join("main.rs")).expect("read main.rs");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("read tests/cli") {
        let path = entry.expect("read tests/cli").path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if path.extension().is_some_and(|e| e == "rs")
            && stem != "main"
            && !main.lines().any(|l| l.trim() == format!("mod {stem};"))
        {
            missing.push(stem.to_owned());
        }
    }
    assert!(
        missing.is_empty(),
        "declare these in tests/cli/main.rs: {missing:?}"
    );
}

/// The suite is one binary: a `tests/*.rs` file would be a second one.
#[test]
fn no_test_files_outside_the_cli_binary() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let stray: Vec<_> = std::fs::read_dir(&dir)
        .expect("read tests")
        .map(|e| e.expect("read tests").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    assert!(
        stray.is_empty(),
        "move these into tests/cli/ as modules: {stray:?}"
    );
}
