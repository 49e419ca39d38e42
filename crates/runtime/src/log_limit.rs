//! Repeated errors, logged once per interval with a count: a daemon whose
//! broker is down would otherwise log the same few lines forty times a
//! second (librdkafka's connection errors, the consumer's error events).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;

/// One line per distinct message per interval.
pub const REPEAT_INTERVAL: Duration = Duration::from_secs(30);

/// Which messages were logged when, and how many were held back since.
#[derive(Debug, Default)]
pub struct RepeatLimiter {
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

/// A message's identity: its text with the numbers masked, so that
/// "1/1 brokers are down" and "0/1 brokers are down", or "after 3ms" and
/// "after 5ms", are one message.
fn identity(message: &str) -> String {
    message
        .chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect()
}

impl RepeatLimiter {
    /// Whether to log `message` now, and if so how many of it were held
    /// back since it was last logged.
    pub fn admit(&self, message: &str, now: Instant) -> Option<u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let (logged, held) = match seen.entry(identity(message)) {
            Entry::Vacant(first) => {
                first.insert((now, 0));
                return Some(0);
            }
            Entry::Occupied(seen) => seen.into_mut(),
        };
        if now.duration_since(*logged) < REPEAT_INTERVAL {
            *held += 1;
            return None;
        }
        *logged = now;
        Some(std::mem::take(held))
    }
}

/// The limiter every Kafka client of the daemon shares.
pub static KAFKA_ERRORS: LazyLock<RepeatLimiter> = LazyLock::new(RepeatLimiter::default);

/// Logs a Kafka client's error or warning through [`KAFKA_ERRORS`].
pub fn kafka_problem(level: tracing::Level, message: &str) {
    let Some(repeats) = KAFKA_ERRORS.admit(message, Instant::now()) else {
        return;
    };
    let repeats = match repeats {
        0 => String::new(),
        n => format!(" (and {n} more like it in {} s)", REPEAT_INTERVAL.as_secs()),
    };
    if level == tracing::Level::ERROR {
        tracing::error!(target: "librdkafka", "{message}{repeats}");
    } else {
        tracing::warn!(target: "librdkafka", "{message}{repeats}");
    }
}

/// librdkafka's log and error callbacks, with repeats held back; what
/// is below a warning goes to debug as before.
pub fn client_log(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => kafka_problem(
            tracing::Level::ERROR,
            &format!("librdkafka: {facility} {message}"),
        ),
        RDKafkaLogLevel::Warning => kafka_problem(
            tracing::Level::WARN,
            &format!("librdkafka: {facility} {message}"),
        ),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(target: "librdkafka", "librdkafka: {facility} {message}")
        }
        RDKafkaLogLevel::Debug => {
            tracing::debug!(target: "librdkafka", "librdkafka: {facility} {message}")
        }
    }
}

/// A client's error callback, with repeats held back.
pub fn client_error(error: &KafkaError, reason: &str) {
    kafka_problem(
        tracing::Level::ERROR,
        &format!("librdkafka: {error}: {reason}"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_message_is_admitted_once_per_interval_with_its_count() {
        let limiter = RepeatLimiter::default();
        let start = Instant::now();
        assert_eq!(limiter.admit("1/1 brokers are down", start), Some(0));
        for i in 1..=40 {
            let at = start + Duration::from_millis(25 * i);
            assert_eq!(limiter.admit("0/1 brokers are down", at), None);
        }
        assert_eq!(limiter.admit("another error", start), Some(0));
        let later = start + REPEAT_INTERVAL;
        assert_eq!(limiter.admit("1/1 brokers are down", later), Some(40));
        assert_eq!(limiter.admit("1/1 brokers are down", later), None);
    }
}
