#!/usr/bin/env python3
"""Fails when any crate in the dependency graph is licensed only under a copyleft licence
(GPL, AGPL, LGPL, SSPL, EUPL) or declares no licence. An OR-choice that includes a permissive
licence is fine. Run from the repository root; uses `cargo metadata` (no network needed once
the crates are fetched)."""
import json
import re
import subprocess
import sys

COPYLEFT = re.compile(r"\b(A?GPL|LGPL|SSPL|EUPL)", re.I)

# Crates that ship a licence file instead of an SPDX expression, read by hand.
LICENCE_FILE_READ = {
    ("cfg_block", "0.1.1"): "Apache-2.0 (LICENSE file, read 2026-11-26)",
}

meta = json.loads(
    subprocess.run(
        ["cargo", "metadata", "--format-version", "1"],
        check=True, capture_output=True, text=True,
    ).stdout
)
bad = []
for pkg in meta["packages"]:
    if pkg["source"] is None:  # our own crates
        continue
    lic = pkg.get("license") or LICENCE_FILE_READ.get((pkg["name"], pkg["version"]))
    if not lic:
        bad.append(f"{pkg['name']} {pkg['version']}: no licence declared"
                   + (f" (licence file {pkg['license_file']})" if pkg.get("license_file") else ""))
        continue
    # Every OR-alternative must be copyleft for the crate to bind us.
    alternatives = re.split(r"\s+OR\s+|/", lic.replace("(", " ").replace(")", " "))
    if all(COPYLEFT.search(a) for a in alternatives if a.strip()):
        bad.append(f"{pkg['name']} {pkg['version']}: {lic}")
if bad:
    print("copyleft or unlicensed dependencies:\n  " + "\n  ".join(bad))
    sys.exit(1)
print(f"licences ok: {sum(1 for p in meta['packages'] if p['source'])} third-party crates")
