//! The data directory: created private whatever the umask, and refused when
//! someone else could get in.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::harness::{BIN, Output, Test, have_root, mode, tree};

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

const NOBODY: u32 = 65534;

/// Give `dir` and everything under it to `uid`.
fn chown_tree(dir: &Path, uid: u32) {
    for path in std::iter::once(dir.to_owned()).chain(tree(dir).iter().map(|p| dir.join(p))) {
        std::os::unix::fs::lchown(&path, Some(uid), Some(uid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    }
}

/// `dir` and every path under it with its mode, owner and (for files)
/// contents: to show that a refused command changed nothing.
fn state(dir: &Path) -> Vec<(String, u32, u32, Vec<u8>)> {
    std::iter::once(String::from("."))
        .chain(tree(dir))
        .map(|relative| {
            let path = dir.join(&relative);
            let meta = std::fs::symlink_metadata(&path).expect("stat");
            let bytes = if meta.is_file() {
                std::fs::read(&path).expect("read")
            } else {
                Vec::new()
            };
            (relative, mode(&path), meta.uid(), bytes)
        })
        .collect()
}

/// Each way a user chooses the data dir or runtime root, given or default.
#[derive(Clone, Copy, Debug)]
enum Way {
    Env,
    Flag,
    Xdg,
    Home,
}

const WAYS: [Way; 4] = [Way::Env, Way::Flag, Way::Xdg, Way::Home];

impl Way {
    /// Where this way leads, in the test's directory: for the data dir, or
    /// (`data` false) the runtime root.
    fn dir(self, t: &Test, data: bool) -> PathBuf {
        t.path(match (self, data) {
            (Way::Env, true) => "data",
            (Way::Env, false) => "run",
            (Way::Flag, true) => "given-data",
            (Way::Flag, false) => "given-run",
            (Way::Xdg, true) => "xdg-data/maqet",
            (Way::Xdg, false) => "xdg-state/maqet/run",
            (Way::Home, true) => ".local/share/maqet",
            (Way::Home, false) => ".local/state/maqet/run",
        })
    }

    /// Choose the directory this way for the next command, whose own
    /// arguments follow.
    fn point(self, t: &mut Test, data: bool) -> &mut Test {
        let (var, flag, xdg, xdg_dir) = if data {
            ("MAQET_DATA_DIR", "--data-dir", "XDG_DATA_HOME", "xdg-data")
        } else {
            (
                "MAQET_RUNTIME_DIR",
                "--runtime-dir",
                "XDG_STATE_HOME",
                "xdg-state",
            )
        };
        let dir = self.dir(t, data);
        let xdg_dir = t.path(xdg_dir);
        match self {
            Way::Env => t,
            Way::Flag => t.env_remove(var).arg(flag).arg(dir),
            Way::Xdg => t.env_remove(var).env(xdg, xdg_dir),
            Way::Home => t.env_remove(var),
        }
    }
}

/// maqet's `--json` error for a directory it refuses.
fn refusal(dir: &Path, message: &str, help: &str) -> String {
    let error = serde_json::json!({"error": {
        "code": "maqet::dir::unsafe_dir",
        "exit_code": 4,
        "help": help,
        "message": format!("{} is not safe to use: {message}", dir.display()),
    }});
    format!("{error}\n")
}

/// The refusal of `dir` because `parent`, above it, belongs to `nobody`.
fn refusal_above_of_nobody(dir: &Path, parent: &Path) -> String {
    refusal(
        dir,
        &format!(
            "{}, a directory above it, belongs to uid 65534, not to you (uid 0) or root: that user could replace it",
            parent.display()
        ),
        "give maqet a directory under ones only you or root can change, with --data-dir/--runtime-dir",
    )
}

#[test]
fn a_data_dir_of_another_user_is_refused() {
    if !have_root("a_data_dir_of_another_user_is_refused") {
        return;
    }
    for way in WAYS {
        let mut t = Test::new();
        let data = way.dir(&t, true);
        way.point(&mut t, true)
            .args(["add", "--empty", "--name", "web"])
            .run();
        chown_tree(&data, NOBODY);
        assert_eq!(mode(&data), 0o700, "{way:?}");
        let before = state(&data);
        let refused = refusal(
            &data,
            "it belongs to uid 65534, not to you (uid 0)",
            "use a directory you own",
        );
        for command in [
            &["ls"][..],
            &["info", "web"],
            &["add", "--empty", "--name", "db"],
        ] {
            way.point(&mut t, true)
                .arg("--json")
                .args(command)
                .status(4)
                .stderr(&refused)
                .run();
        }
        assert_eq!(state(&data), before, "{way:?}: nothing changed");
    }
}

#[test]
fn a_data_dir_of_another_user_is_refused_with_a_reason() {
    if !have_root("a_data_dir_of_another_user_is_refused_with_a_reason") {
        return;
    }
    let mut t = Test::new();
    std::fs::create_dir(t.data_dir()).expect("mkdir");
    std::fs::set_permissions(t.data_dir(), std::fs::Permissions::from_mode(0o700))
        .expect("chmod 700");
    chown_tree(&t.data_dir(), NOBODY);
    let before = state(&t.data_dir());
    let out = t.args(["add", "--empty", "--name", "web"]).status(4).run();
    insta::assert_snapshot!(t.redact(&out.stderr), @"
    maqet::dir::unsafe_dir

      × [TMP]/data is not safe to use: it belongs to uid 65534, not to you (uid 0)
      help: use a directory you own
    ");
    assert_eq!(state(&t.data_dir()), before);
}

#[test]
fn a_runtime_dir_of_another_user_is_refused() {
    if !have_root("a_runtime_dir_of_another_user_is_refused") {
        return;
    }
    for way in WAYS {
        let mut t = Test::new();
        t.add_empty("web");
        let run = way.dir(&t, false);
        // `stop` of a stopped VM takes its lock in the runtime root.
        way.point(&mut t, false)
            .args(["stop", "web"])
            .stdout("web is not running (created)\n")
            .run();
        chown_tree(&run, NOBODY);
        let before = state(&run);
        let refused = refusal(
            &run,
            "it belongs to uid 65534, not to you (uid 0)",
            "use a directory you own",
        );
        for command in [&["stop", "web"][..], &["rm", "web"]] {
            way.point(&mut t, false)
                .arg("--json")
                .args(command)
                .status(4)
                .stderr(&refused)
                .run();
        }
        assert_eq!(state(&run), before, "{way:?}: nothing changed");
        assert_eq!(t.list().len(), 1, "{way:?}: web was not removed");
    }
}

#[test]
fn a_dir_inside_a_directory_of_another_user_is_refused() {
    if !have_root("a_dir_inside_a_directory_of_another_user_is_refused") {
        return;
    }
    // Missing: nothing is created inside the other user's directory.
    let mut t = Test::new();
    std::fs::create_dir(t.path("xdg-data")).expect("mkdir");
    chown_tree(&t.path("xdg-data"), NOBODY);
    let before = state(&t.path("xdg-data"));
    let refused = refusal_above_of_nobody(&Way::Xdg.dir(&t, true), &t.path("xdg-data"));
    Way::Xdg
        .point(&mut t, true)
        .args(["--json", "add", "--empty", "--name", "web"])
        .status(4)
        .stderr(&refused)
        .run();
    assert_eq!(state(&t.path("xdg-data")), before);

    // The runtime root's parent, `$XDG_STATE_HOME/maqet`, someone else's.
    t.add_empty("web");
    std::fs::create_dir_all(t.path("xdg-state/maqet")).expect("mkdir");
    chown_tree(&t.path("xdg-state/maqet"), NOBODY);
    let before = state(&t.path("xdg-state/maqet"));
    let refused = refusal_above_of_nobody(&Way::Xdg.dir(&t, false), &t.path("xdg-state/maqet"));
    Way::Xdg
        .point(&mut t, false)
        .args(["--json", "stop", "web"])
        .status(4)
        .stderr(&refused)
        .run();
    assert_eq!(state(&t.path("xdg-state/maqet")), before);

    // Present and ours, but the other user could swap it for theirs.
    for data in [true, false] {
        let mut t = Test::new();
        t.add_empty("web");
        let (first, command): (&[&str], &[&str]) = if data {
            (&["add", "--empty", "--name", "db"], &["ls"])
        } else {
            (&["stop", "web"], &["stop", "web"])
        };
        Way::Xdg.point(&mut t, data).args(first).run();
        let dir = Way::Xdg.dir(&t, data);
        let parent = dir.parent().expect("a parent");
        std::os::unix::fs::lchown(parent, Some(NOBODY), Some(NOBODY)).expect("chown");
        let before = state(parent);
        let refused = refusal_above_of_nobody(&dir, parent);
        Way::Xdg
            .point(&mut t, data)
            .arg("--json")
            .args(command)
            .status(4)
            .stderr(&refused)
            .run();
        assert_eq!(state(parent), before, "data: {data}");
    }
}

#[test]
fn a_dir_under_one_anyone_can_write_is_refused_unless_sticky() {
    let mut t = Test::new();
    std::fs::create_dir(t.path("xdg-state")).expect("mkdir");
    std::fs::set_permissions(t.path("xdg-state"), std::fs::Permissions::from_mode(0o777))
        .expect("chmod 777");
    t.add_empty("web");
    let xdg = t.path("xdg-state");
    let refused = refusal(
        &Way::Xdg.dir(&t, false),
        &format!(
            "{}, a directory above it, has mode 0777: anyone can write to it, so anyone could replace it",
            xdg.display()
        ),
        &format!(
            "run `chmod o-w {0}` (or `chmod +t {0}`, as /tmp has) and try again",
            xdg.display()
        ),
    );
    Way::Xdg
        .point(&mut t, false)
        .args(["--json", "stop", "web"])
        .status(4)
        .stderr(&refused)
        .run();
    assert!(tree(&t.path("xdg-state")).is_empty());
    // The sticky bit, as on /tmp, keeps others from replacing what is ours.
    std::fs::set_permissions(t.path("xdg-state"), std::fs::Permissions::from_mode(0o1777))
        .expect("chmod 1777");
    Way::Xdg
        .point(&mut t, false)
        .args(["stop", "web"])
        .stdout("web is not running (created)\n")
        .run();
    assert_eq!(mode(&t.path("xdg-state/maqet/run")), 0o700);
}

/// Run maqet as `nobody`, with the test's environment and `data_dir`, from
/// a copy that `nobody` can reach wherever the build tree is.
fn as_nobody(t: &Test, data_dir: &Path, args: &[&str]) -> Output {
    let bin = t.path("bin/maqet");
    if !bin.exists() {
        std::fs::create_dir_all(t.path("bin")).expect("mkdir bin");
        std::fs::copy(BIN, &bin).expect("copy maqet");
        std::fs::set_permissions(t.path("bin"), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let mut inner = t.command(args);
    inner.env("MAQET_DATA_DIR", data_dir);
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&bin)
        .args(inner.get_args());
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    if let Some(cwd) = inner.get_current_dir() {
        cmd.current_dir(cwd);
    }
    let out = cmd.stdin(Stdio::null()).output().expect("run setpriv");
    Output {
        status: out.status.code().expect("maqet exited"),
        stdout: String::from_utf8(out.stdout).expect("UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("UTF-8"),
    }
}

/// Inside a third user's private directory, maqet cannot even look at its
/// data dir: every command gives the reason of the directory above (exit
/// 4), reads as well as writes, never a bare "permission denied".
#[test]
fn a_data_dir_inside_a_third_users_private_dir_is_refused_alike() {
    if !have_root("a_data_dir_inside_a_third_users_private_dir_is_refused_alike") {
        return;
    }
    const THIRD: u32 = 1234;
    let t = Test::new();
    std::fs::set_permissions(t.root(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let other = t.path("other");
    std::fs::create_dir(&other).expect("mkdir");
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    chown_tree(&other, THIRD);
    let data = other.join("maqet");
    let refused = refusal(
        &data,
        &format!(
            "{}, a directory above it, belongs to uid {THIRD}, not to you (uid {NOBODY}) or root: that user could replace it",
            other.display()
        ),
        "give maqet a directory under ones only you or root can change, with --data-dir/--runtime-dir",
    );
    for args in [
        &["--json", "ls"][..],
        &["--json", "info", "web"],
        &["--json", "add", "--empty", "--name", "web"],
    ] {
        let out = as_nobody(&t, &data, args);
        assert_eq!(
            (out.status, out.stdout.as_str(), out.stderr.as_str()),
            (4, "", refused.as_str()),
            "{args:?}"
        );
    }
}

#[test]
fn another_user_is_refused_the_dirs_of_root() {
    if !have_root("another_user_is_refused_the_dirs_of_root") {
        return;
    }
    let mut t = Test::new();
    // Open the test's own directory to everyone, so only maqet's checks
    // stand between `nobody` and root's directories.
    std::fs::set_permissions(t.root(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    t.add_empty("web");
    t.args(["stop", "web"])
        .stdout("web is not running (created)\n")
        .run();
    let (data, run) = (state(&t.data_dir()), state(&t.runtime_dir()));

    // `ls` is refused for the same reason as `add`, before it looks inside.
    let root_owns = refusal(
        &t.data_dir(),
        "it belongs to uid 0, not to you (uid 65534)",
        "use a directory you own",
    );
    for args in [
        &["--json", "add", "--empty", "--name", "db"][..],
        &["--json", "ls"],
    ] {
        let out = as_nobody(&t, &t.data_dir(), args);
        assert_eq!(
            (out.status, out.stdout.as_str(), out.stderr.as_str()),
            (4, "", root_owns.as_str()),
            "{args:?}"
        );
    }

    // With a store of its own, `nobody` still cannot use root's runtime root.
    std::fs::create_dir(t.path("nobody-data")).expect("mkdir");
    std::fs::set_permissions(
        t.path("nobody-data"),
        std::fs::Permissions::from_mode(0o700),
    )
    .expect("chmod");
    chown_tree(&t.path("nobody-data"), NOBODY);
    let own = t.path("nobody-data");
    let out = as_nobody(&t, &own, &["add", "--empty", "--name", "web"]);
    assert_eq!(
        (out.status, out.stderr.as_str()),
        (0, ""),
        "nobody's own store"
    );
    let out = as_nobody(&t, &own, &["--json", "stop", "web"]);
    assert_eq!(
        (out.status, out.stdout.as_str(), out.stderr),
        (
            4,
            "",
            refusal(
                &t.runtime_dir(),
                "it belongs to uid 0, not to you (uid 65534)",
                "use a directory you own"
            )
        )
    );
    assert_eq!(state(&t.data_dir()), data, "root's store is unchanged");
    assert_eq!(
        state(&t.runtime_dir()),
        run,
        "root's runtime root is unchanged"
    );
}
