//! The flag: what tidewatch publishes for an anomaly, one JSON object per
//! Kafka message, keyed by the entity key.
//!
//! ```json
//! {
//!   "stream": "pump", "key": "pump-3",
//!   "timestamp": "2024-01-01T20:07:00.000Z", "timestamp_ms": 1704139620000,
//!   "score": 0.905, "threshold": 0.85, "is_anomaly": true,
//!   "model": { "name": "pump", "version": "4f2a9c01b7e3" },
//!   "errors": { "forecast": 2.31, "reconstruction": 0.88 },
//!   "top_features": [ { "feature": "pressure", "share": 0.54 }, { "feature": "temperature", "share": 0.46 } ],
//!   "source": { "topic": "sensor-readings", "partition": 2, "offset": 18734 }
//! }
//! ```

use serde::{Deserialize, Serialize};

use tidewatch_stream::pipeline::Verdict;

use crate::source::registry::WireEncoder;

/// The Avro schema of a flag, for streams with `flags_format = "avro"`.
pub const FLAG_AVRO_SCHEMA: &str = include_str!("flag.avsc");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    pub stream: String,
    pub key: String,
    /// Event time, RFC 3339 UTC with milliseconds.
    pub timestamp: String,
    pub timestamp_ms: i64,
    pub score: f64,
    pub threshold: f64,
    pub is_anomaly: bool,
    pub model: ModelRef,
    pub errors: DetectorErrors,
    pub top_features: Vec<FeatureShare>,
    pub source: SourceRef,
}

/// The model that scored the event: the bundle's name and version, or
/// version `online` for keys that learned online.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRef {
    pub name: String,
    pub version: String,
}

/// Each detector's RMSE, in standard deviations of the scaled inputs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DetectorErrors {
    pub forecast: f64,
    pub reconstruction: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureShare {
    pub feature: String,
    /// Share of the event's error, in [0, 1].
    pub share: f64,
}

/// Where the flagged event was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl Flag {
    /// The flag for a scored verdict.
    pub fn new(
        stream: &str,
        key: &str,
        timestamp_ms: i64,
        verdict: &Verdict,
        model: ModelRef,
        source: SourceRef,
    ) -> Flag {
        let [forecast, reconstruction] = verdict.errors.unwrap_or([f64::NAN; 2]);
        Flag {
            stream: stream.to_owned(),
            key: key.to_owned(),
            timestamp: chrono::DateTime::from_timestamp_millis(timestamp_ms)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default(),
            timestamp_ms,
            score: verdict.score,
            threshold: verdict.threshold.unwrap_or(f64::NAN),
            is_anomaly: verdict.is_anomaly,
            model,
            errors: DetectorErrors {
                forecast,
                reconstruction,
            },
            top_features: verdict
                .top_features
                .iter()
                .map(|c| FeatureShare {
                    feature: c.feature.clone(),
                    share: c.share,
                })
                .collect(),
            source,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a flag serialises")
    }

    /// The flag in the wire format of the Avro schema [`FLAG_AVRO_SCHEMA`]
    /// that `encoder` registered.
    pub fn to_avro(&self, encoder: &WireEncoder) -> Vec<u8> {
        let value = serde_json::to_value(self).expect("a flag serialises");
        encoder.encode(&value).expect("a flag fits the flag schema")
    }
}
