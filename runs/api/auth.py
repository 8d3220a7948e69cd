"""Who is calling: `Authorization: Bearer <token>` → one environment.

The token is either the environment's secret key (`tr_dev_…`) or a public JWT
(`tokens.py`) signed with that key. Keys are looked up on every request (a
regenerated key stops working at once) and compared in constant time against every
environment's key, so neither timing nor an index lookup leaks how much of a guess
was right.

A secret key may do anything in its environment. A public token only what its
scopes allow: `authorize(action, runs=…, tasks=…, tags=…, batch=…)` passes when a
scope names the action and one of the resources (`read:runs:run_1`), the whole
resource type (`read:runs`), or everything (`read:all`, `admin`), as in Trigger.dev.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.http import HttpRequest

from runs.api import tokens
from runs.api.errors import INVALID_KEY, ApiError
from runs.models import Environment

SECRET = "secret"
PUBLIC_TOKEN = "public"


@dataclass
class Caller:
    environment: Environment
    kind: str  # SECRET or PUBLIC_TOKEN
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_secret_key(self) -> bool:
        return self.kind == SECRET

    def allows(self, action: str, **resources: str | Iterable[str] | None) -> bool:
        if self.is_secret_key:
            return True
        if {"admin", f"{action}:all"} & self.scopes:
            return True
        for kind, ids in resources.items():
            if ids is None:
                continue
            if f"{action}:{kind}" in self.scopes:
                return True
            for one in [ids] if isinstance(ids, str) else ids:
                if f"{action}:{kind}:{one}" in self.scopes:
                    return True
        return False

    def authorize(self, action: str, **resources: str | Iterable[str] | None) -> None:
        """403 unless the caller may `action` one of `resources`."""
        if not self.allows(action, **resources):
            raise ApiError(
                403, "Unauthorized: this public access token's scopes do not allow it"
            )


def bearer_token(request: HttpRequest) -> str:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return ""
    return token.strip()


def authenticate(request: HttpRequest, *, public_tokens: bool) -> Caller:
    """The caller of `request`, or ApiError 401."""
    token = bearer_token(request)
    if not token:
        raise ApiError(401, INVALID_KEY)
    environments = list(Environment.objects.all())
    if token.startswith("tr_"):
        match = None
        for environment in environments:  # no early exit: constant time
            if hmac.compare_digest(environment.api_key.encode(), token.encode()):
                match = environment
        if match is None:
            raise ApiError(401, INVALID_KEY)
        return Caller(match, SECRET)
    if not public_tokens:
        raise ApiError(401, "This endpoint needs the environment's secret API key")
    return _public_token_caller(token, environments)


def _public_token_caller(token: str, environments: list[Environment]) -> Caller:
    try:
        claims = tokens.unverified_claims(token)
    except tokens.InvalidToken:
        raise ApiError(401, INVALID_KEY) from None
    sub = claims.get("sub")
    candidates = (
        [e for e in environments if str(e.pk) == str(sub)] if sub else environments
    )
    for environment in candidates:
        try:
            verified = tokens.verify(token, environment.api_key)
        except tokens.InvalidToken:
            continue
        scopes = verified.get("scopes") or []
        if not isinstance(scopes, list):
            scopes = []
        return Caller(
            environment,
            PUBLIC_TOKEN,
            frozenset(s for s in scopes if isinstance(s, str)),
        )
    raise ApiError(401, INVALID_KEY)
