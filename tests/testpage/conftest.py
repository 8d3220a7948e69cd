"""Helpers for the Test page's tests: a deployed task and a way to submit the form."""

from __future__ import annotations

import pytest


@pytest.fixture
def adder(dev, deploy):
    """dev's current deployment with the tasks "add" and "noop"."""
    return deploy(dev, "add", "noop")


def task_url(env: str = "dev", task: str = "add") -> str:
    return f"/env/{env}/test/tasks/{task}/"


def form_data(**fields) -> dict:
    """What the browser sends: both editors and every option, blank unless given."""
    data = {
        "payload": "{}",
        "metadata": "{}",
        "version": "",
        "queue": "",
        "machine": "",
        "tags": [],
        "max_attempts": "",
        "max_duration": "",
        "delay": "",
        "ttl": "",
        "priority": "",
        "concurrency_key": "",
        "idempotency_key": "",
        "idempotency_key_ttl": "",
    }
    data.update(fields)
    return data


def run_test(client, env: str = "dev", task: str = "add", **fields):
    return client.post(task_url(env, task), form_data(**fields))
