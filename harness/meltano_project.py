"""Run the ``meltano`` command line on this repository's meltano.yml, as a user would.

Meltano lives in its own venv, ``.meltano-venv/`` (``make meltano-venv``), not in ``.venv``:
it runs the tap and the targets as subprocesses from plugin venvs it builds itself, and its
own pins would otherwise constrain the tap's libraries.

The demo runs Meltano on the repository itself. Tests run it on a copy of ``meltano.yml`` in
a temporary directory (:meth:`MeltanoProject.copy_of_repo`), so ``meltano select`` and the
state Meltano stores never touch the repository; the copy installs the tap from the
repository (``pip_url: -e <repo>``), so it runs the code under test.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import subprocess
import typing as t
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MELTANO = REPO / ".meltano-venv" / "bin" / "meltano"
ENVIRONMENT = "dev"  # meltano.yml's default_environment; state IDs start with it

#: Variables a developer's shell may hold that would change what Meltano or a plugin does.
_FOREIGN_PREFIXES = ("MELTANO_", "TAP_USERSNAP_", "TARGET_POSTGRES_", "TARGET_DUCKDB_", "PG")


class MeltanoError(RuntimeError):
    """A meltano command failed; the message carries the end of its log."""


def meltano_env(**extra: str) -> dict[str, str]:
    """This process's environment without foreign Meltano/plugin settings, plus ``extra``.

    Usage stats stay off, and the Hub URL points at a closed local port, so an accidental
    Hub lookup fails at once instead of hanging on a network these machines do not have.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_PREFIXES)}
    env.update(
        MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
        MELTANO_HUB_URL="http://127.0.0.1:9",
        MELTANO_CLI_DISABLE_VERSION_CHECK="true",
        UV_PYTHON_DOWNLOADS="never",
    )
    env.update(extra)
    return env


def usersnap_env(config: dict[str, t.Any]) -> dict[str, str]:
    """A tap config as the ``TAP_USERSNAP_*`` variables Meltano reads settings from."""
    return {
        f"TAP_USERSNAP_{key.upper()}": value if isinstance(value, str) else json.dumps(value)
        for key, value in config.items()
    }


@dataclasses.dataclass
class MeltanoProject:
    """A Meltano project directory and the environment its commands run with."""

    root: Path
    env: dict[str, str] = dataclasses.field(repr=False)

    @classmethod
    def copy_of_repo(cls, root: Path, env: dict[str, str]) -> MeltanoProject:
        """Copy meltano.yml to ``root``; the tap is still installed from the repository."""
        text = (REPO / "meltano.yml").read_text()
        local = "pip_url: -e .\n"
        if local not in text:
            msg = f"meltano.yml no longer installs the tap with {local.strip()!r}"
            raise MeltanoError(msg)
        root.mkdir(parents=True, exist_ok=True)
        (root / "meltano.yml").write_text(
            text.replace(local, f"pip_url: -e {shlex.quote(str(REPO))}\n")
        )
        return cls(root, env)

    def run(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        check: bool = True,
        timeout: float = 600,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``meltano ARGS`` in the project; raise with the log's tail when ``check`` fails."""
        if not MELTANO.exists():
            msg = f"{MELTANO} is missing: run `make meltano-venv` first"
            raise MeltanoError(msg)
        completed = subprocess.run(
            [str(MELTANO), *args],
            cwd=self.root,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and completed.returncode != 0:
            tail = "\n".join((completed.stdout + completed.stderr).splitlines()[-40:])
            msg = f"meltano {shlex.join(args)} exited {completed.returncode}:\n{tail}"
            raise MeltanoError(msg)
        return completed

    def state(self, state_id: str) -> dict[str, t.Any]:
        """The Singer state Meltano stored under ``state_id`` (``{}`` when there is none)."""
        out = self.run(f"--environment={ENVIRONMENT}", "state", "get", state_id).stdout
        return t.cast("dict[str, t.Any]", json.loads(out or "{}").get("singer_state", {}))


def state_id(extractor: str, loader: str) -> str:
    """The ID ``meltano run EXTRACTOR LOADER`` stores its state under."""
    return f"{ENVIRONMENT}:{extractor}-to-{loader}"
