"""scripts/check_dist.py on fake archives: it names each archive and each file it lacks."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import typing as t
import zipfile
from pathlib import Path

if t.TYPE_CHECKING:
    from collections.abc import Iterable

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "check_dist.py"
SCHEMAS = sorted(
    f"tap_usersnap/schemas/{p.name}" for p in (REPO / "tap_usersnap/schemas").glob("*.json")
)
WHEEL_LICENSE = "tap_usersnap-0.1.0.dist-info/licenses/LICENSE"


def make_wheel(dist: Path, names: Iterable[str]) -> None:
    with zipfile.ZipFile(dist / "tap_usersnap-0.1.0-py3-none-any.whl", "w") as wheel:
        for name in names:
            wheel.writestr(name, "{}")


def make_sdist(dist: Path, names: Iterable[str]) -> None:
    with tarfile.open(dist / "tap_usersnap-0.1.0.tar.gz", "w:gz") as sdist:
        for name in names:
            info = tarfile.TarInfo(f"tap_usersnap-0.1.0/{name}")
            info.size = 2
            sdist.addfile(info, io.BytesIO(b"{}"))


def check_dist(dist: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(dist)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_complete_archives_pass(tmp_path: Path) -> None:
    make_wheel(tmp_path, [*SCHEMAS, WHEEL_LICENSE])
    make_sdist(tmp_path, [*SCHEMAS, "LICENSE"])

    result = check_dist(tmp_path)

    assert len(SCHEMAS) == 6  # three streams, the settings, and the shapes of state and catalog
    assert result.returncode == 0, result.stderr
    assert f"hold all {len(SCHEMAS)} schemas and LICENSE" in result.stdout


def test_names_each_archive_and_what_it_lacks(tmp_path: Path) -> None:
    make_wheel(tmp_path, [SCHEMAS[0], WHEEL_LICENSE])
    make_sdist(tmp_path, SCHEMAS[1:])

    result = check_dist(tmp_path)

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"check_dist: tap_usersnap-0.1.0-py3-none-any.whl lacks {', '.join(SCHEMAS[1:])}",
        f"check_dist: tap_usersnap-0.1.0.tar.gz lacks {SCHEMAS[0]}, LICENSE",
    ]


def test_a_missing_kind_of_archive_fails(tmp_path: Path) -> None:
    make_sdist(tmp_path, [*SCHEMAS, "LICENSE"])

    result = check_dist(tmp_path)

    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"check_dist: no wheel (*.whl) in {tmp_path}"]
