"""The environments every install has."""

from __future__ import annotations

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
