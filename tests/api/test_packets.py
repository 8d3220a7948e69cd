"""Large payloads: signed upload URL, upload, trigger with application/store, download."""

from __future__ import annotations

import json
from urllib.parse import urlparse

import pytest
from django.core import signing
from django.test import Client

from runs.models import Packet, Run

pytestmark = pytest.mark.django_db


def local(url: str) -> str:
    parsed = urlparse(url)
    return parsed.path + (f"?{parsed.query}" if parsed.query else "")


def test_packet_round_trip_through_a_run(api, dev, deploy):
    deploy(dev, "big")
    path = "trigger/big/1700000000-abc/payload.json"
    answer = api.put(f"/api/v2/packets/{path}")
    assert answer.status_code == 200
    body = answer.json()
    assert body["storagePath"] == path
    assert body["presignedUrl"].startswith("http://testserver/api/packets/")
    data = json.dumps({"json": {"blob": "x" * 300_000}})
    upload = Client().put(
        local(body["presignedUrl"]), data, content_type="application/super+json"
    )
    assert upload.status_code == 200
    triggered = api.post(
        "/api/v1/tasks/big/trigger",
        {
            "payload": path,
            "options": {"payloadType": "application/store", "payloadSize": len(data)},
        },
    )
    assert triggered.status_code == 200, triggered.content
    run_id = triggered.json()["id"]
    run = api.get(f"/api/v3/runs/{run_id}").json()
    assert "payload" not in run
    download = Client().get(local(run["payloadPresignedUrl"]))
    assert download.status_code == 200
    assert download["Content-Type"] == "application/super+json"
    assert download.content.decode() == data
    by_path = api.get(f"/api/v1/packets/{path}").json()
    assert Client().get(local(by_path["presignedUrl"])).content.decode() == data
    by_run = api.get(f"/api/v1/runs/{run_id}/packets/payload").json()
    assert Client().get(local(by_run["presignedUrl"])).content.decode() == data
    replayed = api.post(f"/api/v1/runs/{run_id}/replay").json()
    assert Run.objects.get(friendly_id=replayed["id"]).payload == path


def test_sdk_style_encoded_path(api):
    answer = api.put("/api/v2/packets/trigger%2Fbig%2Fx%2Fpayload.json").json()
    assert answer["storagePath"] == "trigger/big/x/payload.json"


def test_trigger_with_a_packet_never_uploaded_is_422(api, dev, deploy):
    deploy(dev, "big")
    api.put("/api/v2/packets/p/never.json")
    response = api.post(
        "/api/v1/tasks/big/trigger",
        {"payload": "p/never.json", "options": {"payloadType": "application/store"}},
    )
    assert response.status_code == 422
    assert Run.objects.count() == 0


def test_upload_urls_are_signed_per_method_environment_and_time(
    api, prod_api, dev, settings
):
    url = local(api.put("/api/v2/packets/a.json").json()["presignedUrl"])
    assert Client().get(url).status_code == 403  # upload URL cannot download
    assert (
        Client()
        .put(url[:-3] + "xyz", "{}", content_type="application/json")
        .status_code
        == 403
    )
    assert Client().put(url, "{}", content_type="application/json").status_code == 200
    assert (
        prod_api.get("/api/v1/packets/a.json").status_code == 404
    )  # other environment
    settings.RUNWATCH_PACKET_URL_TTL_SECONDS = -1
    expired = Client().put(url, "{}", content_type="application/json")
    assert expired.status_code == 403 and "expired" in expired.json()["error"]


def test_regenerating_the_key_revokes_outstanding_urls(api, dev):
    url = local(api.put("/api/v2/packets/a.json").json()["presignedUrl"])
    dev.regenerate_api_key()
    assert Client().put(url, "{}", content_type="application/json").status_code == 403


def test_upload_over_the_limit_is_413_and_nothing_is_stored(api, settings):
    settings.RUNWATCH_PACKET_MAX_BYTES = 100
    url = local(api.put("/api/v2/packets/a.json").json()["presignedUrl"])
    response = Client().put(url, "x" * 101, content_type="application/json")
    assert response.status_code == 413
    assert Packet.objects.get(path="a.json").uploaded_at is None


def test_path_traversal_and_unknown_packets(api):
    assert api.put("/api/v2/packets/a/../b.json").status_code == 400
    assert api.get("/api/v1/packets/missing.json").status_code == 404


def test_signed_token_is_opaque_to_tampering(api):
    url = local(api.put("/api/v2/packets/a.json").json()["presignedUrl"])
    token = url.rsplit("/", 1)[1]
    forged = signing.dumps({"e": 1, "p": "a.json", "m": "PUT"}, salt="runwatch.packets")
    assert token != forged
    assert (
        Client()
        .put(f"/api/packets/{forged}", "{}", content_type="application/json")
        .status_code
        == 403
    )
