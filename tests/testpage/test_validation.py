"""Invalid input gets a field error and triggers nothing."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings
from django.utils.html import escape

from runs.models import Run
from tests.testpage.conftest import run_test

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, alice, adder):
    client.force_login(alice)
    return client


def errors_of(response) -> dict[str, list[str]]:
    assert response.status_code == 400
    return {
        name: list(errors) for name, errors in response.context["form"].errors.items()
    }


def assert_rejected(response, field: str, text: str) -> None:
    errors = errors_of(response)
    assert field in errors, errors
    assert any(text in message for message in errors[field]), errors[field]
    assert escape(text) in response.content.decode()  # shown next to the field
    assert not Run.objects.exists()


def test_invalid_payload_json_names_line_and_column(signed_in):
    response = run_test(signed_in, payload='{\n  "a": 1,\n  "b" 2\n}')
    assert_rejected(
        response, "payload", "Invalid JSON: Expecting ':' delimiter (line 3, column 7)"
    )


def test_invalid_metadata_json_is_rejected(signed_in):
    response = run_test(signed_in, metadata="{'single': 'quotes'}")
    assert_rejected(response, "metadata", "Invalid JSON: Expecting property name")


def test_nan_is_not_json(signed_in):
    assert_rejected(
        run_test(signed_in, payload='{"x": NaN}'),
        "payload",
        "NaN is not a JSON value",
    )


def test_numbers_too_large_for_a_float_are_refused(signed_in):
    assert_rejected(
        run_test(signed_in, payload='{"x": 1e400}'),
        "payload",
        "Invalid JSON: the number 1e400 is too large",
    )


def test_absurdly_deep_nesting_is_an_error_not_a_crash(signed_in):
    assert_rejected(
        run_test(signed_in, payload="[" * 100_000 + "]" * 100_000),
        "payload",
        "Invalid JSON: nested too deeply",
    )


def test_metadata_must_be_an_object(signed_in):
    assert_rejected(
        run_test(signed_in, metadata="[1, 2]"),
        "metadata",
        "Metadata must be a JSON object",
    )


@override_settings(RUNWATCH_PAYLOAD_MAX_BYTES=1000)
def test_oversize_payload_is_rejected_with_the_api_message(signed_in):
    payload = json.dumps({"blob": "x" * 1000})
    assert_rejected(
        run_test(signed_in, payload=payload),
        "payload",
        "Payload exceeds maximum size of 1000 bytes",
    )


def test_oversize_payload_at_the_real_3_mb_limit(signed_in, settings):
    limit = settings.RUNWATCH_PAYLOAD_MAX_BYTES
    assert limit == 3 * 1024 * 1024
    payload = json.dumps({"blob": "x" * limit})
    assert_rejected(
        run_test(signed_in, payload=payload),
        "payload",
        f"Payload exceeds maximum size of {limit} bytes",
    )


def test_a_payload_just_under_the_limit_is_accepted(signed_in, settings):
    limit = settings.RUNWATCH_PAYLOAD_MAX_BYTES
    payload = json.dumps({"blob": "x" * (limit - 20)}, indent=2)
    response = run_test(signed_in, payload=payload)
    assert response.status_code == 302
    assert len(Run.objects.get().payload.encode()) <= limit


def test_oversize_metadata_is_rejected_at_256_kb(signed_in, settings):
    limit = settings.RUNWATCH_METADATA_MAX_BYTES
    assert limit == 256 * 1024
    metadata = json.dumps({"blob": "x" * limit})
    assert_rejected(
        run_test(signed_in, metadata=metadata),
        "metadata",
        f"Metadata exceeds maximum size of {limit} bytes",
    )


def test_more_than_ten_tags_are_rejected(signed_in):
    tags = [f"tag-{n}" for n in range(11)]
    assert_rejected(
        run_test(signed_in, tags=tags),
        "tags",
        "Runs can only have 10 tags, you're trying to set 11.",
    )


def test_comma_separated_tags_count_one_by_one(signed_in):
    response = run_test(signed_in, tags=["a,b,c,d,e,f", "g, h, i, j, k"])
    assert errors_of(response)["tags"] == [
        "Runs can only have 10 tags, you're trying to set 11."
    ]


def test_a_tag_longer_than_128_characters_is_rejected(signed_in):
    assert_rejected(
        run_test(signed_in, tags=["ok", "x" * 129]),
        "tags",
        "Tags must be less than 128 characters",
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("soon", "Invalid delay: soon"),
        ("10 minutes", "Invalid delay: 10 minutes"),
        ("2000-01-01T00:00:00Z", "Invalid delay: 2000-01-01T00:00:00Z"),
        ("5x", "Invalid delay: 5x"),
    ],
)
def test_bad_delay_strings_are_rejected(signed_in, value, message):
    assert_rejected(run_test(signed_in, delay=value), "delay", message)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("forever", "Invalid duration: 'forever'"),
        ("-5", "Invalid duration: '-5'"),
        ("1y", "Invalid duration: '1y'"),
        ("10 m", "Invalid duration: '10 m'"),
    ],
)
def test_bad_ttl_strings_are_rejected(signed_in, value, message):
    assert_rejected(run_test(signed_in, ttl=value), "ttl", message)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_attempts", "0", "maxAttempts must be an integer ≥ 1"),
        ("max_attempts", "three", "maxAttempts must be an integer ≥ 1"),
        ("max_attempts", "9999999999", "maxAttempts must be at most 2147483647"),
        ("max_duration", "4", "Max duration must be between 5 and 2147483647 seconds"),
        ("max_duration", "1.5m", "Max duration must be between 5"),
        ("max_duration", "a while", "Max duration must be between 5"),
        ("priority", "-1", "Priority must be a number of seconds between 0 and"),
        ("priority", "30d", "Priority must be a number of seconds between 0 and"),
        ("machine", "huge-9x", "Select a valid choice"),
        ("queue", "no-such-queue", "Select a valid choice"),
        ("version", "19990101.1", "Select a valid choice"),
        ("idempotency_key_ttl", "1w", "Invalid idempotency key TTL"),
        ("concurrency_key", "k" * 256, "at most 255 characters"),
    ],
)
def test_invalid_options_get_field_errors(signed_in, field, value, message):
    extra = {"idempotency_key": "key-1"} if field == "idempotency_key_ttl" else {}
    assert_rejected(run_test(signed_in, **{field: value}, **extra), field, message)


def test_an_idempotency_key_ttl_needs_a_key(signed_in):
    assert_rejected(
        run_test(signed_in, idempotency_key_ttl="1h"),
        "idempotency_key_ttl",
        "Set an idempotency key to give it a TTL",
    )


def test_every_error_is_reported_at_once_and_input_is_kept(signed_in):
    response = run_test(
        signed_in,
        payload='{"a": }',
        delay="soon",
        ttl="never",
        tags=["keep-me"],
        concurrency_key="ck",
    )
    errors = errors_of(response)
    assert set(errors) == {"payload", "delay", "ttl"}
    body = response.content.decode()
    assert "Nothing was triggered" in body
    assert "{&quot;a&quot;: }" in body  # the editor keeps what was typed
    assert 'value="keep-me"' in body
    assert 'value="ck"' in body
