//! The status page an operator opens first: `/` of the HTTP endpoint, one
//! server-rendered HTML page with its style and script inline (no build
//! step, no external assets: it works air-gapped) that refreshes every two
//! seconds from `/api/status`. Per stream: events per second, flags in the
//! last hour, active keys, consumer lag and the model version; the last 50
//! flags with key, time, score and top features; a histogram of scores.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::metrics::Metrics;
use crate::sink::alert::{FeatureShare, Flag, ModelRef};

/// How many recent flags the page lists.
pub const RECENT_FLAGS: usize = 50;
/// The window events per second are measured over.
const RATE_WINDOW: Duration = Duration::from_secs(60);

/// What the page shows, gathered as the daemon runs; cheap to clone.
#[derive(Clone, Default)]
pub struct StatusBoard {
    inner: Arc<Mutex<Board>>,
}

#[derive(Default)]
struct Board {
    started: Option<Instant>,
    streams: BTreeMap<String, StreamBoard>,
    recent: VecDeque<RecentFlag>,
}

struct StreamBoard {
    input_topic: String,
    model: ModelRef,
    /// (minute since start, flags in it), the last hour's.
    flags_by_minute: VecDeque<(u64, u64)>,
    /// (when, events scored so far), the last minute's.
    scored: VecDeque<(Instant, u64)>,
}

/// A flag as the page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct RecentFlag {
    pub stream: String,
    pub key: String,
    pub timestamp: String,
    pub score: f64,
    pub threshold: f64,
    pub model_version: String,
    pub top_features: Vec<FeatureShare>,
}

/// `/api/status`.
#[derive(Debug, Serialize)]
pub struct Status {
    pub streams: Vec<StreamStatus>,
    /// Newest first.
    pub recent_flags: Vec<RecentFlag>,
}

#[derive(Debug, Serialize)]
pub struct StreamStatus {
    pub name: String,
    pub input_topic: String,
    pub model: ModelRef,
    /// Over the last minute (since start, before a minute has passed);
    /// `None` until there is a second sample.
    pub events_per_second: Option<f64>,
    pub events_scored_total: u64,
    pub flags_last_hour: u64,
    pub active_keys: i64,
    pub consumer_lag: i64,
    /// The threshold of the stream's last scored event.
    pub threshold: Option<f64>,
    /// Scores per bucket (not cumulative): `le` is the bucket's upper bound.
    pub score_histogram: Vec<ScoreBucket>,
}

#[derive(Debug, Serialize)]
pub struct ScoreBucket {
    pub le: f64,
    pub count: u64,
}

impl Board {
    fn minute(&mut self, now: Instant) -> u64 {
        let started = *self.started.get_or_insert(now);
        now.saturating_duration_since(started).as_secs() / 60
    }
}

impl StatusBoard {
    /// A stream the daemon runs, with the model it starts with.
    pub fn stream(&self, name: &str, input_topic: &str, model: &ModelRef) {
        let mut board = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        board.started.get_or_insert_with(Instant::now);
        board.streams.insert(
            name.to_owned(),
            StreamBoard {
                input_topic: input_topic.to_owned(),
                model: model.clone(),
                flags_by_minute: VecDeque::new(),
                scored: VecDeque::new(),
            },
        );
    }

    /// `stream` scores with `model` from now on.
    pub fn model(&self, stream: &str, model: &ModelRef) {
        let mut board = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = board.streams.get_mut(stream) {
            s.model = model.clone();
        }
    }

    /// A flag on its way to the flags topic.
    pub fn flag(&self, flag: &Flag) {
        let mut board = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let minute = board.minute(Instant::now());
        if let Some(stream) = board.streams.get_mut(&flag.stream) {
            match stream.flags_by_minute.back_mut() {
                Some((m, count)) if *m == minute => *count += 1,
                _ => stream.flags_by_minute.push_back((minute, 1)),
            }
            while stream
                .flags_by_minute
                .front()
                .is_some_and(|(m, _)| *m + 60 <= minute)
            {
                stream.flags_by_minute.pop_front();
            }
        }
        if board.recent.len() == RECENT_FLAGS {
            board.recent.pop_back();
        }
        board.recent.push_front(RecentFlag {
            stream: flag.stream.clone(),
            key: flag.key.clone(),
            timestamp: flag.timestamp.clone(),
            score: flag.score,
            threshold: flag.threshold,
            model_version: flag.model.version.clone(),
            top_features: flag.top_features.clone(),
        });
    }

    /// What the page shows now.
    pub fn status(&self, metrics: &Metrics) -> Status {
        let now = Instant::now();
        let mut board = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let minute = board.minute(now);
        let started = board.started.unwrap_or(now);
        let streams = board
            .streams
            .iter_mut()
            .map(|(name, stream)| {
                let numbers = metrics.stream_numbers(name, &stream.input_topic);
                stream.scored.push_back((now, numbers.scored_total));
                while stream.scored.len() > 2
                    && stream
                        .scored
                        .get(1)
                        .is_some_and(|(t, _)| now.saturating_duration_since(*t) >= RATE_WINDOW)
                {
                    stream.scored.pop_front();
                }
                let (since, scored_then) = match stream.scored.front() {
                    Some(&(t, n)) if stream.scored.len() > 1 => (t, n),
                    _ => (started, 0),
                };
                let seconds = now.saturating_duration_since(since).as_secs_f64();
                let mut below = 0;
                let score_histogram = numbers
                    .score_buckets
                    .iter()
                    .map(|&(le, cumulative)| {
                        let count = cumulative - below;
                        below = cumulative;
                        ScoreBucket { le, count }
                    })
                    .collect();
                StreamStatus {
                    name: name.clone(),
                    input_topic: stream.input_topic.clone(),
                    model: stream.model.clone(),
                    events_per_second: (seconds >= 1.0)
                        .then(|| (numbers.scored_total - scored_then) as f64 / seconds),
                    events_scored_total: numbers.scored_total,
                    flags_last_hour: stream
                        .flags_by_minute
                        .iter()
                        .filter(|(m, _)| m + 60 > minute)
                        .map(|(_, count)| count)
                        .sum(),
                    active_keys: numbers.active_keys,
                    consumer_lag: numbers.consumer_lag,
                    threshold: numbers.threshold,
                    score_histogram,
                }
            })
            .collect();
        Status {
            streams,
            recent_flags: board.recent.iter().cloned().collect(),
        }
    }
}

/// The page itself: its script fills it from `/api/status`.
pub const PAGE: &str = include_str!("status.html");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::alert::SourceRef;

    fn flag(key: &str, score: f64) -> Flag {
        Flag {
            stream: "pump".into(),
            key: key.into(),
            timestamp: "2024-01-01T00:00:00.000Z".into(),
            timestamp_ms: 0,
            score,
            threshold: 0.85,
            is_anomaly: true,
            model: ModelRef {
                name: "pump".into(),
                version: "v1".into(),
            },
            errors: crate::sink::alert::DetectorErrors {
                forecast: 1.0,
                reconstruction: 1.0,
            },
            top_features: vec![],
            source: SourceRef {
                topic: "in".into(),
                partition: 0,
                offset: 0,
            },
        }
    }

    #[test]
    fn keeps_the_newest_flags_and_counts_the_hour() {
        let board = StatusBoard::default();
        let model = ModelRef {
            name: "pump".into(),
            version: "v1".into(),
        };
        board.stream("pump", "in", &model);
        for i in 0..(RECENT_FLAGS + 5) {
            board.flag(&flag(&format!("k{i}"), 0.9));
        }
        let metrics = Metrics::new();
        metrics.scored("pump", 0.3, Some(0.85));
        metrics.scored("pump", 0.95, Some(0.85));
        let status = board.status(&metrics);
        assert_eq!(status.recent_flags.len(), RECENT_FLAGS);
        assert_eq!(status.recent_flags[0].key, format!("k{}", RECENT_FLAGS + 4));
        let pump = &status.streams[0];
        assert_eq!(pump.flags_last_hour, (RECENT_FLAGS + 5) as u64);
        assert_eq!(pump.events_scored_total, 2);
        let counts: u64 = pump.score_histogram.iter().map(|b| b.count).sum();
        assert_eq!(counts, 2);
        assert_eq!(pump.model.version, "v1");
    }
}
