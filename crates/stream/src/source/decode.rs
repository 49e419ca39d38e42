//! Raw fields -> [`Record`]: key, event time and model inputs, by a [`Schema`].
//!
//! Decoding is stateless; the one per-key transform (seconds since the key's
//! previous event) is filled in later by the key's state.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

use super::schema::{FeatureSpec, SINGLE_SERIES_KEY, Schema, TimestampFormat, Transform};

/// One decoded event.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Entity key (account, device), or [`SINGLE_SERIES_KEY`].
    pub key: String,
    /// Event time, Unix milliseconds.
    pub timestamp_ms: i64,
    /// Model inputs in schema order, before scaling. Slots of
    /// `seconds_since_previous` features hold 0 until the key state fills them.
    pub inputs: Vec<f32>,
}

/// A field value as the input format holds it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'a> {
    Text(&'a str),
    Number(f64),
    /// JSON `null`, or an empty CSV cell.
    Null,
}

/// Read access to one raw row, whatever its format.
pub trait Fields {
    fn get(&self, name: &str) -> Option<FieldValue<'_>>;
}

impl Fields for serde_json::Map<String, serde_json::Value> {
    fn get(&self, name: &str) -> Option<FieldValue<'_>> {
        use serde_json::Value;
        Some(match self.get(name)? {
            Value::String(s) => FieldValue::Text(s),
            Value::Number(n) => n.as_f64().map_or(FieldValue::Null, FieldValue::Number),
            Value::Null => FieldValue::Null,
            Value::Bool(b) => FieldValue::Number(f64::from(u8::from(*b))),
            Value::Array(_) | Value::Object(_) => FieldValue::Text("<nested value>"),
        })
    }
}

/// Why one field could not be decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FieldErrorKind {
    #[error("missing")]
    Missing,
    #[error("empty")]
    Empty,
    #[error("not a number: {0:?}")]
    NotNumeric(String),
    #[error("not finite: {0}")]
    NotFinite(f64),
    #[error("{0:e} is beyond the largest input a model takes (about 3.4e38)")]
    OutOfRange(f64),
    #[error("negative value {0} for log1p")]
    NegativeForLog(f64),
    #[error("not a timestamp: {0:?}")]
    BadTimestamp(String),
    #[error("timestamp {0} is outside the years 0 to 9999")]
    TimestampOutOfRange(String),
}

/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z in Unix milliseconds:
/// the event times a timestamp can name and an output can print.
pub const MIN_TIMESTAMP_MS: i64 = -62_167_219_200_000;
pub const MAX_TIMESTAMP_MS: i64 = 253_402_300_799_999;

/// Longest quote of input a message carries: a 10 MB line is named, not
/// echoed.
pub const EXCERPT_CHARS: usize = 200;

/// `text` as a message quotes it: whole when short, else its first
/// [`EXCERPT_CHARS`] characters and its length.
pub fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}... ({} bytes)", &text[..end], text.len()),
    }
}

/// A field of a row that could not be decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("column {column:?}: {kind}")]
pub struct FieldError {
    pub column: String,
    pub kind: FieldErrorKind,
}

impl FieldError {
    fn new(column: &str, kind: FieldErrorKind) -> FieldError {
        FieldError {
            column: column.to_owned(),
            kind,
        }
    }

    /// Short stable reason, for counters and dead-letter headers.
    pub fn reason(&self) -> &'static str {
        match self.kind {
            FieldErrorKind::Missing | FieldErrorKind::Empty => "missing_field",
            FieldErrorKind::NotNumeric(_) => "not_numeric",
            FieldErrorKind::NotFinite(_)
            | FieldErrorKind::OutOfRange(_)
            | FieldErrorKind::NegativeForLog(_) => "bad_value",
            FieldErrorKind::BadTimestamp(_) | FieldErrorKind::TimestampOutOfRange(_) => {
                "bad_timestamp"
            }
        }
    }
}

/// Turns raw rows into records by a schema.
#[derive(Debug, Clone)]
pub struct Decoder {
    schema: Schema,
    width: usize,
}

impl Decoder {
    pub fn new(schema: Schema) -> Decoder {
        let width = schema.input_width();
        Decoder { schema, width }
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    pub fn decode(&self, fields: &impl Fields) -> Result<Record, FieldError> {
        self.decode_with(fields, None, None)
    }

    /// Decodes with the key and/or event time given from outside the fields
    /// (a Kafka message's key and timestamp) instead of read from them.
    pub fn decode_with(
        &self,
        fields: &impl Fields,
        key: Option<String>,
        timestamp_ms: Option<i64>,
    ) -> Result<Record, FieldError> {
        let key = match (key, &self.schema.key_field) {
            (Some(key), _) => key,
            (None, None) => SINGLE_SERIES_KEY.to_owned(),
            (None, Some(field)) => match fields.get(field) {
                Some(FieldValue::Text(s)) if !s.is_empty() => s.to_owned(),
                Some(FieldValue::Number(n)) => n.to_string(),
                Some(_) => return Err(FieldError::new(field, FieldErrorKind::Empty)),
                None => return Err(FieldError::new(field, FieldErrorKind::Missing)),
            },
        };
        let ts_field = &self.schema.timestamp_field;
        let timestamp_ms = match (timestamp_ms, fields.get(ts_field)) {
            (Some(t), _) => t,
            (None, None) => return Err(FieldError::new(ts_field, FieldErrorKind::Missing)),
            (None, Some(value)) => parse_timestamp(value, &self.schema.timestamp_format)
                .map_err(|kind| FieldError::new(ts_field, kind))?,
        };
        let mut inputs = Vec::with_capacity(self.width);
        for feature in &self.schema.features {
            push_inputs(feature, fields, timestamp_ms, &mut inputs)?;
        }
        Ok(Record {
            key,
            timestamp_ms,
            inputs,
        })
    }
}

fn push_inputs(
    feature: &FeatureSpec,
    fields: &impl Fields,
    timestamp_ms: i64,
    inputs: &mut Vec<f32>,
) -> Result<(), FieldError> {
    let field = feature.field();
    let fail = |kind| FieldError::new(field, kind);
    match feature.transform {
        Transform::Identity => {
            inputs.push(model_input(number(fields.get(field)).map_err(fail)?).map_err(fail)?)
        }
        Transform::Log1p => {
            let x = number(fields.get(field)).map_err(fail)?;
            if x < 0.0 {
                return Err(fail(FieldErrorKind::NegativeForLog(x)));
            }
            inputs.push(x.ln_1p() as f32);
        }
        Transform::OneHot => {
            let category = match fields.get(field) {
                Some(FieldValue::Text(s)) => s.to_owned(),
                Some(FieldValue::Number(n)) => n.to_string(),
                Some(FieldValue::Null) => return Err(fail(FieldErrorKind::Empty)),
                None => return Err(fail(FieldErrorKind::Missing)),
            };
            let hot = feature
                .vocabulary
                .iter()
                .position(|v| *v == category)
                .unwrap_or(feature.vocabulary.len());
            inputs.extend((0..feature.width()).map(|i| if i == hot { 1.0 } else { 0.0 }));
        }
        Transform::HourOfDay => inputs.extend(phase(timestamp_ms, DAY_MS, 0)),
        Transform::DayOfWeek => inputs.extend(phase(timestamp_ms, 7 * DAY_MS, MONDAY_OFFSET_MS)),
        Transform::SecondsSincePrevious => inputs.push(0.0),
    }
    Ok(())
}

const DAY_MS: i64 = 86_400_000;
/// The Unix epoch fell on a Thursday: the first Monday 00:00 is 4 days later.
const MONDAY_OFFSET_MS: i64 = 4 * DAY_MS;

/// Sine and cosine of the time's position in a cycle of `period_ms`.
fn phase(timestamp_ms: i64, period_ms: i64, offset_ms: i64) -> [f32; 2] {
    let position = (timestamp_ms - offset_ms).rem_euclid(period_ms) as f64 / period_ms as f64;
    let angle = std::f64::consts::TAU * position;
    [angle.sin() as f32, angle.cos() as f32]
}

/// `x` as a model input: single precision, so a finite value past `f32`'s
/// range would arrive as an infinity and poison every statistic it meets.
fn model_input(x: f64) -> Result<f32, FieldErrorKind> {
    let input = x as f32;
    if input.is_finite() {
        Ok(input)
    } else {
        Err(FieldErrorKind::OutOfRange(x))
    }
}

fn number(value: Option<FieldValue<'_>>) -> Result<f64, FieldErrorKind> {
    let x = match value {
        None => return Err(FieldErrorKind::Missing),
        Some(FieldValue::Null) => return Err(FieldErrorKind::Empty),
        Some(FieldValue::Number(x)) => x,
        Some(FieldValue::Text(s)) => {
            let s = s.trim();
            if s.is_empty() {
                return Err(FieldErrorKind::Empty);
            }
            s.parse::<f64>()
                .map_err(|_| FieldErrorKind::NotNumeric(excerpt(s)))?
        }
    };
    if x.is_finite() {
        Ok(x)
    } else {
        Err(FieldErrorKind::NotFinite(x))
    }
}

/// Parses an event time into Unix milliseconds.
pub fn parse_timestamp(
    value: FieldValue<'_>,
    format: &TimestampFormat,
) -> Result<i64, FieldErrorKind> {
    let bad = |s: &str| FieldErrorKind::BadTimestamp(excerpt(s));
    // `text` is the number as written, for the message.
    let from_number = |x: f64, format: &TimestampFormat, text: &str| {
        if !x.is_finite() {
            return Err(FieldErrorKind::NotFinite(x));
        }
        let ms = match format {
            TimestampFormat::UnixMs => x,
            TimestampFormat::Auto if x.abs() >= 1e11 => x,
            _ => x * 1000.0,
        };
        if (MIN_TIMESTAMP_MS as f64..=MAX_TIMESTAMP_MS as f64).contains(&ms) {
            Ok(ms.round() as i64)
        } else {
            Err(FieldErrorKind::TimestampOutOfRange(excerpt(text)))
        }
    };
    match (value, format) {
        (FieldValue::Null, _) => Err(FieldErrorKind::Empty),
        (FieldValue::Number(x), TimestampFormat::Pattern(_)) => Err(bad(&x.to_string())),
        (FieldValue::Number(x), format) => from_number(x, format, &x.to_string()),
        (FieldValue::Text(s), format) => {
            let s = s.trim();
            match format {
                TimestampFormat::UnixMs | TimestampFormat::UnixSecs | TimestampFormat::Auto
                    if s.parse::<f64>().is_ok() =>
                {
                    from_number(s.parse().unwrap_or(f64::NAN), format, s)
                }
                TimestampFormat::Auto => parse_date_text(s).ok_or_else(|| bad(s)),
                TimestampFormat::Pattern(pattern) => {
                    parse_with_pattern(s, pattern).ok_or_else(|| bad(s))
                }
                TimestampFormat::UnixMs | TimestampFormat::UnixSecs => Err(bad(s)),
            }
        }
    }
}

fn parse_date_text(s: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|p| NaiveDateTime::parse_from_str(s, p).ok())
    .map(|t| Utc.from_utc_datetime(&t).timestamp_millis())
}

fn parse_with_pattern(s: &str, pattern: &str) -> Option<i64> {
    DateTime::parse_from_str(s, pattern)
        .map(|t| t.timestamp_millis())
        .or_else(|_| {
            NaiveDateTime::parse_from_str(s, pattern)
                .map(|t| Utc.from_utc_datetime(&t).timestamp_millis())
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payments() -> Decoder {
        let schema: Schema = toml::from_str(
            r#"
            name = "payments"
            key_field = "account"
            [[features]]
            name = "amount"
            transform = "log1p"
            [[features]]
            name = "channel"
            transform = "one_hot"
            vocabulary = ["web", "pos"]
            [[features]]
            name = "hour"
            transform = "hour_of_day"
            [[features]]
            name = "gap"
            transform = "seconds_since_previous"
            "#,
        )
        .unwrap();
        Decoder::new(schema)
    }

    fn object(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn decodes_every_transform() {
        let row = object(json!({
            "account": "a1", "timestamp": "2024-01-01T06:00:00Z",
            "amount": "99", "channel": "atm"
        }));
        let record = payments().decode(&row).unwrap();
        assert_eq!(record.key, "a1");
        assert_eq!(record.timestamp_ms, 1_704_088_800_000);
        let expected = [100f32.ln(), 0.0, 0.0, 1.0, 1.0, 0.0, 0.0];
        for (got, want) in record.inputs.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{:?}", record.inputs);
        }
    }

    #[test]
    fn names_the_bad_column() {
        let decoder = payments();
        let cases = [
            (
                json!({"account": "a", "timestamp": 1, "channel": "web"}),
                "amount",
                FieldErrorKind::Missing,
            ),
            (
                json!({"account": "a", "timestamp": 1, "amount": "x1", "channel": "web"}),
                "amount",
                FieldErrorKind::NotNumeric("x1".into()),
            ),
            (
                json!({"account": "a", "timestamp": 1, "amount": -3, "channel": "web"}),
                "amount",
                FieldErrorKind::NegativeForLog(-3.0),
            ),
            (
                json!({"account": "a", "timestamp": "noon", "amount": 1, "channel": "web"}),
                "timestamp",
                FieldErrorKind::BadTimestamp("noon".into()),
            ),
            (
                json!({"timestamp": 1, "amount": 1, "channel": "web"}),
                "account",
                FieldErrorKind::Missing,
            ),
            (
                json!({"account": "a", "timestamp": 1, "amount": null, "channel": "web"}),
                "amount",
                FieldErrorKind::Empty,
            ),
        ];
        for (row, column, kind) in cases {
            let err = decoder.decode(&object(row)).unwrap_err();
            assert_eq!((err.column.as_str(), err.kind), (column, kind));
        }
        // Finite, but infinite once it is an f32 model input.
        let sensor: Schema = toml::from_str("name = 's'\nfeatures = [{ name = 'v' }]").unwrap();
        let cases = [
            (
                json!({"timestamp": 1, "v": 1e39}),
                FieldErrorKind::OutOfRange(1e39),
            ),
            (
                json!({"timestamp": 1, "v": "-1e308"}),
                FieldErrorKind::OutOfRange(-1e308),
            ),
        ];
        for (row, kind) in cases {
            let err = Decoder::new(sensor.clone())
                .decode(&object(row))
                .unwrap_err();
            assert_eq!(err.reason(), "bad_value");
            assert_eq!((err.column.as_str(), err.kind), ("v", kind));
        }
        let fine = object(json!({"timestamp": 1, "v": 3e38}));
        assert_eq!(
            Decoder::new(sensor).decode(&fine).unwrap().inputs,
            [3e38f32]
        );
    }

    #[test]
    fn calendar_phases_start_at_midnight_and_monday() {
        let monday_midnight = 1_704_067_200_000; // 2024-01-01T00:00:00Z, a Monday
        assert_eq!(phase(monday_midnight, DAY_MS, 0), [0.0, 1.0]);
        assert_eq!(
            phase(monday_midnight, 7 * DAY_MS, MONDAY_OFFSET_MS),
            [0.0, 1.0]
        );
        let [sin, cos] = phase(monday_midnight + 6 * 3_600_000, DAY_MS, 0);
        assert!((sin - 1.0).abs() < 1e-6 && cos.abs() < 1e-6);
    }

    #[test]
    fn reads_the_usual_timestamp_shapes() {
        let auto = TimestampFormat::Auto;
        let t = |s| parse_timestamp(FieldValue::Text(s), &auto).unwrap();
        assert_eq!(t("2014-04-01 00:05:00"), 1_396_310_700_000);
        assert_eq!(t("2014-04-01 00:05:00.000000"), 1_396_310_700_000);
        assert_eq!(t("2014-04-01T02:05:00+02:00"), 1_396_310_700_000);
        assert_eq!(t("1396310700"), 1_396_310_700_000);
        assert_eq!(t("1396310700000"), 1_396_310_700_000);
        let pattern = TimestampFormat::Pattern("%d/%m/%Y %H:%M".into());
        assert_eq!(
            parse_timestamp(FieldValue::Text("01/04/2014 00:05"), &pattern),
            Ok(1_396_310_700_000)
        );
    }
}
