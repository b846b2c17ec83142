//! `maqet rm`: removing one VM or all of them.

use crate::harness::Test;

#[test]
fn rm_by_name() {
    let mut t = Test::new();
    let id = t.add_empty("web");
    t.add_empty("db");
    t.args(["rm", "web"])
        .stdout(&format!("removed web ({})\n", &id[..12]))
        .run();
    let vms = t.list();
    assert_eq!(vms.len(), 1);
    assert_eq!(vms[0]["name"], "db");
    t.args(["info", "web"])
        .status(3)
        .stderr_contains("`web`")
        .run();
    t.args(["info", &id]).status(3).stderr_contains(&id).run();
    // The name is free again.
    t.add_empty("web");
}

#[test]
fn rm_by_id_prefix_as_json() {
    let mut t = Test::new();
    let id = t.add_empty("web");
    let out = t.args(["--json", "rm", &id[..5]]).run();
    assert_eq!(
        out.json(),
        serde_json::json!([{"id": id, "name": "web", "deleted": [], "kept": []}])
    );
    assert!(t.list().is_empty());
}

#[test]
fn rm_of_an_unknown_vm() {
    let mut t = Test::new();
    t.add_empty("web");
    t.args(["rm", "nope"])
        .status(3)
        .stderr_contains("no VM is named or has an id starting with `nope`")
        .run();
    assert_eq!(t.list().len(), 1);
}

#[test]
fn rm_all_without_a_terminal_needs_force() {
    let mut t = Test::new();
    t.add_empty("web");
    t.add_empty("db");
    let out = t.args(["rm", "--all"]).status(4).run();
    insta::assert_snapshot!(out.stderr, @"
    maqet::refused

      × refusing to remove every VM without confirmation
      help: stdin is not a terminal, so maqet cannot ask; add --force
    ");
    // An answer on a pipe is not a terminal's answer either.
    t.args(["rm", "--all"]).stdin("y\n").status(4).run();
    assert_eq!(t.list().len(), 2);
}

#[test]
fn rm_all_force_removes_everything() {
    let mut t = Test::new();
    let web = t.add_empty("web");
    let db = t.add_empty("db");
    let out = t.args(["rm", "--all", "--force"]).run();
    let mut lines: Vec<&str> = out.stdout.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            format!("removed db ({})", &db[..12]),
            format!("removed web ({})", &web[..12])
        ]
    );
    assert!(t.list().is_empty());
    // Nothing left to remove is not an error.
    t.args(["rm", "--all", "--force"]).stdout("").run();
}

#[test]
fn rm_all_on_a_fresh_data_dir_creates_nothing() {
    let mut t = Test::new();
    t.args(["rm", "--all", "--force"]).stdout("").run();
    assert!(!t.data_dir().exists());
}

#[test]
fn rm_needs_exactly_one_target() {
    let mut t = Test::new();
    t.add_empty("web");
    t.args(["rm", "web", "--all"])
        .status(2)
        .stderr_contains("give a VM or --all, not both")
        .run();
    t.args(["rm"])
        .status(2)
        .stderr_contains("rm needs a VM or --all")
        .run();
    assert_eq!(t.list().len(), 1);
}
