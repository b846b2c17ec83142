//! The path filter, exercised the way a config file or a command line would
//! feed it. Every test builds its own `PathPolicy`, so the real `$HOME` and
//! `$TMPDIR` of whoever runs the tests never matter.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;

use tempfile::TempDir;

use super::*;

/// A temp directory and its canonical (symlink-free) path.
struct Scratch {
    _dir: TempDir,
    path: Utf8PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch::from(TempDir::new().unwrap())
    }

    /// Under `/var/tmp`, i.e. inside the system directory `/var`.
    fn under_var() -> Scratch {
        Scratch::from(
            tempfile::Builder::new()
                .prefix("maqet-")
                .tempdir_in("/var/tmp")
                .unwrap(),
        )
    }

    fn from(dir: TempDir) -> Scratch {
        let path = Utf8PathBuf::from_path_buf(dir.path().canonicalize().unwrap()).unwrap();
        Scratch { _dir: dir, path }
    }

    fn mkdir(&self, name: &str) -> Utf8PathBuf {
        let dir = self.path.join(name);
        std::fs::create_dir(&dir).unwrap();
        dir
    }

    fn touch(&self, name: &str) -> Utf8PathBuf {
        let file = self.path.join(name);
        std::fs::write(&file, b"").unwrap();
        file
    }

    fn link(&self, name: &str, target: impl AsRef<Path>) -> Utf8PathBuf {
        let link = self.path.join(name);
        symlink(target, &link).unwrap();
        link
    }
}

/// No home and no temp dir: nothing is exempt.
fn strict() -> PathPolicy {
    PathPolicy::new(None, None)
}

fn with_home(home: impl Into<PathBuf>) -> PathPolicy {
    PathPolicy::new(Some(home.into()), None)
}

fn check(policy: &PathPolicy, raw: impl AsRef<OsStr>) -> Result<Utf8PathBuf, PathError> {
    policy.check(raw.as_ref(), Utf8Path::new("/"))
}

/// Assert `err` is a refusal of `resolved`, found inside system directory `dir`.
#[track_caller]
fn assert_refused(err: PathError, resolved: impl AsRef<str>, dir: &str) {
    assert!(err.is_refusal(), "{err:?} should be a refusal");
    match err {
        PathError::SystemDir {
            resolved: got,
            dir: got_dir,
            ..
        } => {
            assert_eq!(got, resolved.as_ref());
            assert_eq!(got_dir, dir);
        }
        other => panic!("expected SystemDir, got {other:?}"),
    }
}

/// Where the kernel puts `path` on this machine (`/bin` is `/usr/bin` on a
/// merged-/usr system), and the system directory that resolution lies in.
fn on_this_machine(path: &str) -> (String, String) {
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| PathBuf::from(path));
    let real = real.to_str().unwrap().to_owned();
    let top = real.split('/').nth(1).unwrap();
    (real.clone(), format!("/{top}"))
}

// --- system directories ---------------------------------------------------

#[test]
fn every_system_dir_and_anything_inside_it_is_refused() {
    for dir in SYSTEM_DIRS {
        let (real_dir, top) = on_this_machine(dir);
        let err = check(&strict(), dir).unwrap_err();
        assert_refused(err, &real_dir, &top);

        let inside = format!("{dir}/maqet-test-image.qcow2");
        let err = check(&strict(), &inside).unwrap_err();
        assert_refused(err, format!("{real_dir}/maqet-test-image.qcow2"), &top);
    }
}

#[test]
fn etc_passwd_is_refused_with_the_path_as_written() {
    let err = check(&strict(), "/etc/passwd").unwrap_err();
    assert_eq!(
        err,
        PathError::SystemDir {
            path: "/etc/passwd".into(),
            resolved: "/etc/passwd".into(),
            dir: "/etc".into(),
        }
    );
}

#[test]
fn trailing_slashes_and_dots_do_not_hide_a_system_dir() {
    for raw in ["/etc/", "//etc", "/etc/.", "/./etc/./passwd/"] {
        let err = check(&strict(), raw).unwrap_err();
        assert!(err.is_refusal(), "{raw}: {err:?}");
    }
}

#[test]
fn the_filesystem_root_is_refused() {
    for raw in ["/", "//", "/..", "/tmp/..", "/../../.."] {
        let err = check(&strict(), raw).unwrap_err();
        assert_eq!(err, PathError::Root(raw.into()));
        assert!(err.is_refusal());
    }
}

#[test]
fn a_name_that_only_starts_like_a_system_dir_is_allowed() {
    for raw in ["/etcetera/x", "/usrlocal/x", "/dev-images/x", "/lib32x/x"] {
        assert_eq!(check(&strict(), raw).unwrap(), raw);
    }
}

#[test]
fn dev_shm_is_allowed() {
    let (shm, _) = on_this_machine("/dev/shm");
    assert_eq!(check(&strict(), "/dev/shm").unwrap(), shm);
    assert_eq!(
        check(&strict(), "/dev/shm/maqet/disk.qcow2").unwrap(),
        format!("{shm}/maqet/disk.qcow2")
    );
}

#[test]
fn the_rest_of_dev_is_still_refused() {
    assert_refused(
        check(&strict(), "/dev/sda").unwrap_err(),
        "/dev/sda",
        "/dev",
    );
    assert_refused(
        check(&strict(), "/dev/shmem").unwrap_err(),
        "/dev/shmem",
        "/dev",
    );
}

// --- `..` -------------------------------------------------------------------

#[test]
fn dot_dot_out_of_a_temp_dir_into_etc_is_refused() {
    let tmp = Scratch::new();
    tmp.mkdir("a");
    let raw = format!("{}/a/../../../etc/passwd", tmp.path);
    let err = check(&strict(), &raw).unwrap_err();
    assert_eq!(
        err,
        PathError::SystemDir {
            path: raw,
            resolved: "/etc/passwd".into(),
            dir: "/etc".into(),
        }
    );
}

#[test]
fn dot_dot_through_a_directory_that_does_not_exist_yet_is_refused() {
    let tmp = Scratch::new();
    let home = tmp.mkdir("home");
    let policy = PathPolicy::new(Some(home.clone().into()), Some(tmp.path.clone().into()));
    let raw = format!("{home}/nonexistent/../../../../etc/x");
    assert_refused(check(&policy, raw).unwrap_err(), "/etc/x", "/etc");
}

#[test]
fn dot_dot_out_of_dev_shm_is_refused() {
    let err = check(&strict(), "/dev/shm/../../etc/shadow").unwrap_err();
    assert_refused(err, "/etc/shadow", "/etc");
}

#[test]
fn a_path_that_passes_through_etc_but_ends_elsewhere_is_allowed() {
    let tmp = Scratch::new();
    let raw = format!("/etc/..{}/disk.qcow2", tmp.path);
    assert_eq!(check(&strict(), raw).unwrap(), tmp.path.join("disk.qcow2"));
}

#[test]
fn dot_dot_is_applied_after_the_symlink_before_it() {
    // Written out, `<tmp>/docs/../x` looks like `<tmp>/x`; the kernel
    // follows `docs` first and lands in /usr/share/x.
    let tmp = Scratch::new();
    tmp.link("docs", "/usr/share/doc");
    let raw = format!("{}/docs/../x", tmp.path);
    assert_refused(check(&strict(), raw).unwrap_err(), "/usr/share/x", "/usr");
}

// --- symlinks ---------------------------------------------------------------

#[test]
fn a_symlink_to_etc_passwd_is_refused() {
    let home = Scratch::new();
    let link = home.link("link", "/etc/passwd");
    let err = check(&with_home(&home.path), &link).unwrap_err();
    assert_eq!(
        err,
        PathError::SystemDir {
            path: link.to_string(),
            resolved: "/etc/passwd".into(),
            dir: "/etc".into(),
        }
    );
}

#[test]
fn a_file_under_a_directory_symlink_to_etc_is_refused() {
    let home = Scratch::new();
    let dir = home.link("dir", "/etc");
    let err = check(&with_home(&home.path), dir.join("passwd")).unwrap_err();
    assert_refused(err, "/etc/passwd", "/etc");
}

#[test]
fn a_relative_symlink_climbing_into_etc_is_refused() {
    let home = Scratch::new();
    let sub = home.mkdir("sub");
    let up = "../".repeat(home.path.components().count() + 1);
    symlink(format!("{up}etc/passwd"), sub.join("link")).unwrap();
    let err = check(&with_home(&home.path), sub.join("link")).unwrap_err();
    assert_refused(err, "/etc/passwd", "/etc");
}

#[test]
fn a_dangling_symlink_into_etc_is_refused() {
    // QEMU creating `<home>/new.qcow2` would follow the link and create
    // /etc/maqet-new.qcow2.
    let home = Scratch::new();
    let link = home.link("new.qcow2", "/etc/maqet-new.qcow2");
    let err = check(&with_home(&home.path), link).unwrap_err();
    assert_refused(err, "/etc/maqet-new.qcow2", "/etc");
}

#[test]
fn a_dangling_symlink_inside_the_home_is_allowed_as_its_target() {
    let home = Scratch::new();
    let link = home.link("new.qcow2", "real/new.qcow2");
    assert_eq!(
        check(&with_home(&home.path), link).unwrap(),
        home.path.join("real/new.qcow2")
    );
}

#[test]
fn an_accepted_symlink_is_returned_resolved() {
    let tmp = Scratch::new();
    let real = tmp.touch("disk.qcow2");
    let link = tmp.link("current.qcow2", "disk.qcow2");
    assert_eq!(check(&strict(), link).unwrap(), real);
}

#[test]
fn a_symlink_into_dev_shm_is_allowed() {
    let (shm, _) = on_this_machine("/dev/shm");
    let tmp = Scratch::new();
    let link = tmp.link("shm", "/dev/shm");
    assert_eq!(
        check(&strict(), link.join("disk.qcow2")).unwrap(),
        format!("{shm}/disk.qcow2")
    );
}

#[test]
fn a_symlink_loop_is_reported_not_refused() {
    let tmp = Scratch::new();
    let a = tmp.link("a", "b");
    tmp.link("b", "a");
    let raw = a.join("disk.qcow2");
    let err = check(&strict(), &raw).unwrap_err();
    assert_eq!(
        err,
        PathError::SymlinkLoop {
            path: raw.to_string()
        }
    );
    assert!(!err.is_refusal());
}

#[test]
fn a_symlink_to_itself_is_a_loop() {
    let tmp = Scratch::new();
    let me = tmp.link("me", "me");
    let err = check(&strict(), &me).unwrap_err();
    assert_eq!(
        err,
        PathError::SymlinkLoop {
            path: me.to_string()
        }
    );
}

#[test]
fn a_chain_of_forty_symlinks_resolves_and_forty_one_is_a_loop() {
    // Linux's own limit: 40 links in one lookup succeed, the 41st is ELOOP.
    let tmp = Scratch::new();
    let target = tmp.touch("disk.qcow2");
    tmp.link("l0", "disk.qcow2");
    for i in 1..=MAX_SYMLINKS {
        tmp.link(&format!("l{i}"), format!("l{}", i - 1));
    }
    let longest_ok = tmp.path.join(format!("l{}", MAX_SYMLINKS - 1));
    assert_eq!(check(&strict(), longest_ok).unwrap(), target);
    let one_too_many = tmp.path.join(format!("l{MAX_SYMLINKS}"));
    assert!(matches!(
        check(&strict(), one_too_many),
        Err(PathError::SymlinkLoop { .. })
    ));
}

// --- home and temp exemptions ----------------------------------------------

#[test]
fn a_home_under_var_lets_its_own_files_through() {
    let var = Scratch::under_var();
    let home = var.mkdir("home");
    let policy = with_home(&home);
    assert_eq!(
        check(&policy, home.join("disk.qcow2")).unwrap(),
        home.join("disk.qcow2")
    );
    assert_eq!(
        check(&policy, "~/disk.qcow2").unwrap(),
        home.join("disk.qcow2")
    );
    assert_eq!(check(&policy, "~").unwrap(), home);
}

#[test]
fn without_that_home_the_same_var_path_is_refused() {
    let var = Scratch::under_var();
    let home = var.mkdir("home");
    let err = check(&strict(), home.join("disk.qcow2")).unwrap_err();
    assert_refused(err, home.join("disk.qcow2"), "/var");
}

#[test]
fn a_home_under_var_does_not_exempt_its_neighbours() {
    let var = Scratch::under_var();
    let home = var.mkdir("home");
    let policy = with_home(&home);
    let err = check(&policy, var.path.join("other/disk.qcow2")).unwrap_err();
    assert_refused(err, var.path.join("other/disk.qcow2"), "/var");
    let err = check(&policy, "~/../../../lib/dpkg/status").unwrap_err();
    assert_refused(err, "/var/lib/dpkg/status", "/var");
}

#[test]
fn a_symlink_in_a_var_home_pointing_elsewhere_in_var_is_refused() {
    let var = Scratch::under_var();
    let home = var.mkdir("home");
    symlink("/var/lib/dpkg", home.join("dpkg")).unwrap();
    let err = check(&with_home(&home), "~/dpkg/status").unwrap_err();
    assert_refused(err, "/var/lib/dpkg/status", "/var");
}

#[test]
fn a_home_reached_through_a_symlink_into_var_is_exempt_by_its_real_path() {
    // Fedora Silverblue: $HOME is /home/me and /home -> var/home.
    let var = Scratch::under_var();
    let real_home = var.mkdir("home");
    let tmp = Scratch::new();
    let home = tmp.link("home", &real_home);
    assert_eq!(
        check(&with_home(&home), "~/disk.qcow2").unwrap(),
        real_home.join("disk.qcow2")
    );
}

#[test]
fn a_temp_dir_under_var_lets_its_own_files_through() {
    let var = Scratch::under_var();
    let policy = PathPolicy::new(None, Some(var.path.clone().into()));
    assert_eq!(
        check(&policy, var.path.join("x.img")).unwrap(),
        var.path.join("x.img")
    );
    let err = check(&policy, "/var/lib/x.img").unwrap_err();
    assert_refused(err, "/var/lib/x.img", "/var");
}

/// Issue 18: TMPDIR=/etc/ssh made the temp-directory exemption cover
/// /etc/ssh. No exemption covers a system directory or anything beneath
/// one, but the places meant for users there.
#[test]
fn a_temp_or_home_dir_inside_a_system_dir_exempts_nothing() {
    for inside in ["/etc/ssh", "/usr/local", "/var/lib", "/boot"] {
        let policy = PathPolicy::new(Some(inside.into()), Some(inside.into()));
        let err = check(&policy, format!("{inside}/x.img")).unwrap_err();
        assert!(
            matches!(err, PathError::SystemDir { .. }),
            "{inside}: {err:?}"
        );
    }
}

#[test]
fn roots_home_is_allowed_when_home_is_root() {
    let (root, _) = on_this_machine("/root");
    let policy = with_home("/root");
    assert_eq!(
        check(&policy, "/root/disk.qcow2").unwrap(),
        format!("{root}/disk.qcow2")
    );
    assert_eq!(
        check(&policy, "~/disk.qcow2").unwrap(),
        format!("{root}/disk.qcow2")
    );
    assert_eq!(check(&policy, "~").unwrap(), root);
}

#[test]
fn roots_home_does_not_exempt_the_rest_of_the_system() {
    let policy = with_home("/root");
    let err = check(&policy, "~/../etc/shadow").unwrap_err();
    assert_refused(err, "/etc/shadow", "/etc");
}

#[test]
fn roots_home_is_refused_for_anyone_else() {
    let (root, top) = on_this_machine("/root");
    let tmp = Scratch::new();
    let policy = PathPolicy::new(Some(tmp.path.clone().into()), Some(tmp.path.clone().into()));
    let err = check(&policy, "/root/.ssh/id_ed25519").unwrap_err();
    assert_refused(err, format!("{root}/.ssh/id_ed25519"), &top);
}

#[test]
fn a_home_or_temp_of_the_root_exempts_nothing() {
    let policy = PathPolicy::new(Some("/".into()), Some("/".into()));
    assert_refused(
        check(&policy, "/etc/passwd").unwrap_err(),
        "/etc/passwd",
        "/etc",
    );
    assert_eq!(
        check(&policy, "~").unwrap_err(),
        PathError::Root("~".into())
    );
}

#[test]
fn a_home_or_temp_set_to_a_system_dir_exempts_nothing() {
    // Real accounts have such homes: Debian's `bin` and `sync` use /bin
    // (which is /usr/bin on a merged-/usr system), `sys` uses /dev.
    for dir in SYSTEM_DIRS.iter().filter(|d| **d != "/root") {
        let policy = PathPolicy::new(Some(dir.into()), Some(dir.into()));
        let (real_dir, top) = on_this_machine(dir);
        let err = check(&policy, "~/maqet-test").unwrap_err();
        assert_refused(err, format!("{real_dir}/maqet-test"), &top);
    }
}

#[test]
fn a_home_of_usr_however_spelled_exempts_nothing() {
    let tmp = Scratch::new();
    let link = tmp.link("usr", "/usr");
    for home in ["/usr/", "/usr/.", "/usr/share/..", link.as_str()] {
        let err = check(&with_home(home), "~/share/x").unwrap_err();
        assert_refused(err, "/usr/share/x", "/usr");
    }
}

#[test]
fn a_relative_home_exempts_nothing() {
    let err = check(&with_home("var"), "~/lib/x").unwrap_err();
    assert_refused(err, "/var/lib/x", "/var");
}

// --- everyday paths ---------------------------------------------------------

#[test]
fn a_file_that_does_not_exist_yet_is_allowed_and_made_absolute() {
    let tmp = Scratch::new();
    let raw = tmp.path.join("vms/new/disk.qcow2");
    assert_eq!(check(&strict(), &raw).unwrap(), raw);
}

#[test]
fn a_relative_path_is_resolved_against_the_config_dir() {
    let tmp = Scratch::new();
    let base = tmp.mkdir("config");
    let got = strict().check(OsStr::new("disk.qcow2"), &base).unwrap();
    assert_eq!(got, base.join("disk.qcow2"));
    let got = strict()
        .check(OsStr::new("./images/../disk.qcow2"), &base)
        .unwrap();
    assert_eq!(got, base.join("disk.qcow2"));
    let got = strict()
        .check(OsStr::new("../shared/seed.iso"), &base)
        .unwrap();
    assert_eq!(got, tmp.path.join("shared/seed.iso"));
}

#[test]
fn a_relative_path_in_a_config_dir_symlinked_to_etc_is_refused() {
    let tmp = Scratch::new();
    let base = tmp.link("config", "/etc");
    let err = strict().check(OsStr::new("passwd"), &base).unwrap_err();
    assert_refused(err, "/etc/passwd", "/etc");
}

#[test]
fn a_relative_path_climbing_out_of_the_config_dir_into_etc_is_refused() {
    let tmp = Scratch::new();
    let raw = format!("{}etc/passwd", "../".repeat(tmp.path.components().count()));
    let err = strict().check(OsStr::new(&raw), &tmp.path).unwrap_err();
    assert_refused(err, "/etc/passwd", "/etc");
}

#[test]
fn tilde_is_the_home_dir() {
    let home = Scratch::new();
    let policy = with_home(&home.path);
    assert_eq!(check(&policy, "~").unwrap(), home.path);
    assert_eq!(check(&policy, "~/").unwrap(), home.path);
    assert_eq!(
        check(&policy, "~/vms/disk.qcow2").unwrap(),
        home.path.join("vms/disk.qcow2")
    );
}

#[test]
fn tilde_ignores_the_config_dir() {
    let home = Scratch::new();
    let policy = with_home(&home.path);
    let got = policy
        .check(OsStr::new("~/x.img"), Utf8Path::new("/elsewhere"))
        .unwrap();
    assert_eq!(got, home.path.join("x.img"));
}

#[test]
fn a_tilde_later_in_the_path_is_just_a_name() {
    let tmp = Scratch::new();
    let policy = with_home("/nonexistent-home");
    let got = policy.check(OsStr::new("backup/~"), &tmp.path).unwrap();
    assert_eq!(got, tmp.path.join("backup/~"));
    let got = policy.check(OsStr::new("./~alice"), &tmp.path).unwrap();
    assert_eq!(got, tmp.path.join("~alice"));
}

#[test]
fn another_users_home_is_not_expanded() {
    let policy = with_home("/home/me");
    for raw in ["~alice", "~alice/disk.qcow2", "~root/.ssh/id_rsa"] {
        let err = check(&policy, raw).unwrap_err();
        assert_eq!(err, PathError::OtherUsersHome(raw.into()));
        assert!(!err.is_refusal());
    }
}

#[test]
fn tilde_without_a_home_is_an_error() {
    for raw in ["~", "~/disk.qcow2"] {
        let err = check(&strict(), raw).unwrap_err();
        assert_eq!(err, PathError::NoHome);
        assert!(!err.is_refusal());
    }
}

#[test]
fn an_empty_path_is_an_error() {
    let err = check(&with_home("/home/me"), "").unwrap_err();
    assert_eq!(err, PathError::Empty);
    assert!(!err.is_refusal());
}

#[test]
fn a_non_utf8_name_is_an_error_not_a_refusal() {
    let raw = OsStr::from_bytes(b"/tmp/disk-\xff.qcow2");
    let err = check(&strict(), raw).unwrap_err();
    assert_eq!(err, PathError::NotUtf8("/tmp/disk-\u{FFFD}.qcow2".into()));
    assert!(!err.is_refusal());
}

#[test]
fn a_non_utf8_name_inside_etc_is_still_not_utf8() {
    let err = check(&strict(), OsStr::from_bytes(b"/etc/\xfe")).unwrap_err();
    assert_eq!(err, PathError::NotUtf8("/etc/\u{FFFD}".into()));
}

#[test]
fn a_symlink_to_a_non_utf8_name_is_an_error() {
    let tmp = Scratch::new();
    let link = tmp.link("link", OsStr::from_bytes(b"disk-\xff.qcow2"));
    let err = check(&strict(), link).unwrap_err();
    assert_eq!(
        err,
        PathError::NotUtf8(format!("{}/disk-\u{FFFD}.qcow2", tmp.path))
    );
}

#[test]
fn a_name_too_long_for_the_filesystem_is_unreadable_not_refused() {
    let tmp = Scratch::new();
    let raw = tmp.path.join("x".repeat(300));
    let err = check(&strict(), raw).unwrap_err();
    assert!(matches!(err, PathError::Unreadable { .. }), "{err:?}");
    assert!(!err.is_refusal());
}

/// The account's home from the password database counts as well as `$HOME`
/// (cron, `sudo -u` and services often set another `$HOME`).
#[test]
fn hidden_files_of_the_account_home_are_refused_whatever_home_says() {
    let temp = tempfile::tempdir().expect("tempdir");
    let root = temp.path().canonicalize().expect("canonical");
    let (env_home, account) = (root.join("elsewhere"), root.join("me"));
    std::fs::create_dir_all(account.join(".ssh")).expect("mkdir");
    std::fs::create_dir_all(&env_home).expect("mkdir");
    let mut policy = PathPolicy::new(Some(env_home), Some(root.clone()));
    policy.account_home = Some(account.clone());
    let key = account.join(".ssh/id_ed25519");
    let err = policy
        .check_vm(key.as_os_str(), Utf8Path::new("/"))
        .expect_err("refused");
    assert!(matches!(err, PathError::HiddenInHome { .. }), "{err}");
    let plain = account.join("vm.img");
    assert!(
        policy
            .check_vm(plain.as_os_str(), Utf8Path::new("/"))
            .is_ok()
    );
}

#[test]
fn every_accounts_home_is_read_from_the_password_file() {
    let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                  nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
                  mallory:x:1001:1001::/home/mallory:/bin/sh\n\
                  odd:x:1002:1002::relative:/bin/sh\n\
                  slash:x:1003:1003::/:/bin/sh\n\
                  short:x:1004\n";
    assert_eq!(
        super::homes_in(passwd),
        [
            PathBuf::from("/root"),
            PathBuf::from("/nonexistent"),
            PathBuf::from("/home/mallory"),
        ]
    );
}
