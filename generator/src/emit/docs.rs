//! Markdown docs (placeholder until the askama templates land).

use super::{EmitError, Files};
use crate::ir::Api;

pub fn emit(_api: &Api, _files: &mut Files) -> Result<(), EmitError> {
    Ok(())
}
