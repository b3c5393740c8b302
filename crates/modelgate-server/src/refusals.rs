//! Refused authentication, aggregated: anyone can send requests with a bad token or a wrong password, so
//! writing one audit event per refusal would let anyone grow the log at network speed. Instead, per
//! (action, source address, reason), the first refusal is written at once (count 1), the ones after it are
//! counted in memory, and the count is written as one event when the window (a minute) closes — by the
//! next refusal after it, by the periodic flush, or at shutdown. So each key writes at most one event per
//! window, the counts are exact within a process (a crash loses at most one window's pending counts), and
//! memory is bounded: past [`MAX_KEYS`] keys, new sources share one overflow key per action.
//!
//! Why memory and not the database: a counter row would turn every refused request into a write, which
//! is the load we are shedding; refusals are already per process (each replica sees its own traffic).

use modelgate_core::Timestamp;
use modelgate_store::Attribution;
use std::collections::HashMap;
use std::sync::Mutex;

/// One event per key at most this often.
pub const WINDOW_MILLIS: i64 = 60_000;

/// Keys tracked separately; beyond this, refusals from new sources share an overflow key.
pub const MAX_KEYS: usize = 4096;

/// The source recorded for refusals counted under the overflow key.
pub const OVERFLOW_SOURCE: &str = "many-sources";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    action: String,
    client_addr: Option<String>,
    reason: String,
}

/// Refusals of one key not written yet.
#[derive(Debug)]
struct Batch {
    /// The first refusal of the batch: its actor, request id, source and time.
    attribution: Attribution,
    /// The first refusal's target; `mixed` when later ones named others.
    target: String,
    mixed: bool,
    count: u64,
    last_at: Timestamp,
}

#[derive(Debug)]
struct Window {
    start: i64,
    batch: Option<Batch>,
}

/// Refusals to write as one event each.
#[derive(Debug)]
pub struct Flush {
    pub attribution: Attribution,
    pub action: String,
    pub target: String,
    pub reason: String,
    pub count: u64,
    pub first_at: Timestamp,
    pub last_at: Timestamp,
}

#[derive(Debug, Default)]
pub struct Refusals {
    windows: Mutex<HashMap<Key, Window>>,
}

impl Refusals {
    /// Notes one refusal at `attribution.at` and returns what must be written now: this refusal when it
    /// opens a window, or the closed window's batch with this refusal when the window has passed.
    pub fn note(
        &self,
        attribution: Attribution,
        action: &str,
        target: &str,
        reason: &str,
    ) -> Option<Flush> {
        let now = attribution.at;
        let Ok(mut windows) = self.windows.lock() else {
            return Some(single(attribution, action, target, reason));
        };
        let mut key = Key {
            action: action.to_owned(),
            client_addr: attribution.client_addr.clone(),
            reason: reason.to_owned(),
        };
        let mut attribution = attribution;
        if !windows.contains_key(&key) && windows.len() >= MAX_KEYS {
            key = Key {
                action: action.to_owned(),
                client_addr: Some(OVERFLOW_SOURCE.to_owned()),
                reason:
                    "refusals from more sources or for more reasons than the server counts apart"
                        .to_owned(),
            };
            attribution.client_addr = Some(OVERFLOW_SOURCE.to_owned());
        }
        let Some(window) = windows.get_mut(&key) else {
            let flush = single(attribution, action, target, &key.reason);
            windows.insert(
                key,
                Window {
                    start: now.unix_millis(),
                    batch: None,
                },
            );
            return Some(flush);
        };
        let batch = window.batch.get_or_insert_with(|| Batch {
            attribution,
            target: target.to_owned(),
            mixed: false,
            count: 0,
            last_at: now,
        });
        batch.mixed |= batch.target != target;
        batch.count += 1;
        batch.last_at = now;
        if now.unix_millis() < window.start + WINDOW_MILLIS {
            return None;
        }
        window.start = now.unix_millis();
        window.batch.take().map(|batch| flush_of(&key, batch, now))
    }

    /// The batches of windows that have closed by `now` (of every window when `everything`, at shutdown).
    /// Windows that closed with nothing pending are forgotten, so idle sources use no memory.
    pub fn due(&self, now: Timestamp, everything: bool) -> Vec<Flush> {
        let Ok(mut windows) = self.windows.lock() else {
            return Vec::new();
        };
        let mut flushes = Vec::new();
        windows.retain(|key, window| {
            if !everything && now.unix_millis() < window.start + WINDOW_MILLIS {
                return true;
            }
            match window.batch.take() {
                Some(batch) => {
                    flushes.push(flush_of(key, batch, now));
                    window.start = now.unix_millis();
                    !everything
                }
                None => false,
            }
        });
        flushes
    }

    /// How many keys are tracked (for tests of the bound).
    #[cfg(test)]
    pub fn tracked_keys(&self) -> usize {
        self.windows
            .lock()
            .map(|windows| windows.len())
            .unwrap_or(0)
    }
}

fn single(attribution: Attribution, action: &str, target: &str, reason: &str) -> Flush {
    Flush {
        first_at: attribution.at,
        last_at: attribution.at,
        attribution,
        action: action.to_owned(),
        target: target.to_owned(),
        reason: reason.to_owned(),
        count: 1,
    }
}

/// The event of a batch, recorded at `now` (the log's times follow its order) with the first refusal's
/// actor, request id and source.
fn flush_of(key: &Key, batch: Batch, now: Timestamp) -> Flush {
    let first_at = batch.attribution.at;
    let mut attribution = batch.attribution;
    attribution.at = now;
    Flush {
        first_at,
        last_at: batch.last_at,
        attribution,
        action: key.action.clone(),
        // A batch over several targets must not pass for refusals of its first target alone.
        target: if batch.mixed {
            format!("{} and others", batch.target)
        } else {
            batch.target
        },
        reason: key.reason.clone(),
        count: batch.count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelgate_core::Actor;

    fn from(addr: &str, millis: i64) -> Attribution {
        Attribution {
            actor: Actor::Anonymous,
            at: Timestamp::from_unix_millis(millis),
            request_id: None,
            client_addr: Some(addr.to_owned()),
        }
    }

    fn counts(flushes: &[Flush]) -> u64 {
        flushes.iter().map(|flush| flush.count).sum()
    }

    #[test]
    fn one_event_per_key_and_window_with_exact_counts() {
        let refusals = Refusals::default();
        let mut written = Vec::new();
        for i in 0..200 {
            written.extend(refusals.note(
                from("10.0.0.1", 1_000 + i),
                "auth.refused",
                "GET /x",
                "bad token",
            ));
        }
        assert_eq!(written.len(), 1, "only the first is written at once");
        assert!(
            refusals
                .due(Timestamp::from_unix_millis(30_000), false)
                .is_empty()
        );
        written.extend(refusals.due(Timestamp::from_unix_millis(61_000), false));
        assert_eq!(written.len(), 2);
        assert_eq!(counts(&written), 200);
        assert_eq!(written[1].first_at, Timestamp::from_unix_millis(1_001));
        assert_eq!(written[1].last_at, Timestamp::from_unix_millis(1_199));
        // The window stays open after a flush, so a steady attacker writes one event per window.
        assert!(
            refusals
                .note(
                    from("10.0.0.1", 62_000),
                    "auth.refused",
                    "GET /x",
                    "bad token"
                )
                .is_none()
        );
        let late = refusals
            .note(
                from("10.0.0.1", 122_000),
                "auth.refused",
                "GET /x",
                "bad token",
            )
            .expect("the next refusal after the window writes the batch");
        assert_eq!(late.count, 2);
        assert!(
            refusals
                .due(Timestamp::from_unix_millis(190_000), false)
                .is_empty()
        );
        assert_eq!(refusals.tracked_keys(), 0, "idle keys are forgotten");
    }

    #[test]
    fn sources_and_reasons_are_counted_apart() {
        let refusals = Refusals::default();
        assert!(
            refusals
                .note(from("10.0.0.1", 0), "auth.refused", "t", "a")
                .is_some()
        );
        assert!(
            refusals
                .note(from("10.0.0.2", 0), "auth.refused", "t", "a")
                .is_some()
        );
        assert!(
            refusals
                .note(from("10.0.0.1", 0), "auth.refused", "t", "b")
                .is_some()
        );
        assert!(
            refusals
                .note(from("10.0.0.1", 1), "auth.refused", "t", "a")
                .is_none()
        );
        assert!(
            refusals
                .note(from("10.0.0.1", 1), "auth.refused", "u", "a")
                .is_none()
        );
        let rest = refusals.due(Timestamp::from_unix_millis(2), true);
        assert_eq!(counts(&rest), 2);
        assert_eq!(rest[0].target, "t and others", "a mixed batch says so");
        assert_eq!(refusals.tracked_keys(), 0, "shutdown flushes everything");
    }

    #[test]
    fn memory_is_bounded_and_overflow_is_still_counted() {
        let refusals = Refusals::default();
        let mut written = Vec::new();
        for i in 0..(MAX_KEYS + 1000) {
            written.extend(refusals.note(
                from(&format!("addr-{i}"), 5),
                "auth.refused",
                "t",
                "bad token",
            ));
        }
        assert!(refusals.tracked_keys() <= MAX_KEYS + 1);
        written.extend(refusals.due(Timestamp::from_unix_millis(6), true));
        assert_eq!(counts(&written), (MAX_KEYS + 1000) as u64);
        assert!(written.len() <= MAX_KEYS + 2);
    }
}
