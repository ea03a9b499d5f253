#!/usr/bin/env bash
# Builds the CVM image of this checkout's HEAD, reproducibly: two builds of the same commit
# and configuration, in any two directories, give the same bytes and the same measurement.
#
#   scripts/build-image.sh --config runtime.toml --out image/ [--features LIST] [--vcpus N]
#       [--vcpu-type TYPE] [--cmdline TEXT] [--allow-dirty]
#   scripts/build-image.sh --runtime-only [--features LIST] [--allow-dirty]
#       (only the runtime binary; prints its path)
#
# - the runtime: `lucent-cvm-runtime` built with the pinned toolchain (rust-toolchain.toml),
#   --locked, --release, statically linked (crt-static), with every build path remapped
#   (cargo home to /cargo, target folder to /target, for Rust and for C; cargo already names
#   the checkout's own sources by relative paths) into ${LUCENT_IMAGE_TARGET_DIR:-target/image};
# - the kernel and firmware: pinned Debian packages (scripts/fetch-image-inputs.sh);
# - the initrd, manifest.json and the SEV-SNP launch measurement: `lucent-auditor image
#   build`, built from this checkout (set LUCENT_AUDITOR to use another build).
#
# --features: cargo features of lucent-cvm-runtime; the devnet's image uses
# dangerous-simulated-tee, a production image none. --allow-dirty builds uncommitted changes
# (the manifest then says "dirty": true); without it a modified tracked file is an error.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd -P)

usage() {
    sed -n '5,8p' "$0" >&2
    exit 64
}
config= out= features= vcpus=1 vcpu_type=EPYC-v4 cmdline= dirty_ok= runtime_only=
while [ $# -gt 0 ]; do
    case "$1" in
        --config) config=${2:?}; shift 2 ;;
        --out) out=${2:?}; shift 2 ;;
        --features) features=${2:?}; shift 2 ;;
        --vcpus) vcpus=${2:?}; shift 2 ;;
        --vcpu-type) vcpu_type=${2:?}; shift 2 ;;
        --cmdline) cmdline=${2:?}; shift 2 ;;
        --allow-dirty) dirty_ok=1; shift ;;
        --runtime-only) runtime_only=1; shift ;;
        -h | --help) usage ;;
        *) echo "build-image: unknown argument $1" >&2; usage ;;
    esac
done
[ -n "$runtime_only" ] || { [ -n "$config" ] && [ -n "$out" ]; } || usage
say() { echo "build-image: $*" >&2; }
# Paths given relative to where we were called from.
abs() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
[ -z "$config" ] || config=$(abs "$config")
[ -z "$out" ] || out=$(abs "$out")
cd "$root"
commit=$(git rev-parse HEAD)
dirty=()
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    if [ -z "$dirty_ok" ]; then
        say "error: tracked files are modified; commit them, or pass --allow-dirty"
        exit 1
    fi
    say "warning: building uncommitted changes; the image is not the commit's"
    dirty=(--dirty)
fi
repository=$(sed -n 's/^repository = "\(.*\)"/\1/p' Cargo.toml | head -n1)

target=x86_64-unknown-linux-gnu
export CARGO_TARGET_DIR="${LUCENT_IMAGE_TARGET_DIR:-$root/target/image}"
mkdir -p "$CARGO_TARGET_DIR"
CARGO_TARGET_DIR=$(cd "$CARGO_TARGET_DIR" && pwd -P)
cargo_home=$(cd "${CARGO_HOME:-$HOME/.cargo}" && pwd -P)
# Cargo names the workspace's own sources relative to the checkout, so only the dependency
# sources (cargo home) and the build folder need remapping; remapping the checkout too would
# make the flags, and so every dependency's build, differ from one checkout to the next.
maps=("$cargo_home=/cargo" "$CARGO_TARGET_DIR=/target")
RUSTFLAGS="-C target-feature=+crt-static"
CFLAGS=""
for m in "${maps[@]}"; do
    RUSTFLAGS="$RUSTFLAGS --remap-path-prefix=$m"
    CFLAGS="$CFLAGS -ffile-prefix-map=$m"
done
export RUSTFLAGS CFLAGS
export SOURCE_DATE_EPOCH=0
unset RUSTC_WRAPPER CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS CARGO_INCREMENTAL
toolchain=$(rustc --version)

say "building lucent-cvm-runtime at $commit (${features:-no features}; $toolchain)"
feature_args=()
[ -n "$features" ] && feature_args=(--features "$features")
cargo build --locked --release -p lucent-cvm-runtime --target "$target" "${feature_args[@]}"
runtime="$CARGO_TARGET_DIR/$target/release/lucent-cvm-runtime"
if [ -n "$runtime_only" ]; then
    echo "$runtime"
    exit 0
fi

[ -f "$config" ] || { say "error: no configuration file $config"; exit 1; }
mkdir -p "$out"
inputs=$(bash scripts/fetch-image-inputs.sh)

auditor=${LUCENT_AUDITOR:-}
if [ -z "$auditor" ]; then
    say "building lucent-auditor (writes the initrd and measures the image)"
    # Same flags and target as the runtime, so that the dependencies they share build once.
    cargo build --locked --release -p lucent-auditor-cli --bin lucent-auditor --target "$target"
    auditor="$CARGO_TARGET_DIR/$target/release/lucent-auditor"
fi

"$auditor" image build --runtime "$runtime" --config "$config" --inputs "$inputs" \
    --out "$out" ${cmdline:+--cmdline "$cmdline"} --vcpus "$vcpus" --vcpu-type "$vcpu_type" \
    --repository "$repository" --commit "$commit" --toolchain "$toolchain" --target "$target" \
    ${features:+--features "$features"} "${dirty[@]}"
