"""Public access tokens: HS256 JWTs signed with an environment's secret key.

The SDK signs such tokens itself (`auth.createPublicToken`, and the `publicAccessToken`
of a trigger when the server sends none), and Runwatch hands them out in the
`x-trigger-jwt` header of trigger and batch answers. Claims follow Trigger.dev:
`iss`/`aud` fixed, `pub: true`, `sub` = environment id, `scopes` such as
`read:runs:<id>`, `exp`. Tokens the SDK signed without `sub` are matched by trying the
key of every environment (there are few).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

ISSUER = "https://id.trigger.dev"
AUDIENCE = "https://api.trigger.dev"
DEFAULT_TTL_SECONDS = 3600


class InvalidToken(ValueError):
    pass


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(claims: dict[str, Any], key: str) -> str:
    header = _b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64encode(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = hmac.new(key.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64encode(signature)}"


def public_claims(
    environment_id: int, scopes: list[str], ttl: int = DEFAULT_TTL_SECONDS
) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": str(environment_id),
        "pub": True,
        "scopes": scopes,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + ttl,
    }


def unverified_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT-shaped token, not yet trusted. InvalidToken if malformed."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("not a JWT")
    try:
        header = json.loads(_b64decode(parts[0]))
        claims = json.loads(_b64decode(parts[1]))
    except ValueError:
        raise InvalidToken("malformed JWT") from None
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise InvalidToken("only HS256 tokens are accepted")
    if not isinstance(claims, dict):
        raise InvalidToken("malformed JWT")
    return claims


def verify(token: str, key: str) -> dict[str, Any]:
    """The claims of `token` if it was signed with `key`, is current and public."""
    claims = unverified_claims(token)
    header, payload, signature = token.split(".")
    expected = hmac.new(
        key.encode(), f"{header}.{payload}".encode(), hashlib.sha256
    ).digest()
    try:
        given = _b64decode(signature)
    except ValueError:
        raise InvalidToken("malformed signature") from None
    if not hmac.compare_digest(expected, given):
        raise InvalidToken("bad signature")
    now = time.time()
    if not isinstance(claims.get("exp"), int | float) or claims["exp"] <= now:
        raise InvalidToken("expired")
    if claims.get("iss") != ISSUER or AUDIENCE not in _audiences(claims.get("aud")):
        raise InvalidToken("wrong issuer or audience")
    if claims.get("pub", True) is not True:
        raise InvalidToken("not a public token")
    return claims


def _audiences(aud: Any) -> list[str]:
    if isinstance(aud, str):
        return [aud]
    return [a for a in aud if isinstance(a, str)] if isinstance(aud, list) else []
