//! Not written yet.

use super::{Report, Setup};
use crate::error::{Result, input};

pub fn run(_setup: &Setup, _report: &mut Report) -> Result<()> {
    Err(input("this experiment is not written yet"))
}
