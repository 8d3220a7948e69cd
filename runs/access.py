"""Which environments a dashboard user may see."""

from __future__ import annotations

from django.db.models import QuerySet

from runs.models import Environment


def environments_for_user(user) -> QuerySet[Environment]:
    if not user.is_authenticated:
        return Environment.objects.none()
    if user.is_superuser:
        return Environment.objects.all()
    return Environment.objects.filter(members=user)


def user_can_access(user, environment_id: int) -> bool:
    return environments_for_user(user).filter(pk=environment_id).exists()
