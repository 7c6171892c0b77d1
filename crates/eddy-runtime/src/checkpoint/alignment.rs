//! Barrier alignment: how a subtask with several inputs takes a consistent snapshot.
//!
//! Every upstream subtask sends checkpoint *n*'s barrier after the last record that belongs
//! before it. A subtask reading several inputs must snapshot when it has seen everything
//! before the barrier on *every* input and nothing after it on any (Flink's aligned
//! checkpoints):
//!
//! ```text
//! input 0:  r r r |B5| r r r          the records after B5 on input 0 are held back …
//! input 1:  r r r r r r |B5| r        … until B5 has come on input 1 too (or input 1 ended);
//!                                     then the subtask snapshots, passes B5 on, and handles
//!                                     what was held, in arrival order
//! ```
//!
//! In exactly-once mode an input whose barrier came first is *blocked*: its messages are
//! held until the others catch up. In at-least-once mode nothing is held, so records after
//! the barrier may be in the snapshot and be replayed after a failure (counted twice), but
//! no input waits. An input that has ended counts as having its barrier. A newer
//! checkpoint's barrier abandons an older alignment (that checkpoint was given up); an
//! older one that comes late is ignored.

use std::collections::VecDeque;
use std::time::Instant;

use eddy_core::Barrier;

/// The alignment of one subtask's inputs, holding back messages of type `M`.
pub(crate) struct Alignment<M> {
    /// Whether inputs whose barrier came first are blocked (exactly-once).
    exactly_once: bool,
    /// The checkpoint being aligned, and which inputs its barrier has arrived on.
    pending: Option<(Barrier, Vec<bool>)>,
    /// When the pending checkpoint's first barrier arrived.
    began: Option<Instant>,
    /// Messages of blocked inputs, in arrival order, with their input.
    held: VecDeque<(usize, M)>,
}

impl<M> Alignment<M> {
    /// No alignment under way; `exactly_once` blocks inputs whose barrier came first.
    pub(crate) fn new(exactly_once: bool) -> Self {
        Alignment { exactly_once, pending: None, began: None, held: VecDeque::new() }
    }

    /// A message from `input`: back to the caller to handle now, or `None` when it is held
    /// (its input's barrier came first, in exactly-once mode).
    pub(crate) fn admit(&mut self, input: usize, message: M) -> Option<M> {
        let blocked = self.pending.as_ref().is_some_and(|(_, arrived)| arrived[input]);
        if blocked && self.exactly_once {
            self.held.push_back((input, message));
            return None;
        }
        Some(message)
    }

    /// `barrier` arrived on `input` (of `inputs`). Messages an abandoned older alignment
    /// held go to the front of `released`.
    pub(crate) fn barrier(
        &mut self,
        input: usize,
        barrier: Barrier,
        inputs: usize,
        released: &mut VecDeque<(usize, M)>,
    ) {
        match &self.pending {
            Some((current, _)) if barrier.checkpoint < current.checkpoint => return,
            Some((current, _)) if barrier.checkpoint > current.checkpoint => self.release(released),
            _ => {}
        }
        if self.pending.is_none() {
            self.began = Some(Instant::now());
        }
        let (_, arrived) = self.pending.get_or_insert_with(|| (barrier, vec![false; inputs]));
        arrived[input] = true;
    }

    /// The aligned barrier, once it has arrived on every input that has not `ended`: the
    /// subtask snapshots and passes it on. What was held goes to the front of `released`,
    /// in arrival order, to be handled before anything new.
    pub(crate) fn complete(&mut self, ended: &[bool], released: &mut VecDeque<(usize, M)>) -> Option<Barrier> {
        let (barrier, arrived) = self.pending.as_ref()?;
        if !arrived.iter().zip(ended).all(|(&arrived, &ended)| arrived || ended) {
            return None;
        }
        let barrier = *barrier;
        self.release(released);
        Some(barrier)
    }

    /// When the barrier being aligned first arrived (`None`: no alignment under way); its
    /// alignment lasts until [`Alignment::complete`] returns it (Flink's alignment duration).
    pub(crate) fn began(&self) -> Option<Instant> {
        self.pending.as_ref().and(self.began)
    }

    /// Ends the alignment; what was held goes to the front of `released`, in arrival order.
    fn release(&mut self, released: &mut VecDeque<(usize, M)>) {
        self.pending = None;
        for envelope in std::mem::take(&mut self.held).into_iter().rev() {
            released.push_front(envelope);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocked_input_is_held_until_every_input_has_the_barrier() {
        let mut alignment = Alignment::new(true);
        let mut released = VecDeque::new();
        let b5 = Barrier { checkpoint: 5, ..Barrier::FINAL };
        assert_eq!(alignment.admit(0, "before"), Some("before"));
        alignment.barrier(0, b5, 2, &mut released);
        assert_eq!(alignment.complete(&[false, false], &mut released), None);
        assert_eq!(alignment.admit(0, "after"), None);
        assert_eq!(alignment.admit(1, "other"), Some("other"));
        alignment.barrier(1, b5, 2, &mut released);
        assert_eq!(alignment.complete(&[false, false], &mut released), Some(b5));
        assert_eq!(released, [(0, "after")]);
    }

    #[test]
    fn at_least_once_holds_nothing_and_an_ended_input_counts_as_aligned() {
        let mut alignment = Alignment::new(false);
        let mut released = VecDeque::new();
        let b1 = Barrier { checkpoint: 1, ..Barrier::FINAL };
        alignment.barrier(0, b1, 2, &mut released);
        assert_eq!(alignment.admit(0, 7), Some(7));
        assert_eq!(alignment.complete(&[false, true], &mut released), Some(b1));
        assert!(released.is_empty());
    }

    #[test]
    fn a_newer_barrier_abandons_an_older_alignment_and_an_older_one_is_ignored() {
        let mut alignment = Alignment::new(true);
        let mut released = VecDeque::new();
        let (b1, b2) = (Barrier { checkpoint: 1, ..Barrier::FINAL }, Barrier { checkpoint: 2, ..Barrier::FINAL });
        alignment.barrier(0, b1, 2, &mut released);
        assert_eq!(alignment.admit(0, 'x'), None);
        alignment.barrier(1, b2, 2, &mut released);
        assert_eq!(released, [(0, 'x')]);
        alignment.barrier(0, b1, 2, &mut released);
        assert_eq!(alignment.complete(&[false, false], &mut released), None);
        alignment.barrier(0, b2, 2, &mut released);
        assert_eq!(alignment.complete(&[false, false], &mut released), Some(b2));
    }
}
