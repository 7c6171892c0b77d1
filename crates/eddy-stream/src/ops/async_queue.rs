//! The elements of an async operator in flight, and the order their results leave in
//! (Flink's `StreamElementQueue`).
//!
//! Every record and every watermark that reaches the operator takes a slot, in arrival order.
//! A record's slot is pending until its future completes (or times out), then done; a done
//! slot leaves the queue:
//!
//! - **ordered**: only from the front, so results leave in the order their inputs came;
//! - **unordered**: as soon as it is done, but never past a watermark: a watermark leaves
//!   once every record before it has, and records after it wait for it. So results may
//!   overtake each other between two watermarks, and no result ever becomes late because
//!   of the reordering.
//!
//! A watermark at the front leaves at once. The queue knows nothing of futures or threads:
//! the operator completes slots and expires them by their deadlines.

use std::collections::VecDeque;
use std::time::Instant;

use eddy_core::Timestamp;

/// In which order an async operator emits its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultOrder {
    /// In the order of the inputs (Flink's `orderedWait`).
    Ordered,
    /// As soon as each is ready, but never past a watermark (Flink's `unorderedWait`).
    Unordered,
}

/// What leaves the queue.
#[derive(Debug, PartialEq)]
pub(crate) enum Emitted<T, U> {
    /// A record's result: its value, or why there is none (its error, a timeout).
    Result { input: T, timestamp: Timestamp, outcome: Result<U, String> },
    /// A watermark whose records have all left.
    Watermark(Timestamp),
}

enum Slot<T, U, H> {
    Pending {
        input: T,
        timestamp: Timestamp,
        deadline: Instant,
        task: H,
    },
    Done {
        input: T,
        timestamp: Timestamp,
        outcome: Result<U, String>,
    },
    Watermark(Timestamp),
    /// Left the queue out of order (unordered); its place is dropped once it reaches the front.
    Gone,
}

/// The queue; `H` is what the operator keeps to cancel a record's future (a task handle).
pub(crate) struct AsyncQueue<T, U, H> {
    order: ResultOrder,
    slots: VecDeque<Slot<T, U, H>>,
    /// The sequence number of the front slot; each slot gets the next one.
    front: u64,
    /// Records in the queue (pending or done), which the capacity bounds.
    records: usize,
    /// Unordered: done records before the first watermark, to emit next.
    ready: VecDeque<u64>,
}

impl<T, U, H> AsyncQueue<T, U, H> {
    pub(crate) fn new(order: ResultOrder) -> Self {
        AsyncQueue { order, slots: VecDeque::new(), front: 0, records: 0, ready: VecDeque::new() }
    }

    /// Records in the queue, pending or done but not yet emitted.
    pub(crate) fn records(&self) -> usize {
        self.records
    }

    /// Whether nothing is in the queue.
    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The number the next slot gets.
    pub(crate) fn next_seq(&self) -> u64 {
        self.front + self.slots.len() as u64
    }

    /// Adds a record whose future `task` runs until at most `deadline`; returns its number.
    pub(crate) fn push_record(&mut self, input: T, timestamp: Timestamp, deadline: Instant, task: H) -> u64 {
        self.records += 1;
        self.push(Slot::Pending { input, timestamp, deadline, task })
    }

    /// Adds a watermark behind the records before it.
    pub(crate) fn push_watermark(&mut self, watermark: Timestamp) {
        self.push(Slot::Watermark(watermark));
    }

    fn push(&mut self, slot: Slot<T, U, H>) -> u64 {
        self.slots.push_back(slot);
        self.front + self.slots.len() as u64 - 1
    }

    /// Record `seq`'s future completed with `outcome`; `false` if it had already timed out.
    pub(crate) fn complete(&mut self, seq: u64, outcome: Result<U, String>) -> bool {
        let Some(at) = seq.checked_sub(self.front).map(|at| at as usize) else { return false };
        let Some(slot) = self.slots.get_mut(at) else { return false };
        if !matches!(slot, Slot::Pending { .. }) {
            return false;
        }
        let Slot::Pending { input, timestamp, .. } = std::mem::replace(slot, Slot::Gone) else { unreachable!() };
        *slot = Slot::Done { input, timestamp, outcome };
        self.mark_ready(seq);
        true
    }

    /// Unordered: a done record before the first watermark may leave now.
    fn mark_ready(&mut self, seq: u64) {
        if self.order == ResultOrder::Unordered && self.before_first_watermark(seq) {
            self.ready.push_back(seq);
        }
    }

    fn before_first_watermark(&self, seq: u64) -> bool {
        let at = (seq - self.front) as usize;
        !self.slots.iter().take(at).any(|s| matches!(s, Slot::Watermark(_)))
    }

    /// The earliest deadline of a pending record (the oldest one: deadlines follow arrival).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.slots.iter().find_map(|s| match s {
            Slot::Pending { deadline, .. } => Some(*deadline),
            _ => None,
        })
    }

    /// Gives every pending record whose deadline has passed the outcome `Err(reason)`;
    /// returns their task handles, to cancel.
    pub(crate) fn expire(&mut self, now: Instant, reason: &str) -> Vec<H> {
        let mut expired = Vec::new();
        for at in 0..self.slots.len() {
            match &self.slots[at] {
                Slot::Pending { deadline, .. } if *deadline <= now => {}
                Slot::Pending { .. } => break,
                _ => continue,
            }
            let Slot::Pending { input, timestamp, task, .. } = std::mem::replace(&mut self.slots[at], Slot::Gone)
            else {
                unreachable!()
            };
            self.slots[at] = Slot::Done { input, timestamp, outcome: Err(reason.to_string()) };
            expired.push(task);
            self.mark_ready(self.front + at as u64);
        }
        expired
    }

    /// Hands every slot that may leave now to `emit`, in the order the queue allows.
    pub(crate) fn pop_ready(&mut self, mut emit: impl FnMut(Emitted<T, U>)) {
        loop {
            while let Some(seq) = self.ready.pop_front() {
                let at = (seq - self.front) as usize;
                if let Slot::Done { input, timestamp, outcome } = std::mem::replace(&mut self.slots[at], Slot::Gone) {
                    self.records -= 1;
                    emit(Emitted::Result { input, timestamp, outcome });
                }
            }
            match self.slots.front() {
                Some(Slot::Gone) => {
                    self.pop_front();
                }
                Some(Slot::Watermark(_)) | Some(Slot::Done { .. }) => match self.pop_front() {
                    Some(Slot::Watermark(watermark)) => {
                        emit(Emitted::Watermark(watermark));
                        self.collect_ready_segment();
                    }
                    Some(Slot::Done { input, timestamp, outcome }) => {
                        self.records -= 1;
                        emit(Emitted::Result { input, timestamp, outcome });
                    }
                    _ => unreachable!(),
                },
                Some(Slot::Pending { .. }) | None => return,
            }
        }
    }

    fn pop_front(&mut self) -> Option<Slot<T, U, H>> {
        let slot = self.slots.pop_front()?;
        self.front += 1;
        Some(slot)
    }

    /// Unordered, after a watermark left: the done records up to the next watermark may leave.
    fn collect_ready_segment(&mut self) {
        if self.order == ResultOrder::Ordered {
            return;
        }
        for (at, slot) in self.slots.iter().enumerate() {
            match slot {
                Slot::Watermark(_) => break,
                Slot::Done { .. } => self.ready.push_back(self.front + at as u64),
                _ => {}
            }
        }
    }

    /// The inputs of every record still in the queue, with their timestamps, oldest first:
    /// what a checkpoint keeps, to run them again after a restore.
    pub(crate) fn inputs(&self) -> impl Iterator<Item = (&T, Timestamp)> {
        self.slots.iter().filter_map(|slot| match slot {
            Slot::Pending { input, timestamp, .. } | Slot::Done { input, timestamp, .. } => Some((input, *timestamp)),
            _ => None,
        })
    }

    /// Takes the task handles of every pending record (to cancel them when the operator goes).
    pub(crate) fn take_tasks(&mut self) -> Vec<H> {
        let mut tasks = Vec::new();
        for slot in self.slots.iter_mut() {
            if matches!(slot, Slot::Pending { .. }) {
                if let Slot::Pending { task, .. } = std::mem::replace(slot, Slot::Gone) {
                    tasks.push(task);
                }
            }
        }
        tasks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    /// One step of a scenario: a record arrives, a watermark arrives, or the `n`th pending
    /// record (mod the pending count) completes.
    #[derive(Debug, Clone)]
    enum Step {
        Record,
        Watermark,
        Complete(usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![3 => Just(Step::Record), 1 => Just(Step::Watermark), 3 => (0usize..8).prop_map(Step::Complete)]
    }

    /// Runs a scenario and returns what left the queue: records as `Ok(input)`, watermarks as
    /// `Err(watermark)`. Record `i` has timestamp `i`; the watermark after record `i` is `i`.
    fn run(order: ResultOrder, steps: &[Step]) -> (Vec<Result<u64, i64>>, usize) {
        let mut queue = AsyncQueue::<u64, u64, ()>::new(order);
        let mut out = Vec::new();
        let mut pending: Vec<u64> = Vec::new();
        let mut next = 0u64;
        let deadline = Instant::now() + Duration::from_secs(3600);
        let mut emit = |e: Emitted<u64, u64>| match e {
            Emitted::Result { input, outcome, .. } => {
                assert_eq!(outcome, Ok(input * 10));
                out.push(Ok(input))
            }
            Emitted::Watermark(w) => out.push(Err(w)),
        };
        for step in steps {
            match step {
                Step::Record => {
                    pending.push(queue.push_record(next, next as i64, deadline, ()));
                    next += 1;
                }
                Step::Watermark => queue.push_watermark(next as i64 - 1),
                Step::Complete(n) if !pending.is_empty() => {
                    let seq = pending.remove(n % pending.len());
                    // Slot numbers count watermarks too: recover the input from the output
                    // check instead, by completing with the input's value below.
                    let input = seq_input(&queue, seq);
                    assert!(queue.complete(seq, Ok(input * 10)));
                }
                Step::Complete(_) => {}
            }
            queue.pop_ready(&mut emit);
        }
        for seq in pending {
            let input = seq_input(&queue, seq);
            queue.complete(seq, Ok(input * 10));
        }
        queue.pop_ready(&mut emit);
        (out, next as usize)
    }

    fn seq_input(queue: &AsyncQueue<u64, u64, ()>, seq: u64) -> u64 {
        match &queue.slots[(seq - queue.front) as usize] {
            Slot::Pending { input, .. } => *input,
            _ => panic!("slot {seq} is not pending"),
        }
    }

    proptest! {
        #[test]
        fn ordered_results_keep_the_input_order(steps in proptest::collection::vec(step(), 0..80)) {
            let (out, records) = run(ResultOrder::Ordered, &steps);
            let results: Vec<u64> = out.iter().filter_map(|e| e.ok()).collect();
            prop_assert_eq!(results, (0..records as u64).collect::<Vec<_>>());
        }

        #[test]
        fn unordered_results_never_cross_a_watermark(steps in proptest::collection::vec(step(), 0..80)) {
            let (out, records) = run(ResultOrder::Unordered, &steps);
            let mut results: Vec<u64> = out.iter().filter_map(|e| e.ok()).collect();
            // Between two watermarks anything goes; across one, nothing: every record after
            // watermark w is newer than w, every one before it is at most w.
            let mut watermark = i64::MIN;
            for e in &out {
                match e {
                    Err(w) => watermark = *w,
                    Ok(input) => prop_assert!(*input as i64 > watermark, "{} after watermark {}", input, watermark),
                }
            }
            let watermarks: Vec<i64> = out.iter().filter_map(|e| e.err()).collect();
            let pushed = steps.iter().filter(|s| matches!(s, Step::Watermark)).count();
            prop_assert_eq!(watermarks.len(), pushed, "every watermark leaves once its records have");
            results.sort();
            prop_assert_eq!(results, (0..records as u64).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_record_past_its_deadline_times_out_and_a_late_completion_is_ignored() {
        let mut queue = AsyncQueue::<&str, u8, u32>::new(ResultOrder::Ordered);
        let now = Instant::now();
        let slow = queue.push_record("slow", 1, now, 7);
        let fast = queue.push_record("fast", 2, now + Duration::from_secs(60), 8);
        assert_eq!(queue.next_deadline(), Some(now));
        assert!(queue.complete(fast, Ok(2)));
        assert_eq!(queue.expire(now, "timed out"), vec![7]);
        assert!(!queue.complete(slow, Ok(1)), "already timed out");
        let mut out = Vec::new();
        queue.pop_ready(|e| out.push(e));
        assert_eq!(
            out,
            vec![
                Emitted::Result { input: "slow", timestamp: 1, outcome: Err("timed out".into()) },
                Emitted::Result { input: "fast", timestamp: 2, outcome: Ok(2) },
            ]
        );
        assert!(queue.is_empty());
        assert_eq!(queue.records(), 0);
    }
}
