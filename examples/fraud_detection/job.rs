//! Fraud detection with keyed state and timers (Flink's fraud-detection walkthrough, in
//! event time): per account, a small transaction followed by a large one within a minute
//! raises an alert.

use std::time::Duration;

use eddy::prelude::*;
use serde::{Deserialize, Serialize};

/// Below this a transaction is "small" (a card test).
pub const SMALL: f64 = 1.00;
/// Above this a transaction is "large".
pub const LARGE: f64 = 500.00;
/// How soon after a small transaction a large one is suspicious.
pub const WINDOW_MS: i64 = 60_000;

/// The detector's uid and the names of its states: what `--serve` reads per account.
pub const DETECTOR: &str = "fraud-detector";
pub const LAST_SMALL: &str = "last-small-transaction";
pub const ALERTS: &str = "alerts";

/// A card transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    pub account: u32,
    pub amount: f64,
    /// Event time, ms since the epoch.
    pub timestamp: i64,
}

/// A suspicious pair of transactions on one account.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub struct Alert {
    pub account: u32,
    pub small_at: i64,
    pub large_at: i64,
    pub amount: f64,
}

impl std::fmt::Display for Alert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{},{},{},{:.2}", self.account, self.small_at, self.large_at, self.amount)
    }
}

/// `count` deterministic transactions over `accounts` accounts, in time order: mostly
/// ordinary amounts, some small ones, some large ones.
pub fn transactions(seed: u64, count: usize, accounts: u32) -> Vec<Transaction> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut timestamp = 1_700_000_000_000;
    (0..count)
        .map(|_| {
            timestamp += rng.i64(0..=400);
            let amount = match rng.u8(0..100) {
                0..=7 => rng.f64() * 0.99,
                8..=13 => 500.01 + rng.f64() * 2_000.0,
                _ => 1.0 + rng.f64() * 300.0,
            };
            Transaction { account: rng.u32(0..accounts), amount: (amount * 100.0).round() / 100.0, timestamp }
        })
        .collect()
}

/// Remembers an account's last small transaction until the next transaction or a minute,
/// and counts the account's alerts.
#[derive(Clone)]
pub struct FraudDetector {
    last_small: ValueStateDescriptor<i64>,
    alerts: ValueStateDescriptor<u64>,
}

impl Default for FraudDetector {
    fn default() -> Self {
        FraudDetector { last_small: ValueStateDescriptor::new(LAST_SMALL), alerts: ValueStateDescriptor::new(ALERTS) }
    }
}

impl KeyedProcessFunction<u32, Transaction, Alert> for FraudDetector {
    fn process_element(&mut self, tx: &Transaction, ctx: &mut KeyedContext<'_, u32, Alert>) -> Result<(), BoxError> {
        let last_small = ctx.state().value_state(&self.last_small)?;
        if let Some(small_at) = last_small.value()? {
            // The time check makes the result independent of when the cleanup timer fires.
            if tx.amount > LARGE && tx.timestamp - small_at <= WINDOW_MS {
                ctx.collect(Alert { account: tx.account, small_at, large_at: tx.timestamp, amount: tx.amount });
                let alerts = ctx.state().value_state(&self.alerts)?;
                alerts.update(alerts.value()?.unwrap_or(0) + 1)?;
            }
            // Any transaction after a small one ends the pattern, as in Flink's walkthrough.
            last_small.clear()?;
            ctx.delete_event_time_timer(small_at + WINDOW_MS)?;
        }
        if tx.amount < SMALL {
            last_small.update(tx.timestamp)?;
            ctx.register_event_time_timer(tx.timestamp + WINDOW_MS)?;
        }
        Ok(())
    }

    fn on_timer(&mut self, _timestamp: Timestamp, ctx: &mut KeyedContext<'_, u32, Alert>) -> Result<(), BoxError> {
        // A minute without a follow-up: forget the small transaction.
        ctx.state().value_state(&self.last_small)?.clear()?;
        Ok(())
    }
}

/// The job: transactions in event time, keyed by account, through the detector.
pub fn alerts(transactions: &DataStream<Transaction>) -> DataStream<Alert> {
    transactions
        .assign_timestamps_and_watermarks(WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(0)), |tx| {
            tx.timestamp
        })
        .key_by(|tx: &Transaction| tx.account)
        .process(FraudDetector::default())
        .name("FraudDetector")
        .uid(DETECTOR)
}
