//! What `ls` shows of every VM, packed: a fixed 28 bytes per VM plus its
//! name, all names in one buffer. 100 000 VMs list in about 5 MiB of rows
//! instead of a heap string or two per VM (docs/performance.md).
//!
//! The store keeps the same facts beside every record, in its `list` table
//! ([`Entry`]), so a listing never decodes a record it does not reconcile.

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

/// 28 bytes: memory is whole MiB and cpus at most 1024, by the config's
/// own checks.
#[derive(Debug, Clone, Copy)]
struct Packed {
    id: [u8; 16],
    memory_mib: u32,
    name_start: u32,
    cpus: u16,
    name_len: u8,
    status: Status,
}

const MIB: u64 = 1 << 20;

fn pack_memory(bytes: u64) -> Option<u32> {
    if bytes.is_multiple_of(MIB) {
        u32::try_from(bytes / MIB).ok()
    } else {
        None
    }
}

/// One row, borrowed from [`Rows`].
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    pub name: &'a str,
    id: [u8; 16],
    pub status: Status,
    pub memory: Bytes,
    pub cpus: u32,
}

impl Row<'_> {
    /// The id, in hex (made when asked: most rows show only the short id).
    pub fn id(&self) -> Hex<{ VmId::LEN }> {
        Hex(unpack_id(&self.id))
    }

    pub fn short_id(&self) -> Hex<{ VmId::SHORT }> {
        let mut out = [0u8; VmId::SHORT];
        out.copy_from_slice(&unpack_id(&self.id)[..VmId::SHORT]);
        Hex(out)
    }
}

/// Lowercase hex digits, as text.
#[derive(Debug, Clone, Copy)]
pub struct Hex<const N: usize>([u8; N]);

impl<const N: usize> std::ops::Deref for Hex<N> {
    type Target = str;

    fn deref(&self) -> &str {
        // Only ever hex digits.
        std::str::from_utf8(&self.0).unwrap_or_default()
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
        let mut live_ids = Vec::new();
        // Exactly as much room as needed: grown by doubling, the rows of
        // 100 000 VMs briefly took twice their size.
        let count = std::cell::Cell::new(0);
        store.each_listed(
            |n| count.set(n),
            |name, bytes| {
                if rows.rows.capacity() == 0 {
                    // A count read from the file: bounded, so that a damaged
                    // one cannot ask for more memory than there is.
                    let n = usize::try_from(count.get()).unwrap_or(0).min(1 << 20);
                    rows.rows.reserve_exact(n);
                    rows.names.reserve_exact(n * 12);
                }
                let malformed = || Error::StoreDamaged {
                    path: store.path().to_owned(),
                    detail: format!("the list entry of VM `{name}` is malformed"),
                };
                let entry = Entry::read(bytes).ok_or_else(malformed)?;
                if entry.live {
                    let id = unpack_id(&entry.row.id);
                    let id = std::str::from_utf8(&id).ok().and_then(VmId::parse);
                    live_ids.push(id.ok_or_else(malformed)?);
                }
                rows.push_packed(name, entry.row).map_err(|_| malformed())
            },
        )?;
        let mut live = Vec::with_capacity(live_ids.len());
        for id in live_ids {
            live.push(store.get(&id)?);
        }
        Ok((rows, live))
    }

    fn push_packed(&mut self, name: &str, mut row: Packed) -> Result<(), Malformed> {
        row.name_len = u8::try_from(name.len()).map_err(|_| Malformed)?;
        row.name_start = u32::try_from(self.names.len()).map_err(|_| Malformed)?;
        self.names.push_str(name);
        self.rows.push(row);
        Ok(())
    }

    /// A row of `vm`, packed as the store's `list` packs it.
    pub fn push(&mut self, vm: &Vm) -> Result<(), Malformed> {
        pack_id(vm.id.as_str()).ok_or(Malformed)?;
        let entry = Entry::read(&Entry::of(vm)).ok_or(Malformed)?;
        self.push_packed(vm.name.as_str(), entry.row)
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

/// A VM's entry in the store's `list` table (keyed by its name): what `ls`
/// shows, and whether reconciling may change it. 30 bytes, little-endian:
/// id (16) · memory (8) · cpus (4) · status (1) · flags (1: bit 0, a
/// runtime is recorded; bit 1, remove once stopped). The layout is part of
/// the store's schema (2): a change needs a new schema and a migration.
pub struct Entry {
    row: Packed,
    /// Recorded running, or to be removed once stopped.
    live: bool,
}

impl Entry {
    pub const LEN: usize = 30;

    /// The entry of `vm`. A malformed id (only a damaged record has one)
    /// packs as zeros, which reads back as another id: never stored, since
    /// the record it came from was decoded, and ids are checked then.
    pub fn of(vm: &Vm) -> [u8; Entry::LEN] {
        let mut out = [0u8; Entry::LEN];
        out[..16].copy_from_slice(&pack_id(vm.id.as_str()).unwrap_or_default());
        out[16..24].copy_from_slice(&vm.config.memory.0.0.to_le_bytes());
        out[24..28].copy_from_slice(&vm.config.cpus.0.to_le_bytes());
        out[28] = status_code(vm.status);
        out[29] = u8::from(vm.runtime.is_some()) | u8::from(vm.auto_remove) << 1;
        out
    }

    fn read(bytes: &[u8]) -> Option<Entry> {
        let bytes: &[u8; Entry::LEN] = bytes.try_into().ok()?;
        let flags = bytes[29];
        if flags > 0b11 {
            return None;
        }
        Some(Entry {
            row: Packed {
                id: bytes[..16].try_into().ok()?,
                memory_mib: pack_memory(u64::from_le_bytes(bytes[16..24].try_into().ok()?))?,
                name_start: 0,
                cpus: u16::try_from(u32::from_le_bytes(bytes[24..28].try_into().ok()?)).ok()?,
                name_len: 0,
                status: status_of(bytes[28])?,
            },
            live: flags != 0,
        })
    }
}

/// Status codes in the `list` table: fixed, whatever the enum's order.
fn status_code(status: Status) -> u8 {
    match status {
        Status::Created => 0,
        Status::Running => 1,
        Status::Stopped => 2,
        Status::Crashed => 3,
        Status::Starting => 4,
    }
}

fn status_of(code: u8) -> Option<Status> {
    Some(match code {
        0 => Status::Created,
        1 => Status::Running,
        2 => Status::Stopped,
        3 => Status::Crashed,
        4 => Status::Starting,
        _ => return None,
    })
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
        id: p.id,
        status: p.status,
        memory: Bytes(u64::from(p.memory_mib) * MIB),
        cpus: u32::from(p.cpus),
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
            .map(|r| (r.name, r.status, r.id().to_string()))
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
        assert_eq!(std::mem::size_of::<Packed>(), 28);
    }
}
