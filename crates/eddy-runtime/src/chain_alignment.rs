//! Watermark alignment wiring: which group a chain subtask aligns in.
//!
//! Only a source can pause, and a source reads for its whole chain (the operators fused into
//! its thread). So alignment is decided per chain subtask: the operator whose watermarks the
//! chain aligns on joins the group while the job is built, and the chain's source task then
//! pauses on that member ([`eddy_core::watermark_alignment`]). That operator is either the
//! source itself (an aligned strategy given to `from_source`, per-split watermarks) or a
//! timestamp assigner chained to it (an aligned strategy given to
//! `assign_timestamps_and_watermarks`).
//!
//! Operators are built from the sinks up, so an assigner joins before its source is built and
//! takes the member. A chain may align in one group only: two members in one chain could each
//! hold the other's group back through the one source that pauses for both. An assigner that
//! is not chained to a source leaves its member behind, and the job is refused: no source
//! could pause for it.

use std::cell::RefCell;

use eddy_core::{AlignmentGroups, AlignmentMember, Error, Result, WatermarkAlignment};

/// The alignment of one chain subtask: the job run's groups, and the member the chain joined.
#[derive(Debug)]
pub struct ChainAlignment {
    groups: AlignmentGroups,
    /// The operator that joined a group for this chain subtask.
    operator: RefCell<Option<String>>,
    /// Its member, until the chain's source takes it.
    member: RefCell<Option<AlignmentMember>>,
}

impl ChainAlignment {
    /// A chain subtask of a job run whose groups are `groups`.
    pub(crate) fn new(groups: AlignmentGroups) -> Self {
        ChainAlignment { groups, operator: RefCell::new(None), member: RefCell::new(None) }
    }

    /// `operator` joins `alignment`'s group for this chain subtask; refused if an operator of
    /// the chain already did.
    pub(crate) fn join(&self, operator: &str, alignment: &WatermarkAlignment) -> Result<AlignmentMember> {
        if let Some(first) = self.operator.borrow().as_ref() {
            return Err(Error::InvalidJob(format!(
                "'{operator}' and '{first}' both align watermarks (with_watermark_alignment) in one \
                 chain, which pauses one source for both; set the alignment in one place: on the \
                 source's strategy, or on the one assigner chained to it"
            )));
        }
        let member = self.groups.join(alignment);
        *self.operator.borrow_mut() = Some(operator.to_string());
        *self.member.borrow_mut() = Some(member.clone());
        Ok(member)
    }

    /// The member an operator of the chain joined with, for the chain's source to pause on.
    pub(crate) fn take(&self) -> Option<AlignmentMember> {
        self.member.borrow_mut().take()
    }

    /// Refuses a member no source took: its operator does not run chained to a source.
    pub(crate) fn check_taken(&self) -> Result<()> {
        if self.member.borrow().is_none() {
            return Ok(());
        }
        let operator = self.operator.borrow().clone().unwrap_or_default();
        Err(Error::InvalidJob(format!(
            "'{operator}' aligns watermarks (with_watermark_alignment) but does not run chained to a \
             source, so no source can pause for it; run it at its source's parallelism with nothing \
             in between that moves records between subtasks (rebalance, key_by, union), or align on \
             the source's own strategy (from_source)"
        )))
    }
}
