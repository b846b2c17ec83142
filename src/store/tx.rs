//! Write transactions: every change to the registry, and the lookups a
//! transaction shares with read-only commands.

use redb::ReadableTable;

use super::{LIST, META, NAMES, SCHEMA_KEY, Store, VMS};
use crate::config::Name;
use crate::error::{Error, Result};
use crate::rows::Entry;
use crate::vm::{Vm, VmId, VmRecord};

/// A write transaction on the store.
pub struct WriteTx<'s> {
    pub(super) txn: redb::WriteTransaction,
    pub(super) store: &'s Store,
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
        let mut list = self
            .txn
            .open_table(LIST)
            .map_err(|e| self.store.damaged(e))?;
        if let Some(old) = old
            && old.name != vm.name
        {
            names
                .remove(old.name.as_str())
                .map_err(|e| self.store.damaged(e))?;
            list.remove(old.name.as_str())
                .map_err(|e| self.store.damaged(e))?;
        }
        names
            .insert(vm.name.as_str(), vm.id.as_str())
            .map_err(|e| self.store.damaged(e))?;
        list.insert(vm.name.as_str(), Entry::of(vm).as_slice())
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
        self.txn
            .open_table(LIST)
            .map_err(|e| self.store.damaged(e))?
            .remove(vm.name.as_str())
            .map_err(|e| self.store.damaged(e))?;
        Ok(())
    }

    pub(super) fn set_schema(&mut self, version: u64) -> Result<()> {
        // Create every table, so readers never see a half-made store.
        self.txn
            .open_table(VMS)
            .map_err(|e| self.store.damaged(e))?;
        self.txn
            .open_table(NAMES)
            .map_err(|e| self.store.damaged(e))?;
        self.txn
            .open_table(LIST)
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

pub(super) fn get_in(
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
pub(super) fn find_in(
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

/// Schema 1 → 2: a `list` entry for every stored VM.
pub(super) fn fill_list(tx: &mut WriteTx<'_>) -> Result<()> {
    let vms = tx.txn.open_table(VMS).map_err(|e| tx.store.damaged(e))?;
    let mut list = tx.txn.open_table(LIST).map_err(|e| tx.store.damaged(e))?;
    for entry in vms.iter().map_err(|e| tx.store.damaged(e))? {
        let (_, bytes) = entry.map_err(|e| tx.store.damaged(e))?;
        let vm = tx.store.decode(bytes.value())?;
        list.insert(vm.name.as_str(), Entry::of(&vm).as_slice())
            .map_err(|e| tx.store.damaged(e))?;
    }
    Ok(())
}
