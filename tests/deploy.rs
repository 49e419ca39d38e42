//! The deployment files under `deploy/` and `docker-compose.yml`, checked
//! with the real tools: Debian's `docker-compose config` (no Docker engine
//! runs here), `promtool check` and `promtool test rules`, a real Prometheus
//! server running the shipped scrape config and rules against a daemon on
//! the real broker fed by the simulator, and the Kubernetes manifests and
//! compose file against the daemon's own config types.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_yaml::Value;
use tidewatch::models::LearnedModels;
use tidewatch_runtime::config::RunConfig;
use tidewatch_runtime::daemon;
use tidewatch_runtime::metrics::Metrics;
use tidewatch_stream::config::StreamConfig;

use support::{
    FLAG_EVERY_EVENT_STREAM, Nisshi, PrometheusServer, flush, producer, prometheus_binary,
    run_config, send,
};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn yaml(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(repo(path)).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| Value::deserialize(document).unwrap())
        .collect()
}

/// Runs a tool and fails with its output (or with how to install it).
fn run_tool(program: &Path, args: &[&str], install: &str) {
    let output = Command::new(program)
        .args(args)
        .current_dir(repo(""))
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}; install it with `{install}`", program.display()));
    assert!(
        output.status.success(),
        "{} {}:\n{}{}",
        program.display(),
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The daemon config as the container sees it: stream configs at
/// /etc/tidewatch/examples are the repository's examples/ (the Dockerfile
/// copies them there), and each must load.
fn check_daemon_config(text: &str, origin: &str) -> RunConfig {
    let config: RunConfig = toml::from_str(text).unwrap_or_else(|e| panic!("{origin}: {e}"));
    config
        .validate()
        .unwrap_or_else(|e| panic!("{origin}: {e}"));
    for stream in &config.streams {
        let in_image = stream.config.to_str().unwrap();
        let file = in_image
            .strip_prefix("/etc/tidewatch/examples/")
            .unwrap_or_else(|| panic!("{origin}: {in_image} is not in the image"));
        StreamConfig::load(&repo("examples").join(file))
            .unwrap_or_else(|e| panic!("{origin}: {in_image}: {e}"));
    }
    config
}

/// "40s", "1m30s" or a number of seconds.
fn seconds(duration: &Value) -> u64 {
    match duration {
        Value::Number(n) => n.as_u64().unwrap(),
        Value::String(s) => {
            let (mut total, mut number) = (0, String::new());
            for c in s.chars() {
                if c.is_ascii_digit() {
                    number.push(c);
                } else {
                    let n: u64 = std::mem::take(&mut number).parse().unwrap();
                    total += n * match c {
                        'h' => 3600,
                        'm' => 60,
                        's' => 1,
                        other => panic!("unit {other} in {s}"),
                    };
                }
            }
            total
        }
        other => panic!("not a duration: {other:?}"),
    }
}

#[test]
fn the_compose_file_is_valid_and_matches_the_daemon_config() {
    run_tool(
        Path::new("docker-compose"),
        &["-f", "docker-compose.yml", "config", "-q"],
        "sudo apt-get install docker-compose",
    );
    let compose = &yaml("docker-compose.yml")[0];
    let tidewatch = &compose["services"]["tidewatch"];
    assert_eq!(
        tidewatch["build"]["dockerfile"].as_str(),
        Some("deploy/docker/Dockerfile")
    );
    assert!(repo("deploy/docker/Dockerfile").is_file());
    let mount = tidewatch["volumes"][0].as_str().unwrap();
    let (host, in_container) = mount.split_once(':').unwrap();
    assert!(
        in_container.starts_with("/etc/tidewatch/run.toml"),
        "{mount}"
    );
    let config = check_daemon_config(&std::fs::read_to_string(repo(host)).unwrap(), host);
    assert!(
        seconds(&tidewatch["stop_grace_period"]) > config.daemon.shutdown_timeout_secs,
        "stop_grace_period must outlast shutdown_timeout_secs"
    );
    let port = config.http.listen.rsplit(':').next().unwrap();
    let scrape = std::fs::read_to_string(repo("deploy/prometheus/prometheus.yml")).unwrap();
    assert!(
        scrape.contains(&format!("tidewatch:{port}")),
        "scrape target port"
    );
    let dockerfile = std::fs::read_to_string(repo("deploy/docker/Dockerfile")).unwrap();
    // No Docker engine runs here: at least the build stage must copy
    // everything the workspace's manifest names, and the shipped prior
    // the binary embeds.
    for path in ["src", "crates", "benches", "examples", "models"] {
        assert!(
            dockerfile.contains(&format!("\nCOPY {path} {path}\n")),
            "the Dockerfile's build stage does not copy {path}/"
        );
    }
    assert!(dockerfile.contains(&format!("127.0.0.1:{port}/healthz")));
    assert!(
        dockerfile.contains("\nUSER tidewatch\n"),
        "runs as a non-root user"
    );
}

#[test]
fn promtool_accepts_the_config_and_rules_and_every_alert_test_passes() {
    let promtool = prometheus_binary("promtool");
    let install = support::PROMETHEUS_INSTALL;
    run_tool(
        &promtool,
        &["check", "config", "deploy/prometheus/prometheus.yml"],
        install,
    );
    run_tool(
        &promtool,
        &[
            "check",
            "rules",
            "deploy/prometheus/rules/recording.yml",
            "deploy/prometheus/rules/alerts.yml",
        ],
        install,
    );
    run_tool(
        &promtool,
        &["test", "rules", "deploy/prometheus/tests/alerts_test.yml"],
        install,
    );
    // Every alert has a test that fires it and one that does not.
    let alerts: Vec<String> = yaml("deploy/prometheus/rules/alerts.yml")[0]["groups"][0]["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|rule| rule["alert"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(alerts.len(), 9);
    let tests = &yaml("deploy/prometheus/tests/alerts_test.yml")[0]["tests"];
    for alert in &alerts {
        let cases: Vec<bool> = tests
            .as_sequence()
            .unwrap()
            .iter()
            .flat_map(|test| test["alert_rule_test"].as_sequence().unwrap())
            .filter(|case| case["alertname"].as_str() == Some(alert))
            .map(|case| !case["exp_alerts"].as_sequence().unwrap().is_empty())
            .collect();
        assert!(
            cases.contains(&true) && cases.contains(&false),
            "{alert}: needs a firing and a quiet test"
        );
    }
}

const KUBERNETES_VALIDATE_INSTALL: &str = "python3 -m pip install --target DIR kubernetes-validate==1.37.0, then TIDEWATCH_KUBERNETES_VALIDATE=DIR (scripts/test.sh does this)";

#[test]
fn the_kubernetes_manifests_pass_the_kubernetes_schemas() {
    let packages = std::env::var_os("TIDEWATCH_KUBERNETES_VALIDATE").unwrap_or_else(|| {
        panic!("TIDEWATCH_KUBERNETES_VALIDATE is not set: {KUBERNETES_VALIDATE_INSTALL}")
    });
    let output = Command::new("python3")
        .args(["-m", "kubernetes_validate", "--strict"])
        .args([
            "deploy/k8s/configmap.yaml",
            "deploy/k8s/deployment.yaml",
            "deploy/k8s/service.yaml",
        ])
        .env("PYTHONPATH", &packages)
        .current_dir(repo(""))
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}; {KUBERNETES_VALIDATE_INSTALL}"));
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !report.contains("No module named"),
        "kubernetes-validate is missing: {KUBERNETES_VALIDATE_INSTALL}"
    );
    assert!(output.status.success(), "{report}");
    assert_eq!(
        report.matches(" passed for resource ").count(),
        3,
        "{report}"
    );
}

#[test]
fn the_kubernetes_manifests_match_the_daemon_config() {
    let find = |kind: &str| -> Value {
        ["configmap.yaml", "deployment.yaml", "service.yaml"]
            .iter()
            .flat_map(|f| yaml(&format!("deploy/k8s/{f}")))
            .find(|doc| doc["kind"].as_str() == Some(kind))
            .unwrap_or_else(|| panic!("no {kind} in deploy/k8s"))
    };
    let (config_map, deployment, service) =
        (find("ConfigMap"), find("Deployment"), find("Service"));
    for doc in [&config_map, &deployment, &service] {
        assert!(doc["apiVersion"].is_string() && doc["metadata"]["name"].is_string());
    }
    let config = check_daemon_config(
        config_map["data"]["run.toml"].as_str().unwrap(),
        "deploy/k8s/configmap.yaml",
    );
    let port: u64 = config
        .http
        .listen
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();

    let pod = &deployment["spec"]["template"]["spec"];
    assert!(
        pod["terminationGracePeriodSeconds"].as_u64().unwrap()
            > config.daemon.shutdown_timeout_secs,
        "the grace period must outlast shutdown_timeout_secs"
    );
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert_eq!(&deployment["spec"]["selector"]["matchLabels"], labels);
    assert_eq!(&service["spec"]["selector"], labels);
    let container = &pod["containers"][0];
    let named_port = &container["ports"][0];
    assert_eq!(named_port["containerPort"].as_u64(), Some(port));
    let port_name = named_port["name"].as_str().unwrap();
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"].as_str(), Some(path), "{probe}");
        assert_eq!(get["port"].as_str(), Some(port_name), "{probe}");
    }
    let requests = &container["resources"]["requests"];
    assert!(requests["cpu"].is_string() && requests["memory"].is_string());
    // The config file the container is told to read is the ConfigMap's.
    let mount = &container["volumeMounts"][0];
    let volume = pod["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    assert_eq!(volume["configMap"]["name"], config_map["metadata"]["name"]);
    let args: Vec<&str> = container["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let config_path = format!("{}/run.toml", mount["mountPath"].as_str().unwrap());
    assert_eq!(args, ["run", "--config", config_path.as_str()]);
    assert_eq!(
        service["spec"]["ports"][0]["targetPort"].as_str(),
        Some(port_name)
    );
    assert_eq!(service["spec"]["ports"][0]["port"].as_u64(), Some(port));

    let unit = std::fs::read_to_string(repo("deploy/systemd/tidewatch.service")).unwrap();
    let stop: u64 = unit
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(stop > config.daemon.shutdown_timeout_secs);
}

struct Simulator(Child);

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Every query of every dashboard panel, with the stream variable set to
/// all streams and Grafana's rate interval to a few scrapes.
fn dashboard_queries() -> Vec<(String, String)> {
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo("deploy/grafana/dashboards/tidewatch.json")).unwrap(),
    )
    .unwrap();
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$stream", ".+")
                .replace("$__rate_interval", "20s");
            queries.push((panel["title"].as_str().unwrap().to_owned(), expr));
        }
    }
    queries
}

#[test]
fn every_dashboard_panel_has_data_in_a_real_prometheus() {
    let prometheus = prometheus_binary("prometheus");
    let broker = Nisshi::start();
    for (topic, partitions) in [("readings", 2), ("flags", 1), ("dead-letters", 1)] {
        broker.create_topic(topic, partitions);
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("stream.toml"), FLAG_EVERY_EVENT_STREAM).unwrap();
    // Two keys kept for three devices: evictions happen. Keys' state goes
    // to a changelog, for the panels on restores and checkpoints.
    std::fs::write(
        dir.path().join("run.toml"),
        run_config(
            &broker.brokers(),
            "dashboard",
            None,
            "workers = 1\nmax_keys = 2\ncheckpoint_interval_ms = 500",
        )
        .replace(
            "dead_letter_topic = \"dead-letters\"",
            "dead_letter_topic = \"dead-letters\"\nstate_topic = \"state\"",
        ),
    )
    .unwrap();
    let metrics = Metrics::new();
    let handle = daemon::start(
        RunConfig::load(&dir.path().join("run.toml")).unwrap(),
        Arc::new(LearnedModels),
        metrics.clone(),
    )
    .unwrap();
    let target = handle.http_address().to_string();

    let _simulator = Simulator(
        Command::new(env!("CARGO_BIN_EXE_tidewatch"))
            .args(["simulate", "--stream", "sensor", "--keys", "3"])
            .args(["--events-per-key", "5000", "--clean-events", "100"])
            .args(["--events-per-second", "200", "--topic", "readings"])
            .args(["--brokers", &broker.brokers()])
            .arg("--truth")
            .arg(dir.path().join("truth.jsonl"))
            .spawn()
            .unwrap(),
    );
    let bad = producer(&broker.brokers());
    send(&bad, "readings", "pump-1", b"not json");
    flush(&bad);

    // The shipped scrape config and rules, aimed at this daemon and
    // evaluated every second.
    let rules = repo("deploy/prometheus/rules");
    let config = std::fs::read_to_string(repo("deploy/prometheus/prometheus.yml"))
        .unwrap()
        .replace("tidewatch:9898", &target)
        .replace("rules/", &format!("{}/", rules.display()))
        .replace("15s", "1s")
        .replace("5s", "1s");
    assert!(config.contains(&target) && config.contains(rules.to_str().unwrap()));
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let server = PrometheusServer::start(&prometheus, &config_path, dir.path());

    let queries = dashboard_queries();
    assert!(queries.len() >= 9);
    let has_data = |query: &str| {
        let answer = server.query(query);
        answer.contains(r#""status":"success""#) && !answer.contains(r#""result":[]"#)
    };
    let deadline = Instant::now() + Duration::from_secs(180);
    let empty = loop {
        let empty: Vec<&(String, String)> = queries
            .iter()
            .filter(|(_, query)| !has_data(query))
            .collect();
        if empty.is_empty() || Instant::now() > deadline {
            break empty;
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    assert!(
        empty.is_empty(),
        "dashboard panels without data: {}",
        empty
            .iter()
            .map(|(title, query)| format!("{title:?} ({query})"))
            .collect::<Vec<_>>()
            .join("; ")
    );
    // The recording rules evaluate too.
    assert!(has_data("stream:tidewatch_events_scored:rate1m"));

    handle.shutdown();
    handle.join().unwrap();
}
