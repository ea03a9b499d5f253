#!/usr/bin/env bash
# Obtain the CVM image's pinned inputs from Debian's packages and check them by digest:
# - the kernel: linux-image-6.1.0-50-amd64 6.1.176-1 (Debian 12), /boot/vmlinuz-6.1.0-50-amd64,
#   and from the same package the two modules the attesters need, which Debian builds as
#   modules: configfs.ko and sev-guest.ko (the runtime loads them as PID 1);
# - the firmware: ovmf-amdsev 2026.08+ds-2 (Debian unstable), /usr/share/ovmf/OVMF.amdsev.fd,
#   edk2's AmdSev build, which carries the SEV hashes table that measures the kernel, initrd
#   and command line of a direct boot (Debian 12's own `ovmf` package has no AmdSev build).
# Each .deb and each extracted file is checked against the SHA-256 below; the files go to
# ${LUCENT_IMAGE_INPUTS:-$HOME/.cache/lucent/image-inputs} as vmlinuz, OVMF.fd and
# modules/*.ko, with
# inputs.json naming the packages (read by `lucent-auditor image build --inputs`).
#
# The packages are fetched with apt-get from the Debian mirror this machine's apt sources name
# (suites bookworm and sid, in a private apt state: the system's own is not touched). On a
# machine without apt, download the two packages by any means, check their digests, and place
# the two files and inputs.json in the folder above.
#
# Usage: scripts/fetch-image-inputs.sh     (prints the folder on standard output)
set -euo pipefail

KERNEL_PKG=linux-image-6.1.0-50-amd64
KERNEL_VERSION=6.1.176-1
KERNEL_DEB_SHA256=7b5597492a0a65aee61985a492e6bcc3f2cde830072a0e3b3d8c7e1b90279bd3
KERNEL_PATH=boot/vmlinuz-6.1.0-50-amd64
KERNEL_SHA256=d8808aa4ca188560da1e6d749dcb930c87a5fd8b11ebff1f3fa6d728af35203d
MODULES_DIR=lib/modules/6.1.0-50-amd64/kernel
MODULES=(
    "fs/configfs/configfs.ko ba1986e77f5af7f34bd891b73589872e8a9baa365da0beee52e4cf2a2277a166"
    "drivers/virt/coco/sev-guest/sev-guest.ko 9f1018b2daccbf244167e6d70080a5f30048dd727f43c4d51e9c3d8f91c47773"
)
FIRMWARE_PKG=ovmf-amdsev
FIRMWARE_VERSION=2026.08+ds-2
FIRMWARE_DEB_SHA256=92c9b6d15e4eeb371938c3f99080c1a8fc057dfd6bc0509d37f8b615e9edebfb
FIRMWARE_PATH=usr/share/ovmf/OVMF.amdsev.fd
FIRMWARE_SHA256=3e4fd0b3fe3b2dbe481c3d9e99418a034174f26cbe1f55aa212b0f18c12d2d6f

DEST="${LUCENT_IMAGE_INPUTS:-$HOME/.cache/lucent/image-inputs}"
say() { echo "fetch-image-inputs: $*" >&2; }
digest_of() { sha256sum "$1" | cut -d' ' -f1; }

have() {
    [ -f "$DEST/vmlinuz" ] && [ -f "$DEST/OVMF.fd" ] && [ -f "$DEST/inputs.json" ] \
        && [ "$(digest_of "$DEST/vmlinuz")" = "$KERNEL_SHA256" ] \
        && [ "$(digest_of "$DEST/OVMF.fd")" = "$FIRMWARE_SHA256" ] || return 1
    local m
    for m in "${MODULES[@]}"; do
        set -- $m
        [ -f "$DEST/modules/$(basename "$1")" ] \
            && [ "$(digest_of "$DEST/modules/$(basename "$1")")" = "$2" ] || return 1
    done
}

if have; then
    echo "$DEST"
    exit 0
fi

for tool in apt-get dpkg-deb sha256sum; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        say "error: $tool is not available. Download $KERNEL_PKG $KERNEL_VERSION (sha256"
        say "$KERNEL_DEB_SHA256) and $FIRMWARE_PKG $FIRMWARE_VERSION (sha256 $FIRMWARE_DEB_SHA256),"
        say "and place $KERNEL_PATH as vmlinuz and $FIRMWARE_PATH as OVMF.fd in $DEST."
        exit 1
    fi
done

# The mirror this machine already uses (deb822 or one-line sources).
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
if [ -z "$mirror" ]; then
    mirror=$(awk '$1 == "deb" && $2 !~ /^\[/ {print $2; exit} $1 == "deb" && $2 ~ /^\[/ {print $3; exit}' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
fi
if [ -z "$mirror" ]; then
    say "error: no Debian mirror found in this machine's apt sources"
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/lists/partial" "$tmp/archives/partial"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
{
    echo "deb [signed-by=$keyring] $mirror bookworm main"
    echo "deb [signed-by=$keyring] $mirror sid main"
} > "$tmp/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$tmp/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache::Archives=$tmp/archives"
    -o "APT::Sandbox::User=root" -q)
say "reading the package lists of $mirror (bookworm, sid)"
apt-get "${apt_opts[@]}" update >/dev/null
(cd "$tmp" && apt-get "${apt_opts[@]}" download \
    "$KERNEL_PKG=$KERNEL_VERSION" "$FIRMWARE_PKG=$FIRMWARE_VERSION" >&2)

take() { # deb sha256, deb glob, path inside, expected file sha256, destination name
    local deb
    deb=$(ls "$tmp"/$2 | head -n1)
    if [ "$(digest_of "$deb")" != "$1" ]; then
        say "error: $(basename "$deb") has sha256 $(digest_of "$deb"), want $1"
        exit 1
    fi
    mkdir -p "$tmp/x"
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/x" "./$3"
    if [ "$(digest_of "$tmp/x/$3")" != "$4" ]; then
        say "error: $3 from $(basename "$deb") has sha256 $(digest_of "$tmp/x/$3"), want $4"
        exit 1
    fi
    cp "$tmp/x/$3" "$DEST/$5.tmp"
}
mkdir -p "$DEST/modules"
take "$KERNEL_DEB_SHA256" "${KERNEL_PKG}_*.deb" "$KERNEL_PATH" "$KERNEL_SHA256" vmlinuz
take "$FIRMWARE_DEB_SHA256" "${FIRMWARE_PKG}_*.deb" "$FIRMWARE_PATH" "$FIRMWARE_SHA256" OVMF.fd
files=(vmlinuz OVMF.fd inputs.json)
module_paths=
for m in "${MODULES[@]}"; do
    set -- $m
    take "$KERNEL_DEB_SHA256" "${KERNEL_PKG}_*.deb" "$MODULES_DIR/$1" "$2" "modules/$(basename "$1")"
    files+=("modules/$(basename "$1")")
    module_paths="$module_paths${module_paths:+, }\"$MODULES_DIR/$1\""
done
cat > "$DEST/inputs.json.tmp" <<JSON
{
  "kernel": {"name": "$KERNEL_PKG", "version": "$KERNEL_VERSION", "sha256": "$KERNEL_DEB_SHA256", "path": "$KERNEL_PATH"},
  "modules": [$module_paths],
  "firmware": {"name": "$FIRMWARE_PKG", "version": "$FIRMWARE_VERSION", "sha256": "$FIRMWARE_DEB_SHA256", "path": "$FIRMWARE_PATH"}
}
JSON
for f in "${files[@]}"; do mv "$DEST/$f.tmp" "$DEST/$f"; done
say "kernel, modules and firmware in $DEST"
echo "$DEST"
