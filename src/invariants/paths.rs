//! The path filter's promise (DESIGN.md §6), checked against the kernel's
//! own view of a path: `std::fs::canonicalize` (realpath) of what exists,
//! the rest applied as written ([`real_location`]).

use std::ffi::OsStr;
use std::os::unix::fs::symlink;
use std::path::{Component, Path, PathBuf};

use camino::Utf8PathBuf;

use crate::paths::PathPolicy;

/// DESIGN.md §6.
const SYSTEM_DIRS: [&str; 12] = [
    "/etc", "/sys", "/proc", "/dev", "/boot", "/root", "/var", "/usr", "/bin", "/sbin", "/lib",
    "/lib64",
];

/// A directory full of awkward symlinks, with a home and a temp dir of its
/// own for the policy.
pub struct Sandbox {
    pub root: PathBuf,
    pub home: PathBuf,
    pub temp: PathBuf,
    pub policy: PathPolicy,
    /// Directories relative paths are resolved against.
    pub bases: Vec<Utf8PathBuf>,
    allowed: Vec<PathBuf>,
    system: Vec<PathBuf>,
}

/// Symlinks made in the sandbox: (link, target).
const LINKS: [(&str, &str); 18] = [
    ("etc", "/etc"),
    ("slash", "/"),
    ("proc_root", "/proc/self/root"),
    ("proc_self", "/proc/self"),
    ("up", "../../../../../../../../../../.."),
    ("loop_a", "loop_b"),
    ("loop_b", "loop_a"),
    ("dangling", "/etc/maqet-sandbox-missing/x"),
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

/// Words a generated path is made of: the sandbox's names and the system's.
pub const WORDS: [&str; 44] = [
    "..",
    ".",
    "",
    "~",
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

/// Where to make a sandbox's directory: `$TMPDIR` when it is set
/// (scripts/fuzz points it at a directory under /var/tmp that it removes
/// afterwards, as a fuzz target never runs its destructors), otherwise
/// /var/tmp. Under /var/tmp the sandbox is inside a system directory, and
/// only its home and temp dir are let through, which is what a home under
/// /var (Fedora Silverblue) or /root looks like.
pub fn sandbox_parent() -> PathBuf {
    match std::env::var_os("TMPDIR") {
        Some(_) => std::env::temp_dir(),
        None => PathBuf::from("/var/tmp"),
    }
}

impl Sandbox {
    /// Build the sandbox in `dir`, an empty directory the caller owns and
    /// removes, best made under [`sandbox_parent`].
    pub fn new(dir: &Path) -> Sandbox {
        let root = dir.canonicalize().expect("canonical sandbox dir");
        for sub in ["home", "tmp", "dir/sub"] {
            std::fs::create_dir_all(root.join(sub)).expect("mkdir");
        }
        std::fs::write(root.join("file"), b"").expect("file");
        std::fs::write(root.join("home/file"), b"").expect("file");
        for (link, target) in LINKS {
            symlink(target, root.join(link)).expect("symlink");
        }
        let home = root.join("home");
        let temp = root.join("tmp");
        let policy = PathPolicy::new(Some(home.clone()), Some(temp.clone()));
        let utf8 = |p: PathBuf| Utf8PathBuf::from_path_buf(p).expect("UTF-8 temp dir");
        let bases = vec![
            utf8(root.clone()),
            utf8(root.join("dir/sub")),
            utf8(root.join("etc")),
            utf8(home.clone()),
            Utf8PathBuf::from("/"),
            Utf8PathBuf::from("/usr/share"),
            Utf8PathBuf::from("/dev/shm"),
        ];
        // Each directory as written and as it really is (on a merged-/usr
        // system /lib is /usr/lib).
        let both = |p: &Path| {
            let mut v = vec![p.to_owned()];
            v.extend(p.canonicalize());
            v
        };
        let allowed = [Path::new("/dev/shm"), &home, &temp]
            .into_iter()
            .flat_map(both)
            .collect();
        let system = SYSTEM_DIRS.iter().map(Path::new).flat_map(both).collect();
        Sandbox {
            root,
            home,
            temp,
            policy,
            bases,
            allowed,
            system,
        }
    }

    /// Run the filter on `raw` and check its answer; the error says how the
    /// promise was broken.
    pub fn check(&self, raw: &OsStr, base: &camino::Utf8Path) -> Result<(), String> {
        let Ok(accepted) = self.policy.check(raw, base) else {
            return Ok(());
        };
        let text = raw.to_str().ok_or("a non-UTF-8 path was accepted")?;
        if !accepted.is_absolute() {
            return Err(format!(
                "{text:?} was accepted as the relative path {accepted}"
            ));
        }
        let full = match text.strip_prefix('~') {
            Some("") => self.home.clone(),
            Some(rest) if rest.starts_with('/') => self.home.join(rest.trim_start_matches('/')),
            Some(_) => return Err(format!("{text:?} (`~user`) was accepted")),
            None => base.as_std_path().join(text),
        };
        for (what, path) in [
            ("the path", full.as_path()),
            ("the result", accepted.as_std_path()),
        ] {
            let real = real_location(path);
            if let Some(dir) = self.forbidding(&real) {
                return Err(format!(
                    "{text:?} (base {base}) was accepted as {accepted}, but {what} is really {} \
                     inside {}",
                    real.display(),
                    dir.display()
                ));
            }
        }
        let real = real_location(accepted.as_std_path());
        if real != accepted.as_std_path() {
            return Err(format!(
                "{text:?} was accepted as {accepted}, which is not symlink-free: it is {}",
                real.display()
            ));
        }
        Ok(())
    }

    /// The system directory `real` is inside, unless an exception covers it.
    fn forbidding(&self, real: &Path) -> Option<&Path> {
        if self.allowed.iter().any(|dir| real.starts_with(dir)) {
            return None;
        }
        self.system
            .iter()
            .find(|dir| real.starts_with(dir))
            .map(PathBuf::as_path)
    }
}

/// Where an absolute `path` really leads: one component at a time, each
/// step canonicalized by the kernel (realpath) when it exists and kept as
/// written when it does not. For most paths that is realpath of the longest
/// existing prefix plus the rest as written; the difference is a `..` after
/// a missing name that climbs back onto a symlink (`missing/../link`), which
/// the kernel cannot resolve for us in one call.
pub fn real_location(path: &Path) -> PathBuf {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_resolves_like_the_kernel() {
        let dir = tempfile::tempdir().expect("temp dir");
        let s = Sandbox::new(dir.path());
        let real = |p: &str| real_location(&s.root.join(p));
        assert_eq!(real("etc/passwd"), Path::new("/etc/passwd"));
        assert_eq!(real("home/out/x"), real_location(Path::new("/etc/x")));
        assert_eq!(real("missing/../file"), s.root.join("file"));
        assert_eq!(real("dotdot/file"), s.root.join("file"));
        assert_eq!(real("missing/../etc/x"), Path::new("/etc/x"));
        assert_eq!(real("loop_a/x"), s.root.join("loop_a/x"));
        assert!(s.forbidding(&real("proc_root/etc/shadow")).is_some());
        assert!(s.forbidding(&real("shm/x")).is_none());
        assert!(s.forbidding(&real("shm_up/sda")).is_some());
        assert!(
            s.check(OsStr::new("~/out/passwd"), camino::Utf8Path::new("/"))
                .is_ok()
        );
    }
}
