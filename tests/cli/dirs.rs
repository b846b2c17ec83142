//! The data directory: created private whatever the umask, and refused when
//! someone else could get in.

use std::os::unix::fs::PermissionsExt;

use crate::harness::{Test, mode, tree};

#[test]
fn files_are_private_under_umask_000() {
    let mut t = Test::new();
    t.umask(0o000)
        .args(["add", "--empty", "--name", "web"])
        .run();
    assert_eq!(mode(&t.data_dir()), 0o700);
    assert_eq!(mode(&t.data_dir().join("maqet.redb")), 0o600);
    assert_eq!(mode(&t.data_dir().join("maqet.lock")), 0o600);
    // Later writes keep them so.
    t.umask(0o000).args(["apply", "web", "--cpus", "2"]).run();
    assert_eq!(mode(&t.data_dir().join("maqet.redb")), 0o600);
}

#[test]
fn missing_parents_are_created() {
    let mut t = Test::new();
    t.umask(0o000)
        .args(["--data-dir", "a/b/c", "add", "--empty", "--name", "web"])
        .run();
    assert_eq!(mode(&t.path("a/b/c")), 0o700);
    assert_eq!(mode(&t.path("a/b/c/maqet.redb")), 0o600);
}

#[test]
fn a_data_dir_open_to_others_is_refused() {
    let mut t = Test::new();
    std::fs::create_dir(t.data_dir()).expect("create the data dir");
    std::fs::set_permissions(t.data_dir(), std::fs::Permissions::from_mode(0o777))
        .expect("chmod 777");
    let out = t.args(["add", "--empty", "--name", "web"]).status(4).run();
    insta::assert_snapshot!(t.redact(&out.stderr), @"
    maqet::dir::unsafe_dir

      × [TMP]/data is not safe to use: its mode is 0777: group or others can get in
      help: run `chmod 700 [TMP]/data` and try again
    ");
    assert!(tree(&t.data_dir()).is_empty());
    assert_eq!(mode(&t.data_dir()), 0o777, "maqet must not fix it silently");
}

#[test]
fn a_group_readable_data_dir_is_refused() {
    let mut t = Test::new();
    t.add_empty("web");
    std::fs::set_permissions(t.data_dir(), std::fs::Permissions::from_mode(0o750))
        .expect("chmod 750");
    let before = tree(&t.data_dir());
    t.args(["add", "--empty", "--name", "db"])
        .status(4)
        .stderr_contains("its mode is 0750")
        .run();
    // Reading a store that others could have replaced is refused too.
    t.args(["ls"])
        .status(4)
        .stderr_contains("its mode is 0750")
        .run();
    t.args(["info", "web"]).status(4).run();
    assert_eq!(tree(&t.data_dir()), before);
}

#[test]
fn a_symlinked_data_dir_is_refused() {
    let mut t = Test::new();
    std::fs::create_dir(t.path("real")).expect("create real/");
    std::fs::set_permissions(t.path("real"), std::fs::Permissions::from_mode(0o700))
        .expect("chmod 700");
    std::os::unix::fs::symlink("real", t.data_dir()).expect("symlink");
    let out = t.args(["add", "--empty", "--name", "web"]).status(4).run();
    insta::assert_snapshot!(t.redact(&out.stderr), @"
    maqet::dir::unsafe_dir

      × [TMP]/data is not safe to use: it is a symbolic link
      help: maqet keeps its files in a real directory: remove the link, or point maqet at the target
            with --data-dir/--runtime-dir
    ");
    assert!(tree(&t.path("real")).is_empty());
}

#[test]
fn a_data_dir_that_is_a_file_is_refused() {
    let mut t = Test::new();
    t.file("data", "not a directory");
    t.args(["add", "--empty", "--name", "web"])
        .status(4)
        .stderr_contains("it is not a directory")
        .run();
}
