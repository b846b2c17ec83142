//! One version, from Cargo.toml, everywhere it is shown.

use crate::harness::Test;

const VERSION: &str = env!("CARGO_PKG_VERSION");

#[test]
fn the_changelog_has_an_entry_for_this_version() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("CHANGELOG.md");
    let changelog = std::fs::read_to_string(&path).expect("read CHANGELOG.md");
    let heading = format!("## {VERSION} ");
    assert!(
        changelog
            .lines()
            .any(|l| l.starts_with(&heading) || l == heading.trim_end()),
        "CHANGELOG.md has no `{heading}` entry for the version in Cargo.toml"
    );
}

#[test]
fn version_output_comes_from_cargo_toml() {
    Test::new()
        .args(["--version"])
        .stdout(&format!("maqet {VERSION}\n"))
        .run();
    let out = Test::new().args(["--json", "--version"]).run();
    assert_eq!(out.json()["version"], VERSION);
}
