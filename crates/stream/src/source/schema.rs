//! The stream schema: which field is the entity key, which is the event
//! time, and which fields become model inputs through which transform.
//!
//! The schema is part of a stream's TOML config and is copied verbatim into
//! every model bundle, so a bundle can refuse input it was not trained on.

use serde::{Deserialize, Serialize};

/// Key used for every record when the schema names no key field: the whole
/// file or topic is then one series.
pub const SINGLE_SERIES_KEY: &str = "default";

/// How a stream's raw fields become a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    /// Stream name, used in metrics, flags and the bundle manifest.
    pub name: String,
    /// Field holding the entity key (account, device). Absent: one series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_field: Option<String>,
    /// Field holding the event time.
    #[serde(default = "default_timestamp_field")]
    pub timestamp_field: String,
    /// How the event time is written.
    #[serde(default)]
    pub timestamp_format: TimestampFormat,
    /// Model inputs, in order.
    pub features: Vec<FeatureSpec>,
}

fn default_timestamp_field() -> String {
    "timestamp".to_owned()
}

/// How an event time is written in the input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TimestampFormat {
    /// RFC 3339, `YYYY-MM-DD HH:MM:SS[.fff]` (read as UTC), or a number of
    /// Unix seconds (below 1e11) or milliseconds.
    #[default]
    Auto,
    /// Unix time in seconds (integer or fractional).
    UnixSecs,
    /// Unix time in milliseconds.
    UnixMs,
    /// A `chrono` strftime pattern, read as UTC when it has no offset.
    Pattern(String),
}

/// One input field and how it becomes model inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    /// Feature name, used in flags ("top contributing features").
    pub name: String,
    /// Input field to read; defaults to `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Transform from the raw field to model inputs.
    #[serde(default)]
    pub transform: Transform,
    /// Categories for `one_hot`; anything else goes to an extra "other" slot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vocabulary: Vec<String>,
    /// Whether the feature's errors are evidence of an anomaly or context
    /// the models only read. Default: context for `hour_of_day` and
    /// `day_of_week` (for a sensor, the calendar explains the readings),
    /// evidence for everything else; a payment at 3 a.m. makes the hour
    /// evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Feed the models, instead of the transformed value, its exponentially
    /// weighted moving average over about this many of the key's events
    /// (span; weight `2 / (span + 1)`): a slower view of a field, on which a
    /// drift or a level that a short window of raw values hides stands out.
    /// `identity` and `log1p` only, next to an unsmoothed feature reading
    /// the same field the same way (its source): the average is scaled by
    /// its source's statistics, in the value's own units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoothing_events: Option<u32>,
}

/// Model inputs that a key's earlier events shape, filled per key (see
/// `state::store::KeyInputs`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyedInputs {
    /// Inputs that take `ln(1 + seconds)` since the key's previous event.
    pub since_previous: Vec<usize>,
    /// Inputs that take a moving average of their value.
    pub smoothed: Vec<Smoothed>,
}

impl KeyedInputs {
    /// For each of `width` inputs, the input whose statistics scale it:
    /// itself, or for a smoothed input its source, so that a moving average
    /// is measured in the units of the value it averages.
    pub fn scaled_by(&self, width: usize) -> Vec<usize> {
        let mut scaled_by: Vec<usize> = (0..width).collect();
        for smoothed in &self.smoothed {
            scaled_by[smoothed.input] = smoothed.source;
        }
        scaled_by
    }
}

/// An input fed the moving average of another's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Smoothed {
    pub input: usize,
    /// The input with the same value unsmoothed, whose statistics scale it.
    pub source: usize,
    /// Weight of each new event in the average.
    pub weight: f64,
}

/// What a feature's errors mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Evidence,
    Context,
}

/// Transforms from a raw field to model inputs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// The number as it is.
    #[default]
    Identity,
    /// `ln(1 + x)`, for amounts and counts; negative input is bad input.
    Log1p,
    /// One input per vocabulary entry plus one for anything else.
    OneHot,
    /// Sine and cosine of the hour of day of the event time (UTC); reads no field.
    HourOfDay,
    /// Sine and cosine of the position in the week (UTC, Monday 00:00 = 0);
    /// reads no field.
    DayOfWeek,
    /// `ln(1 + seconds)` since the same key's previous event (0 for its
    /// first); reads no field.
    SecondsSincePrevious,
}

impl Transform {
    /// Whether the transform reads its own input field (the time-derived
    /// ones read the event time instead).
    pub fn reads_field(self) -> bool {
        !matches!(
            self,
            Transform::HourOfDay | Transform::DayOfWeek | Transform::SecondsSincePrevious
        )
    }

    /// Whether the feature is context by default (the calendar).
    pub fn is_context(self) -> bool {
        matches!(self, Transform::HourOfDay | Transform::DayOfWeek)
    }
}

impl FeatureSpec {
    pub fn is_evidence(&self) -> bool {
        match self.role {
            Some(role) => role == Role::Evidence,
            None => !self.transform.is_context(),
        }
    }

    /// The input field this feature reads.
    pub fn field(&self) -> &str {
        self.field.as_deref().unwrap_or(&self.name)
    }

    /// Number of model inputs this feature expands to.
    pub fn width(&self) -> usize {
        match self.transform {
            Transform::Identity | Transform::Log1p | Transform::SecondsSincePrevious => 1,
            Transform::OneHot => self.vocabulary.len() + 1,
            Transform::HourOfDay | Transform::DayOfWeek => 2,
        }
    }

    /// Names of the model inputs this feature expands to.
    pub fn input_names(&self) -> Vec<String> {
        match self.transform {
            Transform::OneHot => self
                .vocabulary
                .iter()
                .map(|v| format!("{}={v}", self.name))
                .chain(std::iter::once(format!("{}=<other>", self.name)))
                .collect(),
            Transform::HourOfDay | Transform::DayOfWeek => {
                vec![format!("{}_sin", self.name), format!("{}_cos", self.name)]
            }
            _ => vec![self.name.clone()],
        }
    }
}

/// A schema that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SchemaError {
    #[error("schema has no features")]
    NoFeatures,
    #[error(
        "every feature is context (hour_of_day, day_of_week or role = \"context\"): nothing is evidence, so nothing could ever be flagged"
    )]
    NoEvidence,
    #[error("feature name {0:?} is used twice")]
    DuplicateFeature(String),
    #[error("feature {0:?} is one_hot but has an empty vocabulary")]
    EmptyVocabulary(String),
    #[error("feature {0:?} has a vocabulary but is not one_hot")]
    UnexpectedVocabulary(String),
    #[error("feature {0:?} reads field {1:?}, which is also the {2} field")]
    FieldClash(String, String, &'static str),
    #[error(
        "feature {0:?}: smoothing_events must be at least 2 and needs transform identity or log1p, got {1} with {2:?}"
    )]
    BadSmoothing(String, u32, Transform),
    #[error(
        "feature {0:?} is smoothed, but no unsmoothed feature reads field {1:?} with the same transform to scale it by"
    )]
    SmoothingWithoutSource(String, String),
}

impl Schema {
    /// A one-series schema with an identity feature per named column.
    pub fn identity(name: &str, timestamp_field: &str, feature_fields: &[&str]) -> Schema {
        Schema {
            name: name.to_owned(),
            key_field: None,
            timestamp_field: timestamp_field.to_owned(),
            timestamp_format: TimestampFormat::Auto,
            features: feature_fields
                .iter()
                .map(|f| FeatureSpec {
                    name: (*f).to_owned(),
                    field: None,
                    transform: Transform::Identity,
                    smoothing_events: None,
                    vocabulary: Vec::new(),
                    role: None,
                })
                .collect(),
        }
    }

    pub fn validate(&self) -> Result<(), SchemaError> {
        if self.features.is_empty() {
            return Err(SchemaError::NoFeatures);
        }
        let mut seen = std::collections::HashSet::new();
        for feature in &self.features {
            if !seen.insert(feature.name.as_str()) {
                return Err(SchemaError::DuplicateFeature(feature.name.clone()));
            }
            match (feature.transform, feature.vocabulary.is_empty()) {
                (Transform::OneHot, true) => {
                    return Err(SchemaError::EmptyVocabulary(feature.name.clone()));
                }
                (t, false) if t != Transform::OneHot => {
                    return Err(SchemaError::UnexpectedVocabulary(feature.name.clone()));
                }
                _ => {}
            }
            if let Some(span) = feature.smoothing_events
                && (span < 2
                    || !matches!(feature.transform, Transform::Identity | Transform::Log1p))
            {
                return Err(SchemaError::BadSmoothing(
                    feature.name.clone(),
                    span,
                    feature.transform,
                ));
            }
            if feature.smoothing_events.is_some() && self.source_of(feature).is_none() {
                return Err(SchemaError::SmoothingWithoutSource(
                    feature.name.clone(),
                    feature.field().to_owned(),
                ));
            }
            if feature.transform.reads_field() {
                let field = feature.field();
                if field == self.timestamp_field {
                    return Err(SchemaError::FieldClash(
                        feature.name.clone(),
                        field.to_owned(),
                        "timestamp",
                    ));
                }
                if self.key_field.as_deref() == Some(field) {
                    return Err(SchemaError::FieldClash(
                        feature.name.clone(),
                        field.to_owned(),
                        "key",
                    ));
                }
            }
        }
        if !self.features.iter().any(FeatureSpec::is_evidence) {
            return Err(SchemaError::NoEvidence);
        }
        Ok(())
    }

    /// Total number of model inputs.
    pub fn input_width(&self) -> usize {
        self.features.iter().map(FeatureSpec::width).sum()
    }

    /// For each model input, whether its transform leaves it unbounded
    /// (the number itself, its log, the gap since the previous event):
    /// only those can carry an absurd value. One-hot and calendar inputs
    /// lie in [-1, 1] by construction.
    pub fn unbounded_inputs(&self) -> Vec<bool> {
        self.features
            .iter()
            .flat_map(|f| {
                let unbounded = matches!(
                    f.transform,
                    Transform::Identity | Transform::Log1p | Transform::SecondsSincePrevious
                );
                std::iter::repeat_n(unbounded, f.width())
            })
            .collect()
    }

    /// Names of all model inputs, in order.
    pub fn input_names(&self) -> Vec<String> {
        self.features
            .iter()
            .flat_map(FeatureSpec::input_names)
            .collect()
    }

    /// For each model input, the index of the feature it comes from; used to
    /// sum per-input errors into per-feature contributions.
    pub fn input_owner(&self) -> Vec<usize> {
        self.features
            .iter()
            .enumerate()
            .flat_map(|(i, f)| std::iter::repeat_n(i, f.width()))
            .collect()
    }

    /// The model inputs that depend on the key's earlier events (of a
    /// validated schema).
    pub fn keyed_inputs(&self) -> KeyedInputs {
        let mut keyed = KeyedInputs::default();
        let first_inputs = self.first_inputs();
        for (feature, &input) in self.features.iter().zip(&first_inputs) {
            if feature.transform == Transform::SecondsSincePrevious {
                keyed.since_previous.push(input);
            }
            if let Some(span) = feature.smoothing_events {
                let source = self.source_of(feature).expect("validated schema");
                keyed.smoothed.push(Smoothed {
                    input,
                    source: first_inputs[source],
                    weight: 2.0 / (f64::from(span) + 1.0),
                });
            }
        }
        keyed
    }

    /// Each feature's first model input.
    fn first_inputs(&self) -> Vec<usize> {
        self.features
            .iter()
            .scan(0, |next, f| {
                let first = *next;
                *next += f.width();
                Some(first)
            })
            .collect()
    }

    /// The index of the unsmoothed feature that reads a smoothed feature's
    /// field the same way.
    fn source_of(&self, smoothed: &FeatureSpec) -> Option<usize> {
        self.features.iter().position(|f| {
            f.smoothing_events.is_none()
                && f.transform == smoothed.transform
                && f.transform.reads_field()
                && f.field() == smoothed.field()
        })
    }

    /// For each model input, whether its errors count as evidence.
    pub fn measured_inputs(&self) -> Vec<bool> {
        self.features
            .iter()
            .flat_map(|f| std::iter::repeat_n(f.is_evidence(), f.width()))
            .collect()
    }

    /// Fields the input must have: key, timestamp and every field a feature reads.
    pub fn required_fields(&self) -> Vec<&str> {
        let mut fields: Vec<&str> = self.key_field.iter().map(String::as_str).collect();
        fields.push(&self.timestamp_field);
        fields.extend(
            self.features
                .iter()
                .filter(|f| f.transform.reads_field())
                .map(FeatureSpec::field),
        );
        fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Schema {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn expands_features_into_named_inputs() {
        let schema = parse(
            r#"
            name = "payments"
            key_field = "account"
            timestamp_field = "ts"
            [[features]]
            name = "amount"
            transform = "log1p"
            [[features]]
            name = "country"
            transform = "one_hot"
            vocabulary = ["FR", "DE"]
            [[features]]
            name = "hour"
            transform = "hour_of_day"
            [[features]]
            name = "gap"
            transform = "seconds_since_previous"
            [[features]]
            name = "week"
            transform = "day_of_week"
            role = "evidence"
            "#,
        );
        schema.validate().unwrap();
        assert_eq!(schema.input_width(), 1 + 3 + 2 + 1 + 2);
        assert_eq!(
            schema.input_names(),
            [
                "amount",
                "country=FR",
                "country=DE",
                "country=<other>",
                "hour_sin",
                "hour_cos",
                "gap",
                "week_sin",
                "week_cos"
            ]
        );
        assert_eq!(schema.input_owner(), [0, 1, 1, 1, 2, 2, 3, 4, 4]);
        assert_eq!(
            schema.keyed_inputs(),
            KeyedInputs {
                since_previous: vec![6],
                smoothed: vec![]
            }
        );
        assert_eq!(
            schema.measured_inputs(),
            [true, true, true, true, false, false, true, true, true]
        );
        assert_eq!(
            schema.required_fields(),
            ["account", "ts", "amount", "country"]
        );
    }

    #[test]
    fn a_smoothed_feature_reads_a_numeric_field() {
        let text = |transform: &str, span: u32| {
            format!(
                r#"
                name = "sensors"
                [[features]]
                name = "level"
                [[features]]
                name = "level_slow"
                field = "level"
                transform = "{transform}"
                smoothing_events = {span}
                "#
            )
        };
        let schema = parse(&text("identity", 9));
        schema.validate().unwrap();
        assert_eq!(
            schema.keyed_inputs(),
            KeyedInputs {
                since_previous: vec![],
                smoothed: vec![Smoothed {
                    input: 1,
                    source: 0,
                    weight: 0.2
                }]
            }
        );
        for (transform, span) in [("identity", 1), ("one_hot", 9), ("hour_of_day", 9)] {
            let mut schema = parse(&text(transform, span));
            if transform == "one_hot" {
                schema.features[1].vocabulary = vec!["a".into()];
            }
            assert!(
                matches!(schema.validate(), Err(SchemaError::BadSmoothing(..))),
                "{transform} {span}"
            );
        }
        // The source reads the field the same way: log1p averages need a
        // log1p source.
        assert_eq!(
            parse(&text("log1p", 9)).validate(),
            Err(SchemaError::SmoothingWithoutSource(
                "level_slow".into(),
                "level".into()
            ))
        );
    }

    #[test]
    fn refuses_inconsistent_schemas() {
        let mut schema = Schema::identity("s", "timestamp", &["a", "a"]);
        assert_eq!(
            schema.validate(),
            Err(SchemaError::DuplicateFeature("a".into()))
        );
        schema.features.pop();
        schema.features[0].transform = Transform::OneHot;
        assert_eq!(
            schema.validate(),
            Err(SchemaError::EmptyVocabulary("a".into()))
        );
        let clash = Schema::identity("s", "a", &["a"]);
        assert!(matches!(clash.validate(), Err(SchemaError::FieldClash(..))));
        assert!(toml::from_str::<Schema>("name='x'\nfeatures=[]\nbogus=1").is_err());
    }
}
