//! The daemon's one error type, shared by every thread and by start-up.

use tidewatch_stream::config::ConfigError;

/// An error from a model provider (a bundle that cannot be read, say).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("stream {stream}: {source}")]
    Model {
        stream: String,
        #[source]
        source: BoxError,
    },
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("kafka: the broker refuses messages to {topic}: {error}")]
    Delivery {
        topic: String,
        error: rdkafka::error::KafkaError,
    },
    #[error("http: cannot listen on {address}: {message}")]
    Http { address: String, message: String },
    #[error("stream {stream}: schema registry: {message}")]
    Registry { stream: String, message: String },
    #[error(transparent)]
    Changelog(#[from] crate::changelog::ChangelogError),
    #[error("{0}")]
    Thread(String),
}
