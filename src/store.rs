//! The VM registry: one redb file (DESIGN.md §3).
//!
//! Tables: `vms` (id → postcard record), `names` (name → id), `list`
//! (name → the packed row `ls` shows, [`crate::rows::Entry`]), `meta`
//! (schema version). Processes take turns through an exclusive `flock` on
//! `maqet.lock`, held from opening the database until it is closed; every
//! mutating command is one write transaction.

use std::fs::File;
use std::io;

use camino::{Utf8Path, Utf8PathBuf};
use nix::fcntl::Flock;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::dirs::{Dirs, check_private_dir, ensure_private_dir};
use crate::error::{Error, Result};
use crate::vm::{Vm, VmId, VmRecord};

mod file;
mod tx;

use file::{
    builder, copy_private, create_beside, db_error, panicked, peek, prepare_db_file, refuse_empty,
    shielded, take_panic_origin, too_new, version_in,
};
pub use tx::WriteTx;
use tx::{find_in, get_in};

const VMS: TableDefinition<&str, &[u8]> = TableDefinition::new("vms");
const NAMES: TableDefinition<&str, &str> = TableDefinition::new("names");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// What `ls` needs of every VM, kept beside the record by every write, so a
/// listing reads 30 bytes a VM instead of decoding every record.
const LIST: TableDefinition<&str, &[u8]> = TableDefinition::new("list");

const SCHEMA_KEY: &str = "schema_version";

/// The table layout this maqet reads and writes.
pub const SCHEMA_VERSION: u64 = 2;

/// A step that turns a store of schema `n` into one of schema `n + 1`,
/// inside the upgrade's single write transaction.
pub type Migration = fn(&mut WriteTx<'_>) -> Result<()>;

/// Upgrades from older schemas: `MIGRATIONS[i]` takes schema `i + 1` to `i + 2`.
/// 1 → 2 adds the `list` table.
const MIGRATIONS: &[Migration] = &[tx::fill_list];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// The database, opened read-only when nothing needs writing: a read-only
/// open never modifies the file, so a command that only reads (or a store
/// that must be refused) leaves it byte for byte as it was.
enum Db {
    ReadOnly(redb::ReadOnlyDatabase),
    ReadWrite(Database),
}

impl Db {
    fn begin_read(&self) -> std::result::Result<redb::ReadTransaction, redb::TransactionError> {
        match self {
            Db::ReadOnly(db) => db.begin_read(),
            Db::ReadWrite(db) => db.begin_read(),
        }
    }
}

/// An open store. Holds the lock until dropped.
pub struct Store {
    /// Taken only by `drop`, which closes it before the lock is let go.
    db: Option<Db>,
    path: Utf8PathBuf,
    _lock: Flock<File>,
}

impl Drop for Store {
    fn drop(&mut self) {
        let Some(db) = self.db.take() else { return };
        // Closing writes redb's allocator state, a commit of its own, and on
        // a damaged file that panics like any other redb call (or on the
        // lock an earlier, caught panic poisoned). From a destructor the
        // panic escaped every guard: exit 101, even after the command had
        // committed or had already failed cleanly. What was committed is on
        // disk; the next open repairs the file or reports it damaged.
        let closed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match db {
            Db::ReadOnly(db) => db.close(),
            Db::ReadWrite(db) => db.close(),
        }));
        let why = match closed {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(panic) => crate::error::panic_message(&*panic).unwrap_or_default(),
        };
        crate::log::warn(format_args!("cannot close the store {}: {why}", self.path));
    }
}

impl Store {
    fn db(&self) -> &Db {
        self.db
            .as_ref()
            .expect("the database stays open until the store is dropped")
    }

    /// Open the store for a command that changes it, creating the data
    /// directory and database privately if they do not exist.
    pub fn open(dirs: &Dirs) -> Result<Store> {
        shielded(&dirs.database(), || Store::open_inner(dirs))
    }

    fn open_inner(dirs: &Dirs) -> Result<Store> {
        ensure_private_dir(&dirs.data)?;
        let lock = crate::lock::exclusive(&dirs.lock_file(), "the maqet store")?;
        let path = dirs.database();
        if std::fs::symlink_metadata(&path).is_err() {
            create_beside(&path)?;
        }
        prepare_db_file(&path)?;
        // Refuse a newer (or damaged) store before opening it for writing,
        // which would already touch the file.
        if let Some(v) = peek(&path)?.version.filter(|v| *v > SCHEMA_VERSION) {
            return Err(too_new(&path, v));
        }
        Store::writable(path, lock)
    }

    fn writable(path: Utf8PathBuf, lock: Flock<File>) -> Result<Store> {
        // `open`, never `create`: redb's `create` initialises an empty file,
        // and an empty file here is damage (see `refuse_empty`), not a new
        // store. `open` refuses it under redb's own lock on the file.
        let db = builder().open(&path).map_err(|e| db_error(&path, e))?;
        let store = Store {
            db: Some(Db::ReadWrite(db)),
            path,
            _lock: lock,
        };
        store.check_schema(MIGRATIONS)?;
        Ok(store)
    }

    /// Open the store if it exists, for reading or for changing it. A store
    /// that does not exist yet is empty, and nothing is created for it.
    pub fn open_existing(dirs: &Dirs, access: Access) -> Result<Option<Store>> {
        shielded(&dirs.database(), || {
            Store::open_existing_inner(dirs, access)
        })
    }

    fn open_existing_inner(dirs: &Dirs, access: Access) -> Result<Option<Store>> {
        // The directory first: one that is not ours gets its reason (whose
        // it is), not a "permission denied" on the file inside it.
        match std::fs::symlink_metadata(&dirs.data) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            _ => check_private_dir(&dirs.data)?,
        }
        let path = dirs.database();
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("cannot inspect", path, e)),
            Ok(_) => {}
        }
        let lock = crate::lock::exclusive(&dirs.lock_file(), "the maqet store")?;
        let peek = peek(&path)?;
        match (peek.db, peek.version) {
            (Some(_), Some(v)) if v > SCHEMA_VERSION => Err(too_new(&path, v)),
            // Current, or a store whose first transaction never committed
            // (no version, no tables: it reads as empty).
            (Some(db), Some(SCHEMA_VERSION) | None) if access == Access::Read => Ok(Some(Store {
                db: Some(Db::ReadOnly(db)),
                path,
                _lock: lock,
            })),
            // To be written, older (to migrate), or left unclean by a killed
            // writer (to repair): all need a writable open.
            (db, _) => {
                drop(db);
                Store::writable(path, lock).map(Some)
            }
        }
    }

    /// redb's own integrity check of every page and checksum, made on a
    /// private copy of the file. `None` when there is no store. redb checks
    /// only a file it has open for writing, and that changes the file: the
    /// open marks it in use, the check repairs what it can, the close
    /// records the allocator state. `doctor` reports on the store; on a
    /// damaged one those writes used to land on the very file the user is
    /// told to restore or keep (a repair can lose what a recovery tool
    /// would still find), and `doctor` changed it while refusing it.
    pub fn check_integrity(dirs: &Dirs) -> Result<Option<bool>> {
        let path = dirs.database();
        shielded(&path, || {
            match std::fs::symlink_metadata(&path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(Error::io("cannot inspect", &path, e)),
                Ok(_) => {}
            }
            let _lock = crate::lock::exclusive(&dirs.lock_file(), "the maqet store")?;
            refuse_empty(&path)?;
            let copy = Scratch::new(Utf8PathBuf::from(format!("{path}.check")))?;
            copy_private(&path, &copy.0)?;
            // Dropped (closed) before the copy is removed.
            let mut db = builder().open(&copy.0).map_err(|e| db_error(&path, e))?;
            db.check_integrity()
                .map(Some)
                .map_err(|e| db_error(&path, e))
        })
    }

    pub fn path(&self) -> &Utf8Path {
        &self.path
    }

    fn schema_version(&self) -> Result<Option<u64>> {
        let txn = self.db().begin_read().map_err(|e| self.damaged(e))?;
        version_in(&txn).map_err(|e| self.damaged(e))
    }

    /// Stamp a new store, refuse a newer one untouched, and upgrade an older
    /// one in one transaction after keeping a copy of the file beside it.
    pub fn check_schema(&self, migrations: &[Migration]) -> Result<()> {
        let target = migrations.len() as u64 + 1;
        match self.schema_version()? {
            Some(v) if v == target => Ok(()),
            Some(v) if v > target => Err(too_new(&self.path, v)),
            Some(v) => self.upgrade(v, target, migrations),
            None => self.write(|tx| tx.set_schema(target)),
        }
    }

    fn upgrade(&self, from: u64, to: u64, migrations: &[Migration]) -> Result<()> {
        let backup = Utf8PathBuf::from(format!("{}.schema{from}.bak", self.path));
        copy_private(&self.path, &backup)?;
        crate::log::info(format_args!(
            "upgrading {} from schema {from} to {to}; the old store is kept at {backup}",
            self.path
        ));
        self.write(|tx| {
            for step in &migrations[(from - 1) as usize..(to - 1) as usize] {
                step(tx)?;
            }
            tx.set_schema(to)
        })
    }

    /// Run `f` in one write transaction, committed only if `f` succeeds.
    pub fn write<T>(&self, f: impl FnOnce(&mut WriteTx<'_>) -> Result<T>) -> Result<T> {
        shielded(&self.path, || self.write_inner(f))
    }

    fn write_inner<T>(&self, f: impl FnOnce(&mut WriteTx<'_>) -> Result<T>) -> Result<T> {
        let Db::ReadWrite(db) = self.db() else {
            return Err(Error::StoreDamaged {
                path: self.path.clone(),
                detail: "internal error: a write on a store opened for reading".into(),
            });
        };
        let txn = db.begin_write().map_err(|e| self.damaged(e))?;
        let mut tx = WriteTx { txn, store: self };
        // Caught here, not only by `shielded`, so that the transaction is
        // aborted: redb skips the abort of a transaction dropped while
        // unwinding, and leaves it to a repair of the file at the next open.
        let value = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<T> {
            let value = f(&mut tx)?;
            panic_if_asked("write");
            Ok(value)
        })) {
            Ok(value) => value?,
            Err(panic) => {
                let origin = take_panic_origin();
                // On a damaged file the abort can fail or panic as well
                // (on the lock the first panic poisoned): the first panic
                // says what went wrong.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tx.txn.abort()));
                return Err(panicked(&self.path, &*panic, origin.as_deref()));
            }
        };
        tx.txn.commit().map_err(|e| self.damaged(e))?;
        Ok(value)
    }

    /// Find one VM by name, full id or unique id prefix.
    pub fn find(&self, query: &str) -> Result<Vm> {
        shielded(&self.path, || self.find_inner(query))
    }

    /// The VM with exactly this id. For maqet's own lookups: [`find`]
    /// tries names first, and a name may look like another VM's id.
    ///
    /// [`find`]: Store::find
    pub fn get(&self, id: &VmId) -> Result<Vm> {
        shielded(&self.path, || {
            let txn = self.db().begin_read().map_err(|e| self.damaged(e))?;
            match self.open_read(&txn, VMS)? {
                Some(vms) => get_in(self, &vms, id),
                None => Err(Error::VmNotFound {
                    query: id.to_string(),
                }),
            }
        })
    }

    fn find_inner(&self, query: &str) -> Result<Vm> {
        let txn = self.db().begin_read().map_err(|e| self.damaged(e))?;
        let (Some(vms), Some(names)) = (self.open_read(&txn, VMS)?, self.open_read(&txn, NAMES)?)
        else {
            return Err(Error::VmNotFound {
                query: query.into(),
            });
        };
        find_in(self, &vms, &names, query)
    }

    /// Hand every VM to `visit`, one at a time in id order, keeping none:
    /// for commands that look at every record of a large store.
    pub fn each(&self, mut visit: impl FnMut(Vm) -> Result<()>) -> Result<()> {
        shielded(&self.path, || {
            let txn = self.db().begin_read().map_err(|e| self.damaged(e))?;
            let Some(vms) = self.open_read(&txn, VMS)? else {
                return Ok(());
            };
            for entry in vms.iter().map_err(|e| self.damaged(e))? {
                let (key, bytes) = entry.map_err(|e| self.damaged(e))?;
                visit(self.decode(key.value(), bytes.value())?)?;
            }
            Ok(())
        })
    }

    /// Hand the `list` entry of every VM to `visit`, in name order, without
    /// reading a record; `count` first learns how many there are.
    pub fn each_listed(
        &self,
        count: impl FnOnce(u64),
        mut visit: impl FnMut(&str, &[u8]) -> Result<()>,
    ) -> Result<()> {
        shielded(&self.path, || {
            let txn = self.db().begin_read().map_err(|e| self.damaged(e))?;
            let Some(list) = self.open_read(&txn, LIST)? else {
                return Ok(());
            };
            // Each table keeps its own count: the three must agree, or a
            // listing would show other VMs than every other command finds.
            let len = |t: &dyn redb::ReadableTableMetadata| t.len().map_err(|e| self.damaged(e));
            let listed = len(&list)?;
            let counts = [
                self.open_read(&txn, NAMES)?.map(|t| len(&t)).transpose()?,
                self.open_read(&txn, VMS)?.map(|t| len(&t)).transpose()?,
            ];
            if counts.iter().any(|n| *n != Some(listed)) {
                return Err(Error::StoreDamaged {
                    path: self.path.clone(),
                    detail: format!(
                        "its tables disagree on how many VMs there are ({listed} listed, {} named, {} recorded)",
                        counts[0].unwrap_or(0),
                        counts[1].unwrap_or(0)
                    ),
                });
            }
            count(listed);
            let mut visited = 0;
            for entry in list.iter().map_err(|e| self.damaged(e))? {
                let (name, bytes) = entry.map_err(|e| self.damaged(e))?;
                visit(name.value(), bytes.value())?;
                visited += 1;
            }
            if visited != listed {
                return Err(Error::StoreDamaged {
                    path: self.path.clone(),
                    detail: format!("its list holds {visited} VMs but counts {listed}"),
                });
            }
            Ok(())
        })
    }

    /// Every VM name, sorted, without reading a record (for completion).
    pub fn names(&self) -> Result<Vec<String>> {
        shielded(&self.path, || self.names_inner())
    }

    fn names_inner(&self) -> Result<Vec<String>> {
        let txn = self.db().begin_read().map_err(|e| self.damaged(e))?;
        let Some(names) = self.open_read(&txn, NAMES)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for entry in names.iter().map_err(|e| self.damaged(e))? {
            let (name, _) = entry.map_err(|e| self.damaged(e))?;
            out.push(name.value().to_owned());
        }
        Ok(out)
    }

    fn open_read<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        txn: &redb::ReadTransaction,
        def: TableDefinition<K, V>,
    ) -> Result<Option<redb::ReadOnlyTable<K, V>>> {
        match txn.open_table(def) {
            Ok(t) => Ok(Some(t)),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(self.damaged(e)),
        }
    }

    /// The VM stored under `key`. A record of another id there is damage
    /// (a flipped bit in the record or its key): taken as it is, `stop`
    /// looked for the VM by the wrong id ("not found") and `apply` found
    /// its own name taken by itself.
    fn decode(&self, key: &str, bytes: &[u8]) -> Result<Vm> {
        let vm = VmRecord::decode(bytes).map_err(|e| Error::StoreDamaged {
            path: self.path.clone(),
            detail: format!("a VM record cannot be read ({e})"),
        })?;
        if vm.id.as_str() != key {
            return Err(Error::StoreDamaged {
                path: self.path.clone(),
                detail: format!("the record stored under id {key} is of id {}", vm.id),
            });
        }
        Ok(vm)
    }

    fn damaged(&self, e: impl Into<redb::Error>) -> Error {
        db_error(&self.path, e.into())
    }
}

/// A file of maqet's own beside the store, removed when dropped (also when
/// redb panics while it is in use); one left by a maqet killed before is
/// removed first.
struct Scratch(Utf8PathBuf);

impl Scratch {
    fn new(path: Utf8PathBuf) -> Result<Scratch> {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(Error::io("cannot remove", path, e))
            }
            _ => Ok(Scratch(path)),
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A bug on demand, for the tests of what a panic in maqet's own code does
/// (tests/cli/faults.rs): with `MAQET_TEST_PANIC_IN=write`, every write
/// transaction panics once the command's closure has made its changes,
/// before the commit. Test-only: read only in debug builds (what `cargo
/// test` runs); a release build never looks at the variable.
/// `command` panics as a command starts, outside every guard of the store:
/// only the catch around the whole command (`main`) stands between it and
/// Rust's panic message with exit 101.
pub(crate) fn panic_if_asked(point: &str) {
    if cfg!(debug_assertions)
        && std::env::var_os("MAQET_TEST_PANIC_IN").is_some_and(|asked| asked == point)
    {
        let when = if point == "write" {
            "before the commit"
        } else {
            "as the command starts"
        };
        panic!("MAQET_TEST_PANIC_IN={point}: a deliberate panic {when}");
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn dirs(root: &Utf8Path) -> Dirs {
        Dirs {
            data: root.join("data"),
            runtime: root.join("run"),
        }
    }

    fn tempdir() -> (tempfile::TempDir, Utf8PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = Utf8PathBuf::from_path_buf(dir.path().to_owned()).expect("utf-8 tempdir");
        (dir, path)
    }

    const EXTRA: TableDefinition<&str, u64> = TableDefinition::new("migrated");

    fn add_marker(tx: &mut WriteTx<'_>) -> Result<()> {
        let insert = || -> Result<(), redb::Error> {
            tx.txn.open_table(EXTRA)?.insert("marker", 7)?;
            Ok(())
        };
        insert().map_err(|e| tx.store.damaged(e))
    }

    fn marker(store: &Store) -> Option<u64> {
        let txn = store.db().begin_read().ok()?;
        let table = txn.open_table(EXTRA).ok()?;
        table.get("marker").ok()?.map(|v| v.value())
    }

    #[test]
    fn a_new_store_is_stamped_with_the_current_schema() {
        let (_guard, root) = tempdir();
        let store = Store::open(&dirs(&root)).expect("open");
        assert_eq!(store.schema_version().expect("read"), Some(SCHEMA_VERSION));
    }

    #[test]
    fn an_older_store_is_migrated_once_after_a_backup() {
        let (_guard, root) = tempdir();
        let dirs = dirs(&root);
        drop(Store::open(&dirs).expect("create at the current schema"));
        let store = Store::open(&dirs).expect("reopen");
        // Pretend this maqet knows one schema more, reached by one migration.
        let mut steps = MIGRATIONS.to_vec();
        steps.push(add_marker);
        let next = SCHEMA_VERSION + 1;
        store.check_schema(&steps).expect("upgrade");
        assert_eq!(store.schema_version().expect("read"), Some(next));
        assert_eq!(marker(&store), Some(7));
        let backup = Utf8PathBuf::from(format!("{}.schema{SCHEMA_VERSION}.bak", store.path()));
        let mode = std::fs::metadata(&backup).expect("backup kept").mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Running the upgrade again is a no-op: the schema is already there.
        store.check_schema(&steps).expect("second check");
        assert_eq!(store.schema_version().expect("read"), Some(next));
    }

    fn vm(name: &str) -> Vm {
        let name = name.parse().expect("a valid name");
        Vm::new(name, crate::config::VmConfig::default(), Vec::new(), false).expect("a VM")
    }

    /// Schema 1 had no `list` table: opening such a store fills it from the
    /// records, once, so `ls` lists every VM (renamed ones by their new
    /// name), and the old file is kept.
    /// A store as schema 1 wrote it (no `list`, version 1), of VMs `c`,
    /// `b-running` (recorded running, no runtime) and `a`.
    fn schema_1_store(dirs: &Dirs) {
        let mut running = vm("b-running");
        running.status = crate::vm::Status::Running;
        let store = Store::open(dirs).expect("create");
        store
            .write(|tx| {
                tx.put(&vm("c"))?;
                tx.put(&running)?;
                tx.put(&vm("a"))
            })
            .expect("fill");
        store
            .write(|tx| {
                let downgrade = || -> Result<(), redb::Error> {
                    tx.txn.delete_table(LIST)?;
                    tx.txn.open_table(META)?.insert(SCHEMA_KEY, 1)?;
                    Ok(())
                };
                downgrade().map_err(|e| tx.store.damaged(e))
            })
            .expect("make it schema 1");
    }

    /// The upgrade's backup replaces whatever is at its name, never writing
    /// through it: a hard link to the store there was truncated with the
    /// store (every VM lost), a symlink was written through.
    #[test]
    fn the_upgrade_backup_never_writes_through_what_is_at_its_name() {
        let (_guard, root) = tempdir();
        let dirs = dirs(&root);
        schema_1_store(&dirs);
        let db = dirs.database();
        let backup = Utf8PathBuf::from(format!("{db}.schema1.bak"));
        std::fs::hard_link(&db, &backup).expect("hard link");
        let store = Store::open_existing(&dirs, Access::Read)
            .expect("open migrates")
            .expect("a store");
        let (rows, _) = crate::rows::Rows::read(&store).expect("rows");
        assert_eq!(rows.len(), 3, "every VM kept");
        drop(store);
        let meta = std::fs::symlink_metadata(&backup).expect("backup");
        assert_eq!(meta.nlink(), 1, "the backup is a file of its own");
        assert_eq!(meta.mode() & 0o777, 0o600);

        let (_guard2, root) = tempdir();
        let dirs = super::tests::dirs(&root);
        schema_1_store(&dirs);
        let elsewhere = root.join("elsewhere");
        std::fs::write(&elsewhere, "not the store").expect("write");
        std::os::unix::fs::symlink(&elsewhere, format!("{}.schema1.bak", dirs.database()))
            .expect("symlink");
        drop(Store::open_existing(&dirs, Access::Read).expect("open migrates"));
        assert_eq!(
            std::fs::read_to_string(&elsewhere).expect("read"),
            "not the store"
        );
        let backup = Utf8PathBuf::from(format!("{}.schema1.bak", dirs.database()));
        assert!(
            std::fs::symlink_metadata(&backup)
                .expect("backup")
                .is_file()
        );
    }

    #[test]
    fn a_schema_1_store_gets_its_list_filled() {
        let (_guard, root) = tempdir();
        let dirs = dirs(&root);
        schema_1_store(&dirs);
        let store = Store::open_existing(&dirs, Access::Read)
            .expect("open migrates")
            .expect("a store");
        assert_eq!(store.schema_version().expect("read"), Some(SCHEMA_VERSION));
        assert!(Utf8PathBuf::from(format!("{}.schema1.bak", store.path())).exists());
        let (rows, live) = crate::rows::Rows::read(&store).expect("rows");
        let listed: Vec<(&str, crate::vm::Status)> =
            rows.iter().map(|r| (r.name, r.status)).collect();
        use crate::vm::Status::{Created, Running};
        assert_eq!(
            listed,
            [("a", Created), ("b-running", Running), ("c", Created)]
        );
        // Recorded running without a runtime: nothing to reconcile.
        assert!(live.is_empty());
    }

    /// Every write keeps the `list` entry in step with the record: a rename
    /// moves it, a removal drops it, a runtime marks it for reconciling.
    #[test]
    fn the_list_follows_every_write() {
        let (_guard, root) = tempdir();
        let dirs = dirs(&root);
        let store = Store::open(&dirs).expect("create");
        let mut x = vm("x");
        let y = vm("y");
        store
            .write(|tx| {
                tx.put(&x)?;
                tx.put(&y)
            })
            .expect("add");
        x.name = "renamed".parse().expect("name");
        x.auto_remove = true;
        store.write(|tx| tx.put(&x)).expect("rename");
        store.write(|tx| tx.remove(&y)).expect("remove");
        let (rows, live) = crate::rows::Rows::read(&store).expect("rows");
        let names: Vec<&str> = rows.iter().map(|r| r.name).collect();
        assert_eq!(names, ["renamed"]);
        assert_eq!(
            rows.iter().next().map(|r| r.id().to_string()),
            Some(x.id.to_string())
        );
        assert_eq!(live, [x]);
    }

    #[test]
    fn a_write_that_panics_commits_nothing() {
        let (_guard, root) = tempdir();
        let dirs = dirs(&root);
        let vm = |name: &str| {
            let name = name.parse().expect("a valid name");
            Vm::new(name, crate::config::VmConfig::default(), Vec::new(), false).expect("a VM")
        };
        let lost = vm("lost");
        {
            let store = Store::open(&dirs).expect("create");
            let err = store
                .write(|tx| -> Result<()> {
                    tx.put(&lost)?;
                    panic!("a bug after the put");
                })
                .expect_err("the panic is an error");
            // maqet's own panic: a bug to report, never "damaged".
            assert!(
                matches!(&err, Error::Internal { detail } if detail == "a bug after the put"),
                "{err:?}"
            );
            // The transaction is gone: the same store takes the next write.
            store.write(|tx| tx.put(&vm("kept"))).expect("write after");
        }
        // Aborted, not abandoned: redb skips the abort of a transaction
        // dropped while unwinding and leaves the file to be repaired.
        assert!(
            peek(&dirs.database()).expect("peek").db.is_some(),
            "closed clean"
        );
        let store = Store::open_existing(&dirs, Access::Read)
            .expect("reopen")
            .expect("a store");
        assert!(matches!(store.find("lost"), Err(Error::VmNotFound { .. })));
        assert!(matches!(
            store.find(lost.id.as_str()),
            Err(Error::VmNotFound { .. })
        ));
        assert_eq!(store.find("kept").expect("committed").name.as_str(), "kept");
    }

    /// Damage that decodes: a flipped bit in a key, or in an id or name
    /// inside a record, leaves records that read but disagree. Taken as
    /// they were, `apply` found its own name taken and `stop` missed its VM.
    #[test]
    fn a_record_under_another_id_or_a_name_of_another_vm_is_damage() {
        let (_guard, root) = tempdir();
        let dirs = dirs(&root);
        let vm = |name: &str| {
            let name = name.parse().expect("a valid name");
            Vm::new(name, crate::config::VmConfig::default(), Vec::new(), false).expect("a VM")
        };
        let (a, b) = (vm("a"), vm("b"));
        let store = Store::open(&dirs).expect("create");
        store
            .write(|tx| {
                tx.put(&a)?;
                tx.put(&b)
            })
            .expect("write");
        let raw = |edit: &dyn Fn(&redb::WriteTransaction) -> Result<(), redb::Error>| {
            store
                .write(|tx| edit(&tx.txn).map_err(|e| store.damaged(e)))
                .expect("edit");
        };
        // The name `a` pointing at b's record.
        raw(&|txn| {
            txn.open_table(NAMES)?.insert("a", b.id.as_str())?;
            Ok(())
        });
        let err = store.find("a").expect_err("damage");
        assert!(
            matches!(&err, Error::StoreDamaged { detail, .. }
                if *detail == format!("the name `a` points at id {}, whose VM is named `b`", b.id)),
            "{err:?}"
        );
        // b's record stored under a's id as well.
        let b_bytes = VmRecord::encode(&b).expect("encode");
        raw(&|txn| {
            txn.open_table(NAMES)?.insert("a", a.id.as_str())?;
            txn.open_table(VMS)?
                .insert(a.id.as_str(), b_bytes.as_slice())?;
            Ok(())
        });
        let under_another = format!("the record stored under id {} is of id {}", a.id, b.id);
        for err in [
            store.find("a").expect_err("by name"),
            store.get(&a.id).expect_err("by id"),
            store.find(&a.id.as_str()[..8]).expect_err("by prefix"),
            store.each(|_| Ok(())).expect_err("every VM"),
        ] {
            assert!(
                matches!(&err, Error::StoreDamaged { detail, .. } if *detail == under_another),
                "{err:?}"
            );
        }
    }

    #[test]
    fn a_newer_store_is_refused_and_left_untouched() {
        let (_guard, root) = tempdir();
        let dirs = dirs(&root);
        {
            let store = Store::open(&dirs).expect("create");
            store
                .write(|tx| tx.set_schema(SCHEMA_VERSION + 1))
                .expect("stamp newer");
        }
        let before = std::fs::read(dirs.database()).expect("read db");
        let err = Store::open(&dirs).err().expect("must refuse");
        assert!(matches!(err, Error::StoreTooNew { found, .. } if found == SCHEMA_VERSION + 1));
        let err = Store::open_existing(&dirs, Access::Read)
            .err()
            .expect("must refuse reads too");
        assert!(matches!(err, Error::StoreTooNew { .. }));
        assert_eq!(std::fs::read(dirs.database()).expect("read db"), before);
    }
}
