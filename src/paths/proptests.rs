//! Property tests: the invariant of the `paths` fuzz target
//! (docs/fuzzing.md), run by `cargo test`. For any path — relative or
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
use std::os::unix::fs::symlink;

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestRunner;
use tempfile::TempDir;

use super::*;

/// DESIGN.md §6, written out here rather than taken from the filter.
const SYSTEM: [&str; 12] = [
    "/etc", "/sys", "/proc", "/dev", "/boot", "/root", "/var", "/usr", "/bin", "/sbin", "/lib",
    "/lib64",
];

/// (link, target) made in the sandbox.
const LINKS: [(&str, &str); 18] = [
    ("etc", "/etc"),
    ("slash", "/"),
    ("proc_root", "/proc/self/root"),
    ("proc_self", "/proc/self"),
    ("up", "../../../../../../../../../../.."),
    ("loop_a", "loop_b"),
    ("loop_b", "loop_a"),
    ("dangling", "/etc/maqet-proptest-missing/x"),
    ("shm", "/dev/shm"),
    ("shm_up", "/dev/shm/.."),
    ("usr", "/usr"),
    ("dotdot", "dir/.."),
    ("file_link", "file"),
    ("tmp_link", "tmp"),
    ("home/out", "../../../../../../../../../etc"),
    ("home/self", "."),
    ("dir/sub/back", "../../home"),
    ("dir/deep", "sub/back/out"),
];

/// Words paths are made of: the sandbox's names and the system's.
const WORDS: [&str; 43] = [
    "..",
    ".",
    "",
    "etc",
    "slash",
    "proc_root",
    "proc_self",
    "up",
    "loop_a",
    "dangling",
    "shm",
    "shm_up",
    "usr",
    "dotdot",
    "file_link",
    "tmp_link",
    "home",
    "out",
    "self",
    "dir",
    "sub",
    "back",
    "deep",
    "file",
    "tmp",
    "passwd",
    "shadow",
    "proc",
    "root",
    "cwd",
    "fd",
    "0",
    "dev",
    "null",
    "sys",
    "bin",
    "lib",
    "lib64",
    "sbin",
    "boot",
    "var",
    "missing",
    "a,b",
];

struct Sandbox {
    _dir: TempDir,
    root: PathBuf,
    home: PathBuf,
    policy: PathPolicy,
    bases: Vec<Utf8PathBuf>,
    allowed: Vec<PathBuf>,
    system: Vec<PathBuf>,
}

impl Sandbox {
    fn new() -> Sandbox {
        // Under /var/tmp when it can be: the sandbox is then inside a system
        // directory, and only its home and temp dir are let through, which
        // is what a home under /var (Fedora Silverblue) or /root looks like.
        let dir = tempfile::Builder::new()
            .prefix("maqet-")
            .tempdir_in("/var/tmp")
            .or_else(|_| TempDir::new())
            .expect("temp dir");
        let root = dir.path().canonicalize().expect("canonical temp dir");
        for sub in ["home", "tmp", "dir/sub"] {
            std::fs::create_dir_all(root.join(sub)).expect("mkdir");
        }
        std::fs::write(root.join("file"), b"").expect("file");
        for (link, target) in LINKS {
            symlink(target, root.join(link)).expect("symlink");
        }
        let home = root.join("home");
        let temp = root.join("tmp");
        let utf8 = |p: PathBuf| Utf8PathBuf::from_path_buf(p).expect("UTF-8 temp dir");
        // Each directory as written and as it really is (on a merged-/usr
        // system /lib is /usr/lib).
        let both = |p: &Path| {
            let mut v = vec![p.to_owned()];
            v.extend(p.canonicalize());
            v
        };
        Sandbox {
            policy: PathPolicy::new(Some(home.clone()), Some(temp.clone())),
            bases: vec![
                utf8(root.clone()),
                utf8(root.join("dir/sub")),
                utf8(root.join("etc")),
                utf8(home.clone()),
                "/".into(),
                "/usr/share".into(),
                "/dev/shm".into(),
            ],
            allowed: [Path::new("/dev/shm"), &home, &temp]
                .into_iter()
                .flat_map(both)
                .collect(),
            system: SYSTEM.iter().map(Path::new).flat_map(both).collect(),
            _dir: dir,
            root,
            home,
        }
    }

    fn forbidding(&self, real: &Path) -> Option<&PathBuf> {
        if self.allowed.iter().any(|dir| real.starts_with(dir)) {
            return None;
        }
        self.system.iter().find(|dir| real.starts_with(dir))
    }
}

/// Where an absolute `path` really leads: one component at a time, each
/// step canonicalized by the kernel when it exists and kept as written when
/// it does not.
fn real_location(path: &Path) -> PathBuf {
    let mut real = PathBuf::from("/");
    for part in path.components() {
        match part {
            Component::Normal(name) => real.push(name),
            // `real` is canonical or missing, so its parent is its lexical one.
            Component::ParentDir => {
                real.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
        }
        if let Ok(canonical) = real.canonicalize() {
            real = canonical;
        }
    }
    real
}

#[test]
fn the_model_resolves_like_the_kernel() {
    let s = Sandbox::new();
    let real = |p: &str| real_location(&s.root.join(p));
    assert_eq!(real("etc/passwd"), Path::new("/etc/passwd"));
    assert_eq!(real("home/out/x"), real_location(Path::new("/etc/x")));
    assert_eq!(real("missing/../file"), s.root.join("file"));
    assert_eq!(real("missing/../etc/x"), Path::new("/etc/x"));
    assert_eq!(real("dotdot/file"), s.root.join("file"));
    assert_eq!(real("loop_a/x"), s.root.join("loop_a/x"));
    assert!(s.forbidding(&real("proc_root/etc/shadow")).is_some());
    assert!(s.forbidding(&real("shm/x")).is_none());
    assert!(s.forbidding(&real("shm_up/sda")).is_some());
}

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

/// The property for one path; `Err` says how the promise was broken.
fn check_one(s: &Sandbox, raw: &OsStr, base: &Utf8Path) -> Result<(), TestCaseError> {
    let Ok(accepted) = s.policy.check(raw, base) else {
        return Ok(());
    };
    let text = raw
        .to_str()
        .ok_or_else(|| TestCaseError::fail("non-UTF-8 accepted"))?;
    prop_assert!(
        accepted.is_absolute(),
        "{:?} accepted as {}",
        text,
        accepted
    );
    let full = match text.strip_prefix('~') {
        Some("") => s.home.clone(),
        Some(rest) => {
            prop_assert!(rest.starts_with('/'), "{:?} (`~user`) accepted", text);
            s.home.join(rest.trim_start_matches('/'))
        }
        None => base.as_std_path().join(text),
    };
    for path in [full.as_path(), accepted.as_std_path()] {
        let real = real_location(path);
        prop_assert!(
            s.forbidding(&real).is_none(),
            "{:?} (base {}) accepted as {}, but {} is really {}",
            text,
            base,
            accepted,
            path.display(),
            real.display()
        );
    }
    prop_assert_eq!(
        real_location(accepted.as_std_path()),
        accepted.as_std_path()
    );
    Ok(())
}

// One sandbox for every case (the strategy needs its path), so the property
// is run by hand rather than by `proptest!`.
#[test]
fn accepted_paths_never_really_lead_into_system_directories() {
    let s = Sandbox::new();
    let root = s.root.to_string_lossy().into_owned();
    let config = ProptestConfig {
        cases: 2048,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let strategy = (raw_path(root), 0..s.bases.len());
    let result =
        TestRunner::new(config).run(&strategy, |(raw, base)| check_one(&s, &raw, &s.bases[base]));
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
