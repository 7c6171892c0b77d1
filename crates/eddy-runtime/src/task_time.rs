//! Where a subtask thread's time goes: waiting for input (idle), blocked on a full output
//! channel (backpressured), or neither (busy), measured as Flink measures its
//! `idleTimeMsPerSecond`, `backPressuredTimeMsPerSecond` and `busyTimeMsPerSecond`.
//!
//! Each chain subtask runs on its own thread, and that thread's [`TaskTime`] is set as the
//! thread's current one when it starts ([`TaskTime::enter`]). The few places that wait (an
//! input gate's receive, a blocked channel send, a source poll
//! that found nothing) add what they waited to it through [`idle`] and [`backpressured`]:
//! nothing is timed on the fast path (a channel that has a message, a send that fits), so
//! the accounting costs nothing while a job keeps up.
//!
//! Rates are worked out on read ([`TaskTime::per_second`]) from the running totals, over the
//! time since the previous read (at least a second apart), so any number of readers and no
//! background thread.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The shortest window a rate is worked out over; reads closer together see the last rate.
const RATE_WINDOW: Duration = Duration::from_secs(1);

/// The running totals of one chain subtask (shared by every operator of the chain).
#[derive(Debug)]
pub struct TaskTime {
    idle_ns: AtomicU64,
    backpressured_ns: AtomicU64,
    /// When the subtask's thread first started, and when the latest one ended.
    span: Mutex<Span>,
    last: Mutex<Option<Sample>>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Span {
    started: Option<Instant>,
    ended: Option<Instant>,
}

/// The totals at one read, and the rates worked out then.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    idle_ns: u64,
    backpressured_ns: u64,
    rates: Option<TimeRates>,
}

/// Milliseconds per second a subtask spent busy, idle and backpressured (Flink's
/// `busyTimeMsPerSecond`, `idleTimeMsPerSecond`, `backPressuredTimeMsPerSecond`); the three
/// add up to 1000.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TimeRates {
    /// Neither waiting for input nor blocked on output: working.
    pub busy_ms_per_s: u64,
    /// Waiting for input.
    pub idle_ms_per_s: u64,
    /// Blocked on a full output channel: downstream cannot keep up.
    pub backpressured_ms_per_s: u64,
}

impl Default for TaskTime {
    fn default() -> Self {
        TaskTime {
            idle_ns: AtomicU64::new(0),
            backpressured_ns: AtomicU64::new(0),
            span: Mutex::new(Span::default()),
            last: Mutex::new(None),
        }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<TaskTime>>> = const { RefCell::new(None) };
}

/// Makes a thread's waits count towards its [`TaskTime`] until dropped.
pub struct Entered {
    time: Arc<TaskTime>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        CURRENT.with(|current| current.borrow_mut().take());
        lock(&self.time.span).ended = Some(Instant::now());
    }
}

impl TaskTime {
    /// Makes the calling thread's waits count here until the returned guard is dropped.
    pub fn enter(self: &Arc<Self>) -> Entered {
        {
            let mut span = lock(&self.span);
            span.started.get_or_insert_with(Instant::now);
            span.ended = None;
        }
        CURRENT.with(|current| *current.borrow_mut() = Some(self.clone()));
        Entered { time: self.clone() }
    }

    /// When the subtask's thread first started (`None`: not yet), and when it ended, if it has
    /// (else now): the span its rates are worked out over.
    pub fn span(&self) -> (Option<Instant>, Instant) {
        let span = *lock(&self.span);
        (span.started, span.ended.unwrap_or_else(Instant::now))
    }

    /// Milliseconds spent waiting for input so far.
    pub fn idle_ms(&self) -> u64 {
        self.idle_ns.load(Ordering::Relaxed) / 1_000_000
    }

    /// Milliseconds spent blocked on a full output channel so far.
    pub fn backpressured_ms(&self) -> u64 {
        self.backpressured_ns.load(Ordering::Relaxed) / 1_000_000
    }

    /// The rates since the previous read (or since the subtask started), `None` before the
    /// subtask has started.
    pub fn per_second(&self) -> Option<TimeRates> {
        let span = *lock(&self.span);
        let started = span.started?;
        let now = span.ended.unwrap_or_else(Instant::now);
        let (idle_ns, backpressured_ns) =
            (self.idle_ns.load(Ordering::Relaxed), self.backpressured_ns.load(Ordering::Relaxed));
        let mut last = lock(&self.last);
        let previous = last.unwrap_or(Sample { at: started, idle_ns: 0, backpressured_ns: 0, rates: None });
        let window = now.saturating_duration_since(previous.at);
        if previous.rates.is_some() && window < RATE_WINDOW || window.is_zero() {
            return previous.rates;
        }
        let per_second = |ns: u64| (ns as f64 / window.as_nanos() as f64 * 1000.0).round().min(1000.0) as u64;
        let idle = per_second(idle_ns.saturating_sub(previous.idle_ns));
        let backpressured = per_second(backpressured_ns.saturating_sub(previous.backpressured_ns)).min(1000 - idle);
        let rates = TimeRates {
            busy_ms_per_s: 1000 - idle - backpressured,
            idle_ms_per_s: idle,
            backpressured_ms_per_s: backpressured,
        };
        *last = Some(Sample { at: now, idle_ns, backpressured_ns, rates: Some(rates) });
        Some(rates)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Adds `waited` to the current thread's idle time (a no-op on a thread outside a job).
pub fn add_idle(waited: Duration) {
    add(waited, |time| &time.idle_ns);
}

/// Adds `waited` to the current thread's backpressured time.
pub fn add_backpressured(waited: Duration) {
    add(waited, |time| &time.backpressured_ns);
}

fn add(waited: Duration, total: impl Fn(&TaskTime) -> &AtomicU64) {
    CURRENT.with(|current| {
        if let Some(time) = current.borrow().as_ref() {
            total(time).fetch_add(waited.as_nanos() as u64, Ordering::Relaxed);
        }
    });
}

/// Runs `wait` (a blocking receive) and counts its time as idle.
pub fn idle<R>(wait: impl FnOnce() -> R) -> R {
    let started = Instant::now();
    let result = wait();
    add_idle(started.elapsed());
    result
}

/// Runs `wait` (a blocking send) and counts its time as backpressured.
pub fn backpressured<R>(wait: impl FnOnce() -> R) -> R {
    let started = Instant::now();
    let result = wait();
    add_backpressured(started.elapsed());
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_on_an_entered_thread_count_and_rates_add_up_to_a_second() {
        let time = Arc::new(TaskTime::default());
        assert_eq!(time.per_second(), None, "not started");
        let guard = time.enter();
        idle(|| std::thread::sleep(Duration::from_millis(60)));
        backpressured(|| std::thread::sleep(Duration::from_millis(30)));
        std::thread::sleep(Duration::from_millis(10));
        drop(guard);
        assert!((60..200).contains(&time.idle_ms()), "{}", time.idle_ms());
        assert!((30..200).contains(&time.backpressured_ms()), "{}", time.backpressured_ms());
        let rates = time.per_second().expect("started");
        assert_eq!(rates.busy_ms_per_s + rates.idle_ms_per_s + rates.backpressured_ms_per_s, 1000);
        assert!(rates.idle_ms_per_s > rates.backpressured_ms_per_s, "{rates:?}");
        // Waits on a thread that is not a task's go nowhere.
        idle(|| std::thread::sleep(Duration::from_millis(5)));
        assert!(time.idle_ms() < 200);
    }
}
