//! `tidewatch validate`: what start-up would check, without starting, and
//! every problem found rather than the first: the run config, each
//! stream's config and model, and, with the environment, that the broker
//! answers and has the topics.

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use crate::changelog::{ChangelogError, Topics};
use crate::config::RunConfig;
use crate::daemon::client_config;
use crate::models::ModelProvider;
use crate::source::registry::SchemaRegistry;
use crate::streams::StreamRuntime;

/// How long to wait for the broker's answers.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

/// What the config would run, as a report, or every problem it has.
pub fn validate(
    path: &Path,
    models: &dyn ModelProvider,
    environment: bool,
) -> Result<String, Vec<String>> {
    let config = RunConfig::read(path).map_err(|e| vec![e.to_string()])?;
    let mut problems = config.problems();
    let mut report = String::new();
    let _ = writeln!(
        report,
        "{}: brokers {}, group {}, workers {}, HTTP on {}",
        path.display(),
        config.kafka.brokers,
        config.kafka.group_id,
        config.daemon.workers,
        config.http.listen
    );
    for (side, name, value) in config.redacted_properties() {
        let _ = writeln!(report, "  kafka property ({side}) {name} = {value}");
    }
    // The broker's part, when asked for and the brokers answer.
    let topics = if environment {
        let answering =
            Topics::connect(&client_config(&config, &Default::default()), BROKER_TIMEOUT)
                .and_then(|topics| topics.partitions("__tidewatch_validate").map(|_| topics));
        match answering {
            Ok(topics) => Some(topics),
            Err(error) => {
                let reason = match error {
                    ChangelogError::Topic { source, .. } | ChangelogError::Client(source) => {
                        source.to_string()
                    }
                    other => other.to_string(),
                };
                problems.push(format!(
                    "kafka: brokers {} do not answer: {reason}",
                    config.kafka.brokers
                ));
                None
            }
        }
    } else {
        None
    };
    for binding in &config.streams {
        let stream = match StreamRuntime::load(binding, models, config.daemon.max_message_bytes) {
            Ok(stream) => stream,
            Err(error) => {
                problems.push(error.to_string());
                continue;
            }
        };
        let model = &stream.model.reference;
        let _ = writeln!(
            report,
            "stream {}: {} ({}) -> flags {}, dead letters {}, state {}; model {}@{}",
            stream.name,
            binding.input_topic,
            binding.format.name(),
            binding.flags_topic,
            binding.dead_letter_topic,
            binding
                .state_topic
                .as_deref()
                .unwrap_or("none (keys start over on restart)"),
            model.name,
            model.version
        );
        if let (true, Some(registry)) = (environment, &binding.schema_registry)
            && let Err(error) = SchemaRegistry::new(registry).ping()
        {
            problems.push(format!(
                "stream {}: schema registry {} does not answer: {error}",
                stream.name, registry.url
            ));
        }
        let Some(topics) = &topics else {
            continue;
        };
        let partitions = |topic: &str| topics.partitions(topic).unwrap_or(None);
        let input = partitions(&binding.input_topic);
        for (role, topic, found) in [
            ("input", &binding.input_topic, input),
            (
                "flags",
                &binding.flags_topic,
                partitions(&binding.flags_topic),
            ),
            (
                "dead-letter",
                &binding.dead_letter_topic,
                partitions(&binding.dead_letter_topic),
            ),
        ] {
            if found.is_none() {
                problems.push(format!(
                    "stream {}: {role} topic {topic:?} does not exist",
                    stream.name
                ));
            }
        }
        if let (Some(state_topic), Some(expected)) = (&binding.state_topic, input)
            && let Some(found) = partitions(state_topic)
            && found != expected
        {
            problems.push(format!(
                "stream {}: state topic {state_topic:?} has {found} partitions, its input {expected}",
                stream.name
            ));
        }
    }
    if problems.is_empty() {
        Ok(report)
    } else {
        Err(problems)
    }
}
