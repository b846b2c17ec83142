use crate::error::{Error, Result};
use crate::reconcile::reconcile;
use crate::store::{Access, Store};
use crate::vm::Vm;

use super::Env;

/// One VM, by name, id or id prefix.
pub fn info(env: &Env, query: &str) -> Result<Vm> {
    let store =
        Store::open_existing(&env.dirs, Access::Read)?.ok_or_else(|| Error::VmNotFound {
            query: query.into(),
        })?;
    let mut vms = vec![store.find(query)?];
    drop(store);
    reconcile(&env.dirs, &mut vms)?;
    Ok(vms.remove(0))
}
