"""The environments every install has."""

from __future__ import annotations

import hashlib
import hmac

from runs.models import Environment, EnvironmentType, new_api_key

DEFAULTS = [
    ("dev", EnvironmentType.DEVELOPMENT),
    ("staging", EnvironmentType.STAGING),
    ("prod", EnvironmentType.PRODUCTION),
]


def ensure_default_environments() -> list[Environment]:
    """Create dev, staging and prod on first start; leave existing ones alone."""
    envs = []
    for slug, env_type in DEFAULTS:
        env, _ = Environment.objects.get_or_create(
            slug=slug, defaults={"type": env_type, "api_key": new_api_key(env_type)}
        )
        envs.append(env)
    return envs


def create_preview_environment(branch: str) -> Environment:
    slug = f"preview-{branch}".lower().replace("/", "-")[:64]
    env, _ = Environment.objects.get_or_create(
        slug=slug,
        defaults={
            "type": EnvironmentType.PREVIEW,
            "branch_name": branch,
            "api_key": new_api_key(EnvironmentType.PREVIEW),
        },
    )
    return env


def key_digest(key: str) -> bytes:
    """SHA-256 of an API key: what SQL compares (`sha256(convert_to(api_key,
    'UTF8'))`), so that no comparison in the database works on the key itself."""
    return hashlib.sha256(key.encode()).digest()


def has_key(environment_id: int, key: str) -> bool:
    """Whether the environment (still) exists with this API key: one primary-key
    read, compared in constant time."""
    current = (
        Environment.objects.filter(pk=environment_id)
        .values_list("api_key", flat=True)
        .first()
    )
    return current is not None and hmac.compare_digest(current.encode(), key.encode())
