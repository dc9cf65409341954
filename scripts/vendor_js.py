#!/usr/bin/env python3
"""Refresh the vendored front-end files in static/vendor/ from the npm registry.

Each package is pinned here; the script downloads the exact tarball, checks the
registry's integrity hash, extracts the one file the dashboard serves and records
version and sha256 in static/vendor/VERSIONS.json. Run it by hand when bumping a
version; the app never fetches anything at run time.

    python scripts/vendor_js.py            # refresh all
    python scripts/vendor_js.py --check    # verify files on disk match VERSIONS.json and
                                           # the pins below (no network; bin/check runs it)
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path

REGISTRY = "https://registry.npmjs.org"
ROOT = Path(__file__).resolve().parent.parent
VENDOR_DIR = ROOT / "static" / "vendor"
VERSIONS_FILE = VENDOR_DIR / "VERSIONS.json"

# (npm package, version, file inside the package tarball, file name under static/vendor/)
PINNED: list[tuple[str, str, str, str]] = [
    ("htmx.org", "2.0.11", "package/dist/htmx.min.js", "htmx.min.js"),
    ("htmx-ext-ws", "2.0.4", "package/dist/ws.min.js", "htmx-ext-ws.min.js"),
    ("cytoscape", "3.34.4", "package/dist/cytoscape.min.js", "cytoscape.min.js"),
    # Bundles dagre (layered layout) and registers itself on window.cytoscape.
    (
        "cytoscape-dagre",
        "4.0.1",
        "package/dist/cytoscape-dagre.min.js",
        "cytoscape-dagre.min.js",
    ),
]


def _fetch_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def _fetch_bytes(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


def _check_integrity(tarball: bytes, integrity: str) -> None:
    algorithm, _, expected = integrity.partition("-")
    digest = base64.b64encode(hashlib.new(algorithm, tarball).digest()).decode()
    if digest != expected:
        raise SystemExit(f"integrity mismatch for tarball: {integrity}")


def refresh() -> int:
    VENDOR_DIR.mkdir(parents=True, exist_ok=True)
    record: dict[str, dict[str, str]] = {}
    for package, version, member, target in PINNED:
        meta = _fetch_json(f"{REGISTRY}/{package}/{version}")
        tarball = _fetch_bytes(meta["dist"]["tarball"])
        _check_integrity(tarball, meta["dist"]["integrity"])
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
            extracted = archive.extractfile(member)
            if extracted is None:
                raise SystemExit(f"{member} missing from {package}@{version}")
            content = extracted.read()
        (VENDOR_DIR / target).write_bytes(content)
        record[target] = {
            "package": package,
            "version": version,
            "source": f"{meta['dist']['tarball']}#{member}",
            "sha256": hashlib.sha256(content).hexdigest(),
        }
        print(f"{target}: {package}@{version}")
    VERSIONS_FILE.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return 0


def check_problems() -> list[str]:
    """What differs between static/vendor/, VERSIONS.json and the pins above; no network."""
    if not VERSIONS_FILE.exists():
        return [f"{VERSIONS_FILE.relative_to(ROOT)} is missing"]
    record = json.loads(VERSIONS_FILE.read_text())
    problems = []
    for package, version, _member, target in PINNED:
        entry = record.get(target)
        if entry is None:
            problems.append(f"{target}: pinned ({package}@{version}) but not recorded")
        elif (entry["package"], entry["version"]) != (package, version):
            recorded = f"{entry['package']}@{entry['version']}"
            problems.append(f"{target}: pinned {package}@{version}, recorded {recorded}")
    for target, entry in sorted(record.items()):
        path = VENDOR_DIR / target
        if not path.exists():
            problems.append(f"{target}: recorded but missing from static/vendor/")
            continue
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if actual != entry["sha256"]:
            problems.append(f"{target}: sha256 {actual}, recorded {entry['sha256']}")
    on_disk = {path.name for path in VENDOR_DIR.iterdir() if path != VERSIONS_FILE}
    for name in sorted(on_disk - record.keys()):
        problems.append(f"{name}: in static/vendor/ but not recorded")
    return problems


def check() -> int:
    problems = check_problems()
    for problem in problems:
        print(problem)
    if problems:
        print(
            "The vendored JavaScript does not match static/vendor/VERSIONS.json: restore the "
            "files (git checkout static/vendor/) or refresh them with scripts/vendor_js.py."
        )
        return 1
    print(f"{len(PINNED)} vendored files match static/vendor/VERSIONS.json")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="verify against VERSIONS.json instead of refreshing"
    )
    args = parser.parse_args()
    sys.exit(check() if args.check else refresh())
