//! The settings file, maqet.ron, and its place in the order of precedence:
//! flags > environment > settings file > built-in defaults.

use crate::harness::Test;

#[test]
fn the_settings_file_sets_the_data_dir_below_env_and_flags() {
    let mut t = Test::new();
    t.file(".config/maqet/maqet.ron", "(data_dir: \"from-settings\")\n");
    // The harness sets MAQET_DATA_DIR; without it the settings file counts.
    t.env_remove("MAQET_DATA_DIR")
        .args(["add", "--empty", "--name", "a"])
        .run();
    assert!(
        t.path(".config/maqet/from-settings/maqet.redb").exists(),
        "relative to the settings file"
    );
    // The environment wins over the settings file...
    t.args(["add", "--empty", "--name", "b"]).run();
    assert!(t.data_dir().join("maqet.redb").exists());
    // ...and a flag over both.
    let flag_dir = t.path("flag");
    t.arg("--data-dir")
        .arg(&flag_dir)
        .args(["add", "--empty", "--name", "c"])
        .run();
    assert!(flag_dir.join("maqet.redb").exists());
    let names = t.env_remove("MAQET_DATA_DIR").args(["ls", "--names"]).run();
    assert_eq!(names.stdout, "a\n");
}

#[test]
fn config_dir_and_maqet_config_choose_the_file() {
    let mut t = Test::new();
    t.file(
        "elsewhere/maqet.ron",
        "(binary: \"/opt/qemu/bin/qemu-system-x86_64\")\n",
    );
    t.args(["--config-dir", "elsewhere", "add", "--empty", "--name", "a"])
        .run();
    let info = t.args(["--json", "info", "a"]).run().json();
    assert_eq!(info["config"]["binary"], "/opt/qemu/bin/qemu-system-x86_64");
    t.file("file.ron", "(binary: \"qemu-other\")\n");
    let file = t.path("file.ron");
    t.env("MAQET_CONFIG", &file)
        .args(["add", "--empty", "--name", "b"])
        .run();
    let info = t.args(["--json", "info", "b"]).run().json();
    assert_eq!(info["config"]["binary"], "qemu-other");
    // A VM's own config still wins over the settings file's default.
    t.file("vm.ron", "(name: \"c\", binary: \"qemu-mine\")");
    t.env("MAQET_CONFIG", &file)
        .args(["add", "--trust", "vm.ron"])
        .run();
    let info = t.args(["--json", "info", "c"]).run().json();
    assert_eq!(info["config"]["binary"], "qemu-mine");
}

#[test]
fn a_broken_settings_file_is_an_error_pointing_at_the_text() {
    let mut t = Test::new();
    t.file(".config/maqet/maqet.ron", "(\n    stop_timout: 5,\n)\n");
    let out = t
        .args(["ls"])
        .status(3)
        .stderr_contains("unknown field `stop_timout`")
        .stderr_contains("did you mean `stop_timeout`?")
        .stderr_contains("maqet.ron:2:5")
        .run();
    assert!(out.stdout.is_empty());
    // --help and --version still work.
    t.args(["--version"]).stdout_contains("maqet ").run();
}

#[test]
fn a_named_settings_file_must_exist_but_the_default_one_may_not() {
    let mut t = Test::new();
    t.args(["ls"])
        .stdout("NAME  ID  STATUS  MEMORY  CPUS\n")
        .run();
    t.args(["--config-dir", "nowhere", "ls"])
        .status(3)
        .stderr_contains("cannot read config file")
        .run();
}
