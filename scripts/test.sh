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

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --release -- -D warnings
echo "== cargo test"
cargo test --release --all-targets
