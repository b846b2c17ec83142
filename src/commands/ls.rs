use crate::error::Result;
use crate::rows::Rows;
use crate::store::{Access, Store};
use crate::vm::Status;

use super::Env;
use super::survey::survey;

/// Every VM, ordered by name, optionally only those in one state. Only the
/// VMs recorded as running are checked (no QMP), and only a packed row of
/// each is kept: `ls` of a large store stays small.
pub fn list(env: &Env, status: Option<Status>) -> Result<Rows> {
    let Some(mut survey) = survey(env)? else {
        return Ok(Rows::default());
    };
    survey.reconcile(env)?;
    let mut rows = survey.rows;
    if let Some(wanted) = status {
        rows.retain(|row| row.status == wanted);
    }
    rows.sort_by_name();
    Ok(rows)
}

/// VM names only, as stored: no liveness check, nothing written. Shell
/// completion calls this on every Tab.
pub fn names(env: &Env) -> Result<Vec<String>> {
    match Store::open_existing(&env.dirs, Access::Read)? {
        Some(store) => store.names(),
        None => Ok(Vec::new()),
    }
}
