"""Imported once by the forkserver so attempt processes start warm: Django is set up
and the configured task modules are imported before any fork."""

from __future__ import annotations

import contextlib
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

import django

django.setup()

from runs.engine.registry import discover_tasks, task_modules  # noqa: E402

# A missing task module is reported by the attempt process itself.
with contextlib.suppress(ImportError):
    discover_tasks(task_modules())
