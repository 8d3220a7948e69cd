"""The management commands an operator runs by hand."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from runs.models import Attempt, Deployment, Environment, Run, RunEvent, RunTag
from runs.statuses import FINISHED

pytestmark = pytest.mark.django_db


def run_command(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_seed_runs_loads_finished_runs_in_time_order_with_their_history(dev):
    output = run_command("seed_runs", "--count", "300", "--env", "dev", "--seed", "7")
    assert "seeded 300 runs into dev" in output
    runs = list(Run.objects.filter(environment=dev).order_by("number"))
    assert [r.number for r in runs] == list(range(1, 301))
    assert [r.created_at for r in runs] == sorted(r.created_at for r in runs)
    assert {r.status for r in runs} <= FINISHED and len({r.status for r in runs}) > 3
    assert len({r.friendly_id for r in runs}) == 300
    assert RunTag.objects.filter(run__environment=dev).count() == sum(
        len(r.tags) for r in runs
    )
    started = [r for r in runs if r.started_at]
    assert Attempt.objects.filter(run__in=started).count() >= len(started)
    assert all(r.attempt_count == r.attempts.count() for r in runs[:50])
    for run in runs[:50]:
        statuses = list(
            RunEvent.objects.filter(run=run)
            .order_by("id")
            .values_list("status", flat=True)
        )
        assert statuses[0] == "QUEUED" and statuses[-1] == run.status
    assert all(r.version for r in started)  # past deployments were made up
    assert not Deployment.objects.filter(environment=dev, is_current=True).exists()
    assert Environment.objects.get(pk=dev.pk).next_run_number == 301


def test_seed_runs_rejects_nonsense(dev):
    with pytest.raises(CommandError, match="at least 1"):
        run_command("seed_runs", "--count", "0")
    with pytest.raises(CommandError, match="No environment 'nope'"):
        run_command("seed_runs", "--count", "5", "--env", "nope")


def test_apikey_prints_only_the_key(envs):
    assert run_command("apikey", "prod").strip() == envs["prod"].api_key


def test_apikey_regenerates_and_finds_preview_branches(envs):
    from runs.environments import create_preview_environment

    preview = create_preview_environment("feature/login")
    assert run_command("apikey", "feature/login").strip() == preview.api_key
    old = envs["dev"].api_key
    new = run_command("apikey", "dev", "--regenerate").strip()
    assert new != old and new.startswith("tr_dev_")
    assert Environment.objects.get(slug="dev").api_key == new


def test_apikey_for_an_unknown_environment_is_an_error(envs):
    with pytest.raises(CommandError, match="No environment 'qa'"):
        run_command("apikey", "qa")


def test_demo_triggers_varied_runs_and_warns_without_a_demo_worker(dev):
    err = io.StringIO()
    call_command(
        "demo",
        "--count",
        "12",
        "--rate",
        "1000",
        "--seed",
        "3",
        stdout=io.StringIO(),
        stderr=err,
    )
    assert "No worker has registered the demo tasks" in err.getvalue()
    runs = Run.objects.filter(environment=dev)
    assert runs.count() >= 12
    assert runs.values("task_identifier").distinct().count() >= 3
    assert set(runs.values_list("status", flat=True)) == {"PENDING_VERSION"}


def test_demo_tasks_once_registered_queue_the_demo_traffic(dev):
    from runs.demo.traffic import demo_tasks_deployed, seed_first_start
    from runs.deployments import register_tasks
    from runs.engine.registry import discover_tasks

    tasks = discover_tasks(["runs.demo.tasks"])
    register_tasks(
        dev,
        [t.spec for t in tasks.values() if t.function.__module__ == "runs.demo.tasks"],
    )
    assert demo_tasks_deployed(dev)
    assert seed_first_start(dev) > 0 and seed_first_start(dev) == 0  # only once
    call_command("demo", "--count", "6", "--rate", "1000", stdout=io.StringIO())
    fresh = Run.objects.filter(environment=dev, attempt_count=0).exclude(
        status__in=FINISHED
    )
    assert fresh.exists() and not fresh.filter(status="PENDING_VERSION").exists()
