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
    let mut dst = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(to)
        .map_err(|e| Error::io("cannot create", to, e))?;
    io::copy(&mut src, &mut dst).map_err(|e| Error::io("cannot copy the store to", to, e))?;
    dst.sync_all().map_err(|e| Error::io("cannot flush", to, e))
}

/// Run `f`, turning a panic into a "damaged" error. redb panics on some
/// kinds of damage (a malformed allocator state, for one) instead of
/// returning an error, and a damaged file must be reported, not crash maqet.
/// (main's panic hook keeps redb's panic message off the terminal.)
pub(super) fn shielded<T>(path: &Utf8Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|panic| Err(panicked(path, &*panic)))
}

pub(super) fn panicked(path: &Utf8Path, panic: &(dyn std::any::Any + Send)) -> Error {
    Error::StoreDamaged {
        path: path.to_owned(),
        detail: crate::error::panic_message(panic)
            .unwrap_or_else(|| "redb could not read it".into()),
    }
}

pub(super) fn db_error(path: &Utf8Path, e: impl Into<redb::Error>) -> Error {
    let e: redb::Error = e.into();
    match e {
        // redb reports a file that is not (or no longer) a redb database as
        // an I/O error of kind InvalidData.
        redb::Error::Io(io) if io.kind() == io::ErrorKind::InvalidData => Error::StoreDamaged {
            path: path.to_owned(),
            detail: io.to_string(),
        },
        redb::Error::Io(io) => Error::io("cannot use the store", path, io),
        other => Error::StoreDamaged {
            path: path.to_owned(),
            detail: other.to_string(),
        },
    }
}
