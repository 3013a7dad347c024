"""Check that the built wheel and sdist carry what the tap needs at run time.

The tap reads its stream schemas from ``tap_usersnap/schemas/*.json`` next to its code, so a
distribution without them installs fine and then fails on the first run. This opens every
``*.whl`` and ``*.tar.gz`` in a directory (``uv build`` writes both to ``dist/``) and fails,
naming each archive and each missing file, unless both kinds are there and each holds every
schema of the source tree and the LICENSE.

Usage: ``python scripts/check_dist.py [DIST_DIR]`` (default ``dist``); ``make dist`` runs it.
"""

from __future__ import annotations

import argparse
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = "tap_usersnap/schemas"


def required_files(root: Path = ROOT) -> list[str]:
    """The source tree's schema files, as paths inside the package."""
    return sorted(f"{SCHEMAS}/{path.name}" for path in (root / SCHEMAS).glob("*.json"))


def archive_names(archive: Path) -> list[str]:
    """Member paths of a wheel (as they are) or an sdist (without the top ``name-ver/``)."""
    if archive.name.endswith(".whl"):
        with zipfile.ZipFile(archive) as wheel:
            return wheel.namelist()
    with tarfile.open(archive, "r:gz") as sdist:
        return [name.split("/", 1)[1] for name in sdist.getnames() if "/" in name]


def missing_from(archive: Path, required: list[str]) -> list[str]:
    """What ``archive`` lacks of ``required``, and its license file."""
    names = set(archive_names(archive))
    missing = [name for name in required if name not in names]
    if archive.name.endswith(".whl"):
        has_license = any(
            name.split("/")[0].endswith(".dist-info") and name.rsplit("/", 1)[-1] == "LICENSE"
            for name in names
        )
    else:
        has_license = "LICENSE" in names
    if not has_license:
        missing.append("LICENSE")
    return missing


def check(dist: Path, required: list[str]) -> list[str]:
    """Every problem found in ``dist``, one sentence each (empty when all is well)."""
    if not required:
        return [f"no {SCHEMAS}/*.json in the source tree to look for"]
    problems = []
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    if not wheels:
        problems.append(f"no wheel (*.whl) in {dist}")
    if not sdists:
        problems.append(f"no sdist (*.tar.gz) in {dist}")
    for archive in (*wheels, *sdists):
        try:
            missing = missing_from(archive, required)
        except (OSError, zipfile.BadZipFile, tarfile.TarError) as exc:
            problems.append(f"{archive.name}: cannot be read ({exc})")
            continue
        if missing:
            problems.append(f"{archive.name} lacks {', '.join(missing)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Check DIST_DIR; print what is missing and return 1, or print what was checked."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dist", nargs="?", type=Path, default=Path("dist"))
    args = parser.parse_args(argv)
    required = required_files()
    problems = check(args.dist, required)
    for problem in problems:
        sys.stderr.write(f"check_dist: {problem}\n")
    if problems:
        return 1
    archives = sorted(p.name for p in (*args.dist.glob("*.whl"), *args.dist.glob("*.tar.gz")))
    sys.stdout.write(
        f"check_dist: {', '.join(archives)} hold all {len(required)} schemas and LICENSE\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
