//! A one-shot answer from a subtask: waited for by a thread, or awaited by a task.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// What the asking side sees: the answer, or that none will come (the request was dropped).
enum State<T> {
    Waiting(Option<Waker>),
    Answered(T),
    Dropped,
    Taken,
}

struct Slot<T> {
    state: Mutex<State<T>>,
    changed: Condvar,
}

impl<T> Slot<T> {
    fn state(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn settle(&self, to: State<T>) {
        let waker = match std::mem::replace(&mut *self.state(), to) {
            State::Waiting(waker) => waker,
            _ => None,
        };
        self.changed.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The answering side: send once; dropped unanswered, the asker learns no answer comes.
pub struct Reply<T>(Option<Arc<Slot<T>>>);

/// The asking side.
pub(crate) struct Answer<T>(Arc<Slot<T>>);

/// A new request's two ends.
pub(crate) fn reply<T>() -> (Reply<T>, Answer<T>) {
    let slot = Arc::new(Slot { state: Mutex::new(State::Waiting(None)), changed: Condvar::new() });
    (Reply(Some(slot.clone())), Answer(slot))
}

impl<T> Reply<T> {
    /// Sends the answer.
    pub(crate) fn send(mut self, answer: T) {
        if let Some(slot) = self.0.take() {
            slot.settle(State::Answered(answer));
        }
    }
}

impl<T> Drop for Reply<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.0.take() {
            slot.settle(State::Dropped);
        }
    }
}

impl<T> Answer<T> {
    /// Blocks until the answer comes, no answer will come (`Err(false)`), or `limit` has
    /// passed (`Err(true)`).
    pub(crate) fn wait(self, limit: Duration) -> Result<T, bool> {
        let until = Instant::now() + limit;
        let mut state = self.0.state();
        loop {
            match std::mem::replace(&mut *state, State::Taken) {
                State::Answered(answer) => return Ok(answer),
                State::Dropped | State::Taken => return Err(false),
                waiting @ State::Waiting(_) => *state = waiting,
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(true);
            }
            state = self.0.changed.wait_timeout(state, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

/// Resolves to the answer, or `None` when none will come.
impl<T> Future for Answer<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut state = self.0.state();
        match std::mem::replace(&mut *state, State::Taken) {
            State::Answered(answer) => Poll::Ready(Some(answer)),
            State::Dropped | State::Taken => Poll::Ready(None),
            State::Waiting(_) => {
                *state = State::Waiting(Some(cx.waker().clone()));
                Poll::Pending
            }
        }
    }
}
