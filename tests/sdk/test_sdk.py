"""The official npm @trigger.dev/sdk (pinned in package.json) against a live server.

Each file in tests/sdk/scenarios/ is one test: `node run.mjs <file>` runs its checks
against the `live_url` daphne server with the dev environment's key and prints
`ok <check>` / `FAIL <check>: …` lines. Add a scenario by adding a file there (its
checks may use the tasks in SDK_TASKS, which are deployed for every scenario).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from runs.models import Run

SDK_DIR = Path(__file__).resolve().parent
SCENARIOS = sorted((SDK_DIR / "scenarios").glob("*.mjs"))
SDK_TASKS = ["sdk-echo", "sdk-other", "sdk-big"]

pytestmark = [pytest.mark.sdk, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (tests/run.sh expects Node ≥ 20)")
    if not (SDK_DIR / "node_modules" / "@trigger.dev" / "sdk").is_dir():
        pytest.fail("run `npm ci` in tests/sdk first (tests/run.sh does)")
    return node


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda path: path.stem)
def test_sdk_scenario(scenario, node, live_url, envs, deploy):
    for slug in ("dev", "prod"):
        deploy(envs[slug], *SDK_TASKS)
    env = {
        **os.environ,
        "RUNWATCH_API_URL": live_url,
        "RUNWATCH_API_KEY": envs["dev"].api_key,
        "RUNWATCH_OTHER_API_KEY": envs["prod"].api_key,
        "RUNWATCH_SDK_TASKS": json.dumps(SDK_TASKS),
        "TRIGGER_TELEMETRY_DISABLED": "1",
    }
    result = subprocess.run(
        [node, "run.mjs", str(scenario.relative_to(SDK_DIR))],
        cwd=SDK_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert result.returncode == 0, output
    assert any(line.startswith("ok ") for line in lines), output
    assert not any(line.startswith("FAIL ") for line in lines), output
    # What the SDK did is really in the database.
    assert Run.objects.filter(environment=envs["dev"]).exists()
    assert not Run.objects.filter(environment=envs["prod"]).exists()
