//! The VM registry: one redb file (DESIGN.md §3).
//!
//! Tables: `vms` (id → postcard record), `names` (name → id), `meta`
//! (schema version). Processes take turns through an exclusive `flock` on
//! `maqet.lock`, held from opening the database until it is closed; every
//! mutating command is one write transaction.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};

use camino::{Utf8Path, Utf8PathBuf};
use nix::fcntl::Flock;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::config::Name;
use crate::dirs::{Dirs, check_private_dir, ensure_private_dir};
use crate::error::{Error, Result};
use crate::vm::{Vm, VmId, VmRecord};

const VMS: TableDefinition<&str, &[u8]> = TableDefinition::new("vms");
const NAMES: TableDefinition<&str, &str> = TableDefinition::new("names");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

const SCHEMA_KEY: &str = "schema_version";

/// The table layout this maqet reads and writes.
pub const SCHEMA_VERSION: u64 = 1;

/// A step that turns a store of schema `n` into one of schema `n + 1`,
/// inside the upgrade's single write transaction.
pub type Migration = fn(&redb::WriteTransaction) -> Result<(), redb::Error>;

/// Upgrades from older schemas: `MIGRATIONS[i]` takes schema `i + 1` to `i + 2`.
const MIGRATIONS: &[Migration] = &[];

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

    /// redb's own integrity check of every page and checksum. redb needs
    /// the file open for writing for it. `None` when there is no store.
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
            let mut db = builder().open(&path).map_err(|e| db_error(&path, e))?;
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
                step(&tx.txn).map_err(|e| self.damaged(e))?;
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
        let value = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut tx))) {
            Ok(value) => value?,
            Err(panic) => {
                // On a damaged file the abort can fail or panic as well
                // (on the lock the first panic poisoned): the first panic
                // says what went wrong.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tx.txn.abort()));
                return Err(panicked(&self.path, &*panic));
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
                let (_, bytes) = entry.map_err(|e| self.damaged(e))?;
                visit(self.decode(bytes.value())?)?;
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

    fn decode(&self, bytes: &[u8]) -> Result<Vm> {
        VmRecord::decode(bytes).map_err(|e| Error::StoreDamaged {
            path: self.path.clone(),
            detail: format!("a VM record cannot be read ({e})"),
        })
    }

    fn damaged(&self, e: impl Into<redb::Error>) -> Error {
        db_error(&self.path, e.into())
    }
}

/// A write transaction on the store.
pub struct WriteTx<'s> {
    txn: redb::WriteTransaction,
    store: &'s Store,
}

impl WriteTx<'_> {
    /// The VM with exactly this id (see [`Store::get`]).
    pub fn get(&self, id: &VmId) -> Result<Vm> {
        let vms = self
            .txn
            .open_table(VMS)
            .map_err(|e| self.store.damaged(e))?;
        get_in(self.store, &vms, id)
    }

    pub fn find(&self, query: &str) -> Result<Vm> {
        let vms = self
            .txn
            .open_table(VMS)
            .map_err(|e| self.store.damaged(e))?;
        let names = self
            .txn
            .open_table(NAMES)
            .map_err(|e| self.store.damaged(e))?;
        find_in(self.store, &vms, &names, query)
    }

    /// The id a name belongs to, if any.
    pub fn id_of(&self, name: &Name) -> Result<Option<VmId>> {
        let names = self
            .txn
            .open_table(NAMES)
            .map_err(|e| self.store.damaged(e))?;
        let id = names
            .get(name.as_str())
            .map_err(|e| self.store.damaged(e))?
            .and_then(|v| VmId::parse(v.value()));
        Ok(id)
    }

    /// Insert a new VM or replace an existing one (same id), keeping the name
    /// index in step. Fails if the name belongs to another VM.
    pub fn put(&mut self, vm: &Vm) -> Result<()> {
        let bytes = VmRecord::encode(vm).map_err(|e| Error::StoreDamaged {
            path: self.store.path.clone(),
            detail: format!("cannot encode the record of {} ({e})", vm.name),
        })?;
        let owner = self.id_of(&vm.name)?;
        if let Some(owner) = &owner
            && *owner != vm.id
        {
            return Err(Error::name_taken(vm.name.as_str(), owner.as_str()));
        }
        let mut vms = self
            .txn
            .open_table(VMS)
            .map_err(|e| self.store.damaged(e))?;
        // Names win over ids in lookups: a new name that is another VM's id
        // (or a prefix of it) would take the commands meant for that VM.
        let text = vm.name.as_str();
        if owner.is_none()
            && text.len() >= VmId::MIN_PREFIX
            && text.bytes().all(|b| b.is_ascii_hexdigit())
        {
            let prefix = text.to_ascii_lowercase();
            let first = vms
                .range(prefix.as_str()..)
                .map_err(|e| self.store.damaged(e))?
                .next()
                .transpose()
                .map_err(|e| self.store.damaged(e))?
                .map(|(key, _)| key.value().to_owned());
            if let Some(id) = first.filter(|id| id.starts_with(&prefix) && id != vm.id.as_str()) {
                return Err(Error::invalid(
                    format!("the name `{text}` is the id, or the start of the id, of VM {id}"),
                    "choose a name that is not a VM id: names are looked up before ids",
                ));
            }
        }
        let mut names = self
            .txn
            .open_table(NAMES)
            .map_err(|e| self.store.damaged(e))?;
        let old = vms
            .insert(vm.id.as_str(), bytes.as_slice())
            .map_err(|e| self.store.damaged(e))?
            .map(|v| self.store.decode(v.value()))
            .transpose()?;
        if let Some(old) = old
            && old.name != vm.name
        {
            names
                .remove(old.name.as_str())
                .map_err(|e| self.store.damaged(e))?;
        }
        names
            .insert(vm.name.as_str(), vm.id.as_str())
            .map_err(|e| self.store.damaged(e))?;
        Ok(())
    }

    /// Remove a VM and its name.
    pub fn remove(&mut self, vm: &Vm) -> Result<()> {
        let mut vms = self
            .txn
            .open_table(VMS)
            .map_err(|e| self.store.damaged(e))?;
        let mut names = self
            .txn
            .open_table(NAMES)
            .map_err(|e| self.store.damaged(e))?;
        vms.remove(vm.id.as_str())
            .map_err(|e| self.store.damaged(e))?;
        names
            .remove(vm.name.as_str())
            .map_err(|e| self.store.damaged(e))?;
        Ok(())
    }

    fn set_schema(&mut self, version: u64) -> Result<()> {
        // Create every table, so readers never see a half-made store.
        self.txn
            .open_table(VMS)
            .map_err(|e| self.store.damaged(e))?;
        self.txn
            .open_table(NAMES)
            .map_err(|e| self.store.damaged(e))?;
        let mut meta = self
            .txn
            .open_table(META)
            .map_err(|e| self.store.damaged(e))?;
        meta.insert(SCHEMA_KEY, version)
            .map_err(|e| self.store.damaged(e))?;
        Ok(())
    }
}

fn get_in(
    store: &Store,
    vms: &impl ReadableTable<&'static str, &'static [u8]>,
    id: &VmId,
) -> Result<Vm> {
    match vms.get(id.as_str()).map_err(|e| store.damaged(e))? {
        Some(bytes) => store.decode(bytes.value()),
        None => Err(Error::VmNotFound {
            query: id.to_string(),
        }),
    }
}

/// Name first, then full id, then unique id prefix: each one B-tree lookup or
/// a range scan that stops after the matches.
fn find_in(
    store: &Store,
    vms: &impl ReadableTable<&'static str, &'static [u8]>,
    names: &impl ReadableTable<&'static str, &'static str>,
    query: &str,
) -> Result<Vm> {
    let get = |id: &str| -> Result<Option<Vm>> {
        vms.get(id)
            .map_err(|e| store.damaged(e))?
            .map(|v| store.decode(v.value()))
            .transpose()
    };
    if let Some(id) = names.get(query).map_err(|e| store.damaged(e))? {
        let id = id.value().to_owned();
        return get(&id)?.ok_or_else(|| Error::StoreDamaged {
            path: store.path.clone(),
            detail: format!("the name `{query}` points at id {id}, which has no record"),
        });
    }
    let not_found = || Error::VmNotFound {
        query: query.into(),
    };
    let is_hex = query.bytes().all(|b| b.is_ascii_hexdigit());
    if !is_hex || query.len() < VmId::MIN_PREFIX || query.len() > VmId::LEN {
        return Err(not_found());
    }
    let prefix = query.to_ascii_lowercase();
    // Enough to show the user a useful list when the prefix is ambiguous.
    const SHOW: usize = 10;
    let mut matches = Vec::new();
    for entry in vms.range(prefix.as_str()..).map_err(|e| store.damaged(e))? {
        let (key, bytes) = entry.map_err(|e| store.damaged(e))?;
        if !key.value().starts_with(&prefix) || matches.len() == SHOW {
            break;
        }
        matches.push(store.decode(bytes.value())?);
    }
    match matches.len() {
        0 => Err(not_found()),
        1 => Ok(matches.remove(0)),
        _ => Err(Error::Ambiguous {
            query: query.into(),
            candidates: matches
                .iter()
                .map(|vm| format!("{} ({})", vm.name, vm.id.short()))
                .collect(),
        }),
    }
}

/// redb's page cache. Its default (1 GiB) lets a command that reads every
/// record (`ls`) keep the whole file in memory: 100 000 VMs made `ls` peak
/// at 57 MiB. Commands read each page about once, so a small cache costs
/// them nothing measurable (docs/performance.md).
const CACHE_BYTES: usize = 1 << 20;

fn builder() -> redb::Builder {
    let mut builder = redb::Builder::new();
    builder.set_cache_size(CACHE_BYTES);
    builder
}

/// A first, read-only look at a database file.
struct Peek {
    /// None when the file needs a repair, which only a writable open does.
    db: Option<redb::ReadOnlyDatabase>,
    version: Option<u64>,
}

fn peek(path: &Utf8Path) -> Result<Peek> {
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
fn refuse_empty(path: &Utf8Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io("cannot inspect", path, e))?;
    if meta.len() == 0 {
        return Err(Error::StoreDamaged {
            path: path.to_owned(),
            detail: "the file is empty".into(),
        });
    }
    Ok(())
}

fn version_in(txn: &redb::ReadTransaction) -> Result<Option<u64>, redb::Error> {
    match txn.open_table(META) {
        Ok(table) => Ok(table.get(SCHEMA_KEY)?.map(|v| v.value())),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn too_new(path: &Utf8Path, found: u64) -> Error {
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
fn create_beside(path: &Utf8Path) -> Result<()> {
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
fn prepare_db_file(path: &Utf8Path) -> Result<()> {
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

fn copy_private(from: &Utf8Path, to: &Utf8Path) -> Result<()> {
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
fn shielded<T>(path: &Utf8Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|panic| Err(panicked(path, &*panic)))
}

fn panicked(path: &Utf8Path, panic: &(dyn std::any::Any + Send)) -> Error {
    Error::StoreDamaged {
        path: path.to_owned(),
        detail: crate::error::panic_message(panic)
            .unwrap_or_else(|| "redb could not read it".into()),
    }
}

fn db_error(path: &Utf8Path, e: impl Into<redb::Error>) -> Error {
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

#[cfg(test)]
mod tests {
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

    fn add_marker(txn: &redb::WriteTransaction) -> Result<(), redb::Error> {
        txn.open_table(EXTRA)?.insert("marker", 7)?;
        Ok(())
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
        drop(Store::open(&dirs).expect("create at schema 1"));
        let store = Store::open(&dirs).expect("reopen");
        // Pretend this maqet knows schema 2, reached by one migration.
        store.check_schema(&[add_marker]).expect("upgrade");
        assert_eq!(store.schema_version().expect("read"), Some(2));
        assert_eq!(marker(&store), Some(7));
        let backup = Utf8PathBuf::from(format!("{}.schema1.bak", store.path()));
        let mode = std::fs::metadata(&backup).expect("backup kept").mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Running the upgrade again is a no-op: the schema is already 2.
        store.check_schema(&[add_marker]).expect("second check");
        assert_eq!(store.schema_version().expect("read"), Some(2));
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
            assert!(
                matches!(&err, Error::StoreDamaged { detail, .. } if detail == "a bug after the put"),
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
