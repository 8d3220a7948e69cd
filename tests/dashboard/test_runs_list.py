from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db


def test_runs_list_requires_login(client, dev):
    response = client.get("/env/dev/runs/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_runs_list_shows_rows_with_a_constant_number_of_queries(
    client, alice, dev, make_run
):
    client.force_login(alice)
    runs = [make_run(dev, tags=["vip"]) for _ in range(3)]
    with CaptureQueriesContext(connection) as few:
        response = client.get("/env/dev/runs/")
    assert response.status_code == 200
    body = response.content.decode()
    for run in runs:
        assert f'id="run-{run.friendly_id}"' in body
    for _ in range(10):
        make_run(dev, tags=["vip"])
    with CaptureQueriesContext(connection) as many:
        client.get("/env/dev/runs/")
    assert len(many) == len(few)


def test_bob_cannot_see_prod(client, bob, prod):
    client.force_login(bob)
    assert client.get("/env/prod/runs/").status_code == 404
    assert client.get("/env/dev/runs/").status_code == 200
