use crate::error::{Error, Result};
use crate::store::{Access, Store};
use crate::vm::Vm;

use super::Env;

/// One VM, by name, id or id prefix.
pub fn info(env: &Env, query: &str) -> Result<Vm> {
    match Store::open_existing(&env.dirs, Access::Read)? {
        Some(store) => store.find(query),
        None => Err(Error::VmNotFound {
            query: query.into(),
        }),
    }
}
