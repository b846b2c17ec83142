use crate::error::Result;
use crate::vm::Vm;

use super::Env;

/// One VM, by name, id or id prefix.
pub fn info(env: &Env, query: &str) -> Result<Vm> {
    super::find_reconciled(env, query)
}
