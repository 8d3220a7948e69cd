"""Signed, expiring URLs for packet uploads and downloads, served by Runwatch itself.

A URL carries a Django-signed token naming the environment, the packet path and
the method it allows (PUT upload or GET download); it expires after
`RUNWATCH_PACKET_URL_TTL_SECONDS`. Tokens are salted with the environment's secret
key, so regenerating the key also revokes its outstanding URLs.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.http import HttpRequest
from django.urls import reverse

from runs.models import Environment

SALT = "runwatch.packets"


def _salt(environment: Environment) -> str:
    return f"{SALT}:{environment.api_key}"


def _absolute(request: HttpRequest, path: str) -> str:
    base = settings.RUNWATCH_PUBLIC_URL.rstrip("/")
    return f"{base}{path}" if base else request.build_absolute_uri(path)


def _url(request: HttpRequest, environment: Environment, path: str, method: str) -> str:
    token = signing.dumps(
        {"e": environment.pk, "p": path, "m": method},
        salt=_salt(environment),
        compress=True,
    )
    return _absolute(request, reverse("api-packet-transfer", args=[token]))


def upload_url(request: HttpRequest, environment: Environment, path: str) -> str:
    return _url(request, environment, path, "PUT")


def download_url(request: HttpRequest, environment: Environment, path: str) -> str:
    return _url(request, environment, path, "GET")


class InvalidPacketUrl(ValueError):
    pass


def verify(token: str, method: str) -> tuple[Environment, str]:
    """(environment, packet path) a token grants `method` on; InvalidPacketUrl otherwise."""
    # The salt holds the key: try each environment (few); only the right one verifies.
    for environment in Environment.objects.all():
        try:
            data = signing.loads(
                token,
                salt=_salt(environment),
                max_age=settings.RUNWATCH_PACKET_URL_TTL_SECONDS,
            )
        except signing.SignatureExpired:
            raise InvalidPacketUrl("This upload/download URL has expired") from None
        except signing.BadSignature:
            continue
        if data.get("m") != method or data.get("e") != environment.pk:
            raise InvalidPacketUrl(f"This URL does not allow {method}")
        return environment, str(data["p"])
    raise InvalidPacketUrl("Invalid or tampered URL")
