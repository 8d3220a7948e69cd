"""The live feed's outbox for changes that are not run events."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class LiveSignal(models.Model):
    """A batch, bulk action, deployment or environment changed. Run changes travel as
    RunEvent rows; everything else the dashboard shows live travels as one of these,
    so every server process learns about it by reading the table after an id."""

    kind = models.CharField(max_length=16)  # batch / bulk / deployment / environment
    object_id = models.BigIntegerField()
    environment_id = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.kind}:{self.object_id}"
