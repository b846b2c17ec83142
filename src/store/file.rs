//! The database file itself: creating it so a half-made one never takes the
//! store's name, a first read-only look, and reporting damage (redb's errors
//! and panics) as such.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};

use camino::{Utf8Path, Utf8PathBuf};
use redb::ReadableDatabase;

use super::{META, SCHEMA_KEY, SCHEMA_VERSION};
use crate::error::{Error, Result};

/// redb's page cache. Its default (1 GiB) lets a command that reads every
/// record (`ls`) keep the whole file in memory: 100 000 VMs made `ls` peak
/// at 57 MiB. Commands read each page about once, so a small cache costs
/// them nothing measurable (docs/performance.md).
const CACHE_BYTES: usize = 1 << 20;

pub(super) fn builder() -> redb::Builder {
    let mut builder = redb::Builder::new();
    builder.set_cache_size(CACHE_BYTES);
    builder
}

/// A first, read-only look at a database file.
pub(super) struct Peek {
    /// None when the file needs a repair, which only a writable open does.
    pub(super) db: Option<redb::ReadOnlyDatabase>,
    pub(super) version: Option<u64>,
}

pub(super) fn peek(path: &Utf8Path) -> Result<Peek> {
    refuse_empty(path)?;
    let db = match builder().open_read_only(path) {
        Ok(db) => db,
        Err(redb::DatabaseError::RepairAborted) => {
            return Ok(Peek {
                db: None,
                version: None,
            });
        }
        Err(e) => return Err(db_error(path, e)),
    };
    let txn = db.begin_read().map_err(|e| db_error(path, e))?;
    let version = version_in(&txn).map_err(|e| db_error(path, e))?;
    drop(txn);
    Ok(Peek {
        db: Some(db),
        version,
    })
}

/// An empty file where the store should be is damage, never a new store:
/// maqet initialises a store beside its name and renames it into place
/// (`create_beside`), so a store of its own is never empty. One emptied by
/// a truncation, a full disk or a botched restore used to read as a store
/// with no VMs, and redb's `create` made it one on the next write: every VM
/// gone without a word. redb refuses other files without its header itself.
pub(super) fn refuse_empty(path: &Utf8Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io("cannot inspect", path, e))?;
    if meta.len() == 0 {
        return Err(Error::StoreDamaged {
            path: path.to_owned(),
            detail: "the file is empty".into(),
        });
    }
    Ok(())
}

pub(super) fn version_in(txn: &redb::ReadTransaction) -> Result<Option<u64>, redb::Error> {
    match txn.open_table(META) {
        Ok(table) => Ok(table.get(SCHEMA_KEY)?.map(|v| v.value())),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub(super) fn too_new(path: &Utf8Path, found: u64) -> Error {
    Error::StoreTooNew {
        path: path.to_owned(),
        found,
        supported: SCHEMA_VERSION,
    }
}

/// Create a new, empty database at `path` without ever leaving a half-made
/// one there. redb writes its magic number last while initialising a file,
/// and then refuses any non-empty file without it ("magic number mismatch"):
/// a first `add` killed at that moment would leave a store no command can
/// open. So the file is initialised beside `path` and renamed into place.
/// The caller holds the store lock.
pub(super) fn create_beside(path: &Utf8Path) -> Result<()> {
    let fresh = Utf8PathBuf::from(format!("{path}.new"));
    // Left behind by a maqet killed here before; never renamed, so unused.
    match std::fs::remove_file(&fresh) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(Error::io("cannot remove", fresh, e));
        }
        _ => {}
    }
    prepare_db_file(&fresh)?;
    drop(builder().create(&fresh).map_err(|e| db_error(&fresh, e))?);
    std::fs::rename(&fresh, path).map_err(|e| Error::io("cannot create the database", path, e))?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("cannot flush", dir, e))?;
    }
    Ok(())
}

/// Make sure the database file exists with mode 0600 before redb opens it:
/// redb would create it with the umask's mode.
pub(super) fn prepare_db_file(path: &Utf8Path) -> Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io("cannot create the database", path, e)),
    }
    let meta = std::fs::symlink_metadata(path).map_err(|e| Error::io("cannot inspect", path, e))?;
    if !meta.is_file() {
        return Err(Error::UnsafeDir {
            path: path.to_owned(),
            reason: "it is not a regular file".into(),
            help: "move it away; maqet will create a new, empty store".into(),
        });
    }
    if meta.nlink() > 1 {
        return Err(Error::UnsafeDir {
            path: path.to_owned(),
            reason: format!(
                "it has {} names (hard links); another may be a VM's disk",
                meta.nlink()
            ),
            help: "remove the other names (`find / -samefile` finds them), or copy the store to a file of its own".into(),
        });
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io("cannot set the mode of", path, e))?;
    }
    Ok(())
}

pub(super) fn copy_private(from: &Utf8Path, to: &Utf8Path) -> Result<()> {
    let mut src = File::open(from).map_err(|e| Error::io("cannot read", from, e))?;
    // Into a new file of a name nobody can guess, renamed over `to`: a file,
    // hard link or symlink already at `to` is replaced, never written
    // through (a hard link to the store itself was truncated with it).
    let temp = Utf8PathBuf::from(format!(
        "{to}.{}",
        &crate::vm::VmId::random()?.as_str()[..12]
    ));
    let copied = (|| {
        let mut dst = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&temp)
            .map_err(|e| Error::io("cannot create", &temp, e))?;
        io::copy(&mut src, &mut dst)
            .map_err(|e| Error::io("cannot copy the store to", &temp, e))?;
        dst.sync_all()
            .map_err(|e| Error::io("cannot flush", &temp, e))?;
        std::fs::rename(&temp, to).map_err(|e| Error::io("cannot create", to, e))
    })();
    if copied.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    copied?;
    if let Some(dir) = to.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("cannot flush", dir, e))?;
    }
    Ok(())
}

/// Run `f`, turning a panic into an error: "damaged" when redb raised it,
/// "internal" (a bug to report) otherwise. redb panics on some kinds of
/// damage (a malformed allocator state, for one) instead of returning an
/// error, and a damaged file must be reported, not crash maqet. But `f`
/// also runs maqet's own code (a command's write closure, the decoding of
/// records), and a bug there said "damaged, move the store aside", advice
/// that loses every VM. (main's panic hook keeps the message off the
/// terminal.)
pub(super) fn shielded<T>(path: &Utf8Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    record_panic_origins();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let origin = take_panic_origin();
        Err(panicked(path, &*panic, origin.as_deref()))
    })
}

thread_local! {
    /// The source file of the last panic raised on this thread, recorded by
    /// the hook `record_panic_origins` installs, taken where it is caught.
    static PANIC_ORIGIN: std::cell::Cell<Option<String>> = const { std::cell::Cell::new(None) };
}

/// Have every panic note where it was raised, before it unwinds. The
/// panic's location is how a redb panic is told from maqet's: it is the
/// file of the `panic!`, `unwrap`, `expect`, index or overflow that failed
/// (all `#[track_caller]`), so redb's own checks on a damaged page name a
/// file in redb's source. The alternative, catching every redb call
/// separately, would have to wrap each table method, iterator step and
/// destructor, and one missed would again make a redb panic maqet's or a
/// maqet panic redb's. What this cannot place (a panic inside the standard
/// library's own code, which carries no caller) counts as maqet's: a bug
/// report, with the store left alone, is the harmless mistake; "move the
/// store aside" is not. The other mistake remains: maqet misusing redb's
/// API in a way redb asserts on would read as damage (redb asserts little
/// on its callers: an empty table name, a page size). The hook is chained to the one installed before
/// (main's, which logs the panic), and installed once, on first use.
fn record_panic_origins() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let file = info.location().map(|l| l.file().to_owned());
            // Not during the thread's teardown, when the slot is gone.
            let _ = PANIC_ORIGIN.try_with(|origin| origin.set(file));
            previous(info);
        }));
    });
}

/// Where the panic just caught on this thread was raised. Taken at once,
/// before anything else can panic (an abort on a poisoned lock) and
/// replace it.
pub(super) fn take_panic_origin() -> Option<String> {
    PANIC_ORIGIN.try_with(|origin| origin.take()).ok().flatten()
}

/// Whether a panic raised in `file` is redb's: a file under redb's `src`
/// in its crate directory, `redb-4.6.0` from crates.io (absolute, in
/// cargo's registry) or `redb` when vendored. maqet's own files are
/// relative (`src/store.rs`); cargo names them so for the crate it builds.
pub(super) fn raised_by_redb(file: &str) -> bool {
    let parts: Vec<&str> = file.split('/').collect();
    parts.windows(2).any(|pair| {
        let dir = pair[0];
        let versioned = dir
            .strip_prefix("redb-")
            .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()));
        (dir == "redb" || versioned) && pair[1] == "src"
    })
}

/// The error for a panic caught in a store operation, `origin` being the
/// file it was raised in.
pub(super) fn panicked(
    path: &Utf8Path,
    panic: &(dyn std::any::Any + Send),
    origin: Option<&str>,
) -> Error {
    match origin {
        Some(file) if raised_by_redb(file) => Error::StoreDamaged {
            path: path.to_owned(),
            detail: crate::error::panic_message(panic)
                .unwrap_or_else(|| "redb could not read it".into()),
        },
        _ => Error::internal(panic),
    }
}

pub(super) fn db_error(path: &Utf8Path, e: impl Into<redb::Error>) -> Error {
    let e: redb::Error = e.into();
    match e {
        // redb reports a file that is not (or no longer) a redb database as
        // an I/O error of kind InvalidData, and a page or length that points
        // past the end of the file as UnexpectedEof ("failed to fill whole
        // buffer", which said "check the path and try again").
        redb::Error::Io(io)
            if matches!(
                io.kind(),
                io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
            ) =>
        {
            Error::StoreDamaged {
                path: path.to_owned(),
                detail: io.to_string(),
            }
        }
        redb::Error::Io(io) => Error::io("cannot use the store", path, io),
        other => Error::StoreDamaged {
            path: path.to_owned(),
            detail: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_raised_in_redb_is_damage_and_one_in_maqet_a_bug() {
        let path = Utf8Path::new("/nowhere/maqet.redb");
        let err = shielded(path, || -> Result<()> {
            // redb asserts that a table's name is not empty, in its own
            // source: a panic raised by redb, as on a damaged page.
            let _ = redb::TableDefinition::<&str, u64>::new(std::hint::black_box(""));
            Ok(())
        })
        .expect_err("redb panics");
        assert!(
            matches!(&err, Error::StoreDamaged { path: p, .. } if p == path),
            "{err:?}"
        );
        let err = shielded(path, || -> Result<()> { panic!("a bug in maqet") })
            .expect_err("maqet panics");
        assert!(
            matches!(&err, Error::Internal { detail } if detail == "a bug in maqet"),
            "{err:?}"
        );
        // Taken when caught: nothing left over for the next panic.
        assert_eq!(take_panic_origin(), None);
    }

    #[test]
    fn only_files_in_redbs_source_are_redbs() {
        for file in [
            "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/redb-4.6.0/src/tree_store/page_store/page_manager.rs",
            "/home/u/.cargo/registry/src/github.com-1ecc6299db9ec823/redb-10.0.0-rc.1/src/db.rs",
            "vendor/redb/src/db.rs",
        ] {
            assert!(raised_by_redb(file), "{file}");
        }
        for file in [
            "src/store.rs",
            "src/store/tx.rs",
            "/rustc/17067e9ac6d7e98f18d4a2ba3b9dc4ff3e6fdf5e/library/core/src/option.rs",
            "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/postcard-1.1.3/src/de/mod.rs",
            "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/redb-derive-0.1.0/src/lib.rs",
            // A checkout of maqet in a directory that happens to be so named.
            "/home/u/redb-2/maqet/src/store.rs",
            "/home/u/redb/maqet/src/store.rs",
        ] {
            assert!(!raised_by_redb(file), "{file}");
        }
    }
}
