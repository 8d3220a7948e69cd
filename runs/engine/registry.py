"""Task discovery: tasks.py of installed apps plus settings.RUNWATCH_TASK_MODULES."""

from __future__ import annotations

import importlib
import importlib.util

from django.apps import apps
from django.conf import settings

from runs import sdk


def task_modules(extra: list[str] | None = None) -> list[str]:
    modules = []
    for app in apps.get_app_configs():
        name = f"{app.name}.tasks"
        if importlib.util.find_spec(name) is not None:
            modules.append(name)
    for name in [*settings.RUNWATCH_TASK_MODULES, *(extra or [])]:
        if name not in modules:
            modules.append(name)
    return modules


def discover_tasks(modules: list[str]) -> dict[str, sdk.Task]:
    for name in modules:
        importlib.import_module(name)
    return sdk.registered_tasks()
