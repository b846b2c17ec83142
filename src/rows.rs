//! What `ls` shows of every VM, packed: a fixed 40 bytes per VM plus its
//! name, all names in one buffer. 100 000 VMs list in about 5 MiB of rows
//! instead of a heap string or two per VM (docs/performance.md).

use crate::config::Bytes;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::vm::{Status, Vm, VmId};

/// Every row `ls` shows, in the order last sorted.
#[derive(Debug, Default)]
pub struct Rows {
    /// Every name, back to back.
    names: String,
    rows: Vec<Packed>,
}

#[derive(Debug, Clone, Copy)]
struct Packed {
    memory: u64,
    id: [u8; 16],
    name_start: u32,
    cpus: u32,
    name_len: u8,
    status: Status,
}

/// One row, borrowed from [`Rows`].
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    pub name: &'a str,
    id: [u8; VmId::LEN],
    pub status: Status,
    pub memory: Bytes,
    pub cpus: u32,
}

impl Row<'_> {
    pub fn id(&self) -> &str {
        // Only ever lowercase hex digits.
        std::str::from_utf8(&self.id).unwrap_or_default()
    }

    pub fn short_id(&self) -> &str {
        &self.id()[..VmId::SHORT]
    }
}

/// Why a record cannot become a row: its id is not 32 hex digits, or its
/// name is longer than any valid one. Only a damaged store has such records.
#[derive(Debug)]
pub struct Malformed;

impl Rows {
    /// What `ls` needs: a row per VM, plus the whole record of the VMs that
    /// reconciling may change (recorded running, or to be removed once
    /// stopped). Rows are in no particular order.
    pub fn read(store: &Store) -> Result<(Rows, Vec<Vm>)> {
        let mut rows = Rows::default();
        let mut live = Vec::new();
        store.each(|vm| {
            rows.push(&vm).map_err(|_| Error::StoreDamaged {
                path: store.path().to_owned(),
                detail: format!("the record of VM `{}` has a malformed id or name", vm.id),
            })?;
            if vm.runtime.is_some() || vm.auto_remove {
                live.push(vm);
            }
            Ok(())
        })?;
        Ok((rows, live))
    }

    pub fn push(&mut self, vm: &Vm) -> Result<(), Malformed> {
        let id = pack_id(vm.id.as_str()).ok_or(Malformed)?;
        let name = vm.name.as_str();
        let name_len = u8::try_from(name.len()).map_err(|_| Malformed)?;
        let name_start = u32::try_from(self.names.len()).map_err(|_| Malformed)?;
        self.names.push_str(name);
        self.rows.push(Packed {
            memory: vm.config.memory.0.0,
            id,
            name_start,
            cpus: vm.config.cpus.0,
            name_len,
            status: vm.status,
        });
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = Row<'_>> + '_ {
        self.rows.iter().map(|p| row(&self.names, p))
    }

    /// Apply what reconciling found: a new status for a VM, or `None` for
    /// a VM that is gone. One pass over the rows, whatever their order.
    pub fn reconciled<'v>(&mut self, found: impl IntoIterator<Item = (&'v VmId, Option<Status>)>) {
        let mut found: Vec<([u8; 16], Option<Status>)> = found
            .into_iter()
            .filter_map(|(id, status)| Some((pack_id(id.as_str())?, status)))
            .collect();
        if found.is_empty() {
            return;
        }
        found.sort_unstable_by_key(|(id, _)| *id);
        self.rows.retain_mut(
            |row| match found.binary_search_by_key(&row.id, |(id, _)| *id) {
                Ok(i) => match found[i].1 {
                    Some(status) => {
                        row.status = status;
                        true
                    }
                    None => false,
                },
                Err(_) => true,
            },
        );
    }

    /// The ids of every row, for many lookups.
    pub fn ids(&self) -> IdSet {
        let mut ids: Vec<[u8; 16]> = self.rows.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        IdSet(ids)
    }

    /// Keep only the rows for which `keep` is true. Names of dropped rows
    /// stay in the buffer; rows only point into it.
    pub fn retain(&mut self, mut keep: impl FnMut(Row<'_>) -> bool) {
        let names = &self.names;
        self.rows.retain(|p| keep(row(names, p)));
    }

    /// Order by name. Names are unique, so an unstable sort orders the same.
    pub fn sort_by_name(&mut self) {
        let names = &self.names;
        self.rows
            .sort_unstable_by(|a, b| name_in(names, a).cmp(name_in(names, b)));
    }
}

/// A set of VM ids, 16 bytes each.
#[derive(Debug, Default)]
pub struct IdSet(Vec<[u8; 16]>);

impl IdSet {
    pub fn contains(&self, id: &str) -> bool {
        pack_id(id).is_some_and(|packed| self.0.binary_search(&packed).is_ok())
    }
}

fn row<'a>(names: &'a str, p: &Packed) -> Row<'a> {
    Row {
        name: name_in(names, p),
        id: unpack_id(&p.id),
        status: p.status,
        memory: Bytes(p.memory),
        cpus: p.cpus,
    }
}

fn name_in<'a>(names: &'a str, p: &Packed) -> &'a str {
    let start = p.name_start as usize;
    &names[start..start + usize::from(p.name_len)]
}

fn pack_id(text: &str) -> Option<[u8; 16]> {
    let hex = text.as_bytes();
    if hex.len() != VmId::LEN {
        return None;
    }
    let mut out = [0u8; 16];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

fn unpack_id(bytes: &[u8; 16]) -> [u8; VmId::LEN] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; VmId::LEN];
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 0x0f)];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_packing() {
        let text = "0123456789abcdef00ff10e0a5c3b7d9";
        let packed = pack_id(text).unwrap();
        assert_eq!(std::str::from_utf8(&unpack_id(&packed)).unwrap(), text);
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in [
            "",
            "abc",
            "0123456789ABCDEF0123456789abcdef",
            "0123456789abcdef0123456789abcdeg",
        ] {
            assert!(pack_id(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn reconciling_sets_statuses_and_drops_gone_vms() {
        let vm = |name: &str| {
            let config = crate::config::VmConfig::default();
            Vm::new(name.parse().unwrap(), config, Vec::new(), false).unwrap()
        };
        let (a, b, c) = (vm("a"), vm("b"), vm("c"));
        let mut rows = Rows::default();
        for v in [&c, &a, &b] {
            rows.push(v).unwrap();
        }
        rows.reconciled([(&a.id, Some(Status::Crashed)), (&c.id, None)]);
        let ids = rows.ids();
        assert!(ids.contains(a.id.as_str()) && ids.contains(b.id.as_str()));
        assert!(!ids.contains(c.id.as_str()) && !ids.contains("not an id"));
        rows.sort_by_name();
        let seen: Vec<(&str, Status, String)> = rows
            .iter()
            .map(|r| (r.name, r.status, r.id().to_owned()))
            .collect();
        assert_eq!(
            seen,
            [
                ("a", Status::Crashed, a.id.to_string()),
                ("b", Status::Created, b.id.to_string()),
            ]
        );
    }

    #[test]
    fn a_packed_row_stays_small() {
        assert_eq!(std::mem::size_of::<Packed>(), 40);
    }
}
