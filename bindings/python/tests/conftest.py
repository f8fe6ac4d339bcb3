"""Shared set-up of the binding's tests: the repository, the CLI and the
business-hours plugin built by cargo (in CARGO_TARGET_DIR or target/)."""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
if not TARGET.is_absolute():
    TARGET = REPO / TARGET
RULES = REPO / "rules.yaml"
WORLD = REPO / "examples" / "world.yaml"
REQUESTS = REPO / "examples" / "requests.jsonl"


@pytest.fixture(scope="session")
def artifacts():
    """Builds the CLI and the plugin (a no-op when they are up to date)."""
    # `--bin` alone finds the package that has the binary (the library's or a CLI crate's)
    for args in (["--bin", "switchboard"],
                 ["-p", "switchboard-plugin-business-hours", "-p", "switchboard-plugin-misbehave", "--lib"]):
        subprocess.run(["cargo", "build", "--quiet", *args], cwd=REPO, check=True)
    return TARGET / "debug"


@pytest.fixture(scope="session")
def request_lines():
    """The non-blank lines of examples/requests.jsonl."""
    return [line for line in REQUESTS.read_text(encoding="utf-8").split("\n") if line.strip()]


@pytest.fixture(scope="session")
def cli_decisions(artifacts):
    """The CLI's decisions on examples/requests.jsonl, one parsed dict per line."""
    out = subprocess.run(
        [str(artifacts / "switchboard"), "select", "--rules", str(RULES), "--world", str(WORLD)],
        input=REQUESTS.read_bytes(),
        capture_output=True,
        check=True,
    ).stdout
    return [json.loads(line) for line in out.decode("utf-8").split("\n") if line.strip()]


@pytest.fixture(scope="session")
def plugin_path(artifacts):
    """The business-hours plugin library built by the workspace."""
    return artifacts / "libswitchboard_business_hours.so"


@pytest.fixture(scope="session")
def misbehave_path(artifacts):
    """The test plugin whose rules panic or answer nonsense."""
    return artifacts / "libswitchboard_misbehave.so"


def write_by_rename(path: Path, text: str) -> None:
    """Writes the way editors and deploy tools do: a temporary file, then rename."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def wait_for(predicate, seconds: float, what: str) -> None:
    """Returns when predicate() holds, polling; fails after `seconds`."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.02)
