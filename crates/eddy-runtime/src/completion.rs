//! A job's outcome, awaited from async code or waited for from a thread.
//!
//! The job master runs on its own thread. When the job ends it puts the outcome here, wakes
//! every task that awaits it and every thread that waits for it. Nothing here needs an async
//! runtime: [`JobCompletion`] is a plain [`Future`] that any executor (tokio, async-std, a
//! `block_on`) can poll, and awaiting it never blocks an executor's thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use eddy_core::Result;

use crate::job_result::JobResult;

/// The outcome slot shared by the job master and every handle of the job.
#[derive(Default)]
pub(crate) struct Completion {
    slot: Mutex<Slot>,
    ended: Condvar,
}

#[derive(Default)]
struct Slot {
    outcome: Option<Result<JobResult>>,
    /// Tasks awaiting the outcome.
    wakers: Vec<Waker>,
}

impl Completion {
    fn slot(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records how the job ended and wakes everyone waiting for it.
    pub(crate) fn complete(&self, outcome: Result<JobResult>) {
        let wakers = {
            let mut slot = self.slot();
            slot.outcome = Some(outcome);
            std::mem::take(&mut slot.wakers)
        };
        self.ended.notify_all();
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Whether the job has ended.
    pub(crate) fn is_done(&self) -> bool {
        self.slot().outcome.is_some()
    }

    /// Blocks the calling thread until the job has ended.
    pub(crate) fn wait(&self) -> Result<JobResult> {
        let mut slot = self.slot();
        loop {
            if let Some(outcome) = &slot.outcome {
                return outcome.clone();
            }
            slot = self.ended.wait(slot).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn poll(&self, cx: &mut Context<'_>) -> Poll<Result<JobResult>> {
        let mut slot = self.slot();
        if let Some(outcome) = &slot.outcome {
            return Poll::Ready(outcome.clone());
        }
        if !slot.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            slot.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// Resolves to the job's outcome once it has ended: what [`JobHandle::join`] returns and what
/// `handle.await` awaits. Any number of them may wait for the same job; each gets the outcome.
///
/// [`JobHandle::join`]: crate::JobHandle::join
#[must_use = "a future does nothing unless awaited"]
pub struct JobCompletion {
    pub(crate) completion: Arc<Completion>,
}

impl Future for JobCompletion {
    type Output = Result<JobResult>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.completion.poll(cx)
    }
}
