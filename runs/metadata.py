"""Run metadata: the operations of Trigger.dev's metadata API and the update service.

`apply_operations` is pure; `update_metadata` applies a replace or a list of
operations with an optimistic lock on `metadata_version`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from runs.errors import InvalidInput, NotFound, Unprocessable
from runs.lifecycle import record_event
from runs.models import Run, RunEventKind
from runs.statuses import FINISHED
from runs.triggering import check_metadata_size

UPDATABLE_AFTER_FINISH = timedelta(hours=1)
OPERATION_TYPES = {"set", "delete", "append", "remove", "increment", "update"}
_FORBIDDEN_SEGMENTS = {"__proto__", "constructor", "prototype"}


def validate_operations(operations: Any, field_name: str = "operations") -> list[dict]:
    if not isinstance(operations, list):
        raise InvalidInput(f"{field_name} must be an array", field=field_name)
    for i, op in enumerate(operations):
        where = f"{field_name}[{i}]"
        if not isinstance(op, dict) or op.get("type") not in OPERATION_TYPES:
            raise InvalidInput(
                f"{where}: type must be one of {', '.join(sorted(OPERATION_TYPES))}",
                field=field_name,
            )
        if op["type"] == "update":
            if not isinstance(op.get("value"), dict):
                raise InvalidInput(
                    f"{where}: update needs an object value", field=field_name
                )
            continue
        key = op.get("key")
        if not isinstance(key, str) or not key:
            raise InvalidInput(
                f"{where}: key must be a non-empty string", field=field_name
            )
        if _FORBIDDEN_SEGMENTS & set(_path(key)):
            raise InvalidInput(f"{where}: key {key!r} is not allowed", field=field_name)
        if op["type"] == "increment" and (
            isinstance(op.get("value"), bool)
            or not isinstance(op.get("value", 1), int | float)
        ):
            raise InvalidInput(
                f"{where}: increment needs a numeric value", field=field_name
            )
        if op["type"] in {"set", "append", "remove"} and "value" not in op:
            raise InvalidInput(f"{where}: {op['type']} needs a value", field=field_name)
    return operations


def _path(key: str) -> list[str]:
    """`$.progress.step` is a JSON path; any other key is a top-level key."""
    if key.startswith("$."):
        return [part for part in key[2:].split(".") if part]
    return [key]


def _parent_of(data: dict, path: list[str], create: bool) -> dict | None:
    node = data
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            if not create:
                return None
            child = {}
            node[part] = child
        node = child
    return node


def apply_operations(metadata: dict, operations: list[dict]) -> tuple[dict, bool]:
    """Apply operations in order to a copy of `metadata`. Returns (new, changed)."""
    data = copy.deepcopy(metadata)
    changed = False
    for op in operations:
        kind = op["type"]
        if kind == "update":
            data = copy.deepcopy(op["value"])
            changed = True
            continue
        path = _path(op["key"])
        leaf = path[-1]
        if kind == "delete":
            parent = _parent_of(data, path, create=False)
            if parent is not None and leaf in parent:
                del parent[leaf]
                changed = True
            continue
        parent = _parent_of(data, path, create=kind != "remove")
        if kind == "set":
            parent[leaf] = op["value"]
        elif kind == "append":
            current = parent.get(leaf)
            if current is None:
                parent[leaf] = [op["value"]]
            elif isinstance(current, list):
                current.append(op["value"])
            else:
                parent[leaf] = [current, op["value"]]
        elif kind == "remove":
            current = parent.get(leaf) if parent is not None else None
            if not isinstance(current, list):
                continue
            parent[leaf] = [item for item in current if item != op["value"]]
        elif kind == "increment":
            current = parent.get(leaf)
            base = (
                current
                if isinstance(current, int | float) and not isinstance(current, bool)
                else 0
            )
            parent[leaf] = base + op.get("value", 1)
        changed = True
    return data, changed


@dataclass
class MetadataUpdate:
    metadata: dict | None = None  # replace the whole object
    operations: list[dict] | None = None
    parent_operations: list[dict] = field(default_factory=list)
    root_operations: list[dict] = field(default_factory=list)


def _check_updatable(run: Run) -> None:
    if (
        run.status in FINISHED
        and run.finished_at
        and timezone.now() - run.finished_at > UPDATABLE_AFTER_FINISH
    ):
        raise Unprocessable("Cannot update metadata for a completed run")


def update_metadata(run: Run, update: MetadataUpdate) -> dict:
    """Apply `update` to the run (and its parent/root operations to those runs).
    Returns the run's new metadata. Raises TooLarge past 256 KiB, Unprocessable more
    than an hour after the run finished."""
    _check_updatable(run)
    if update.operations is not None:
        new = _apply_with_lock(run.pk, validate_operations(update.operations))
    elif update.metadata is not None:
        if not isinstance(update.metadata, dict):
            raise InvalidInput("metadata must be a JSON object", field="metadata")
        new = _apply_with_lock(run.pk, [{"type": "update", "value": update.metadata}])
    else:
        new = Run.objects.values_list("metadata", flat=True).get(pk=run.pk)
    if update.parent_operations:
        _apply_with_lock(
            run.parent_id or run.pk,
            validate_operations(update.parent_operations, "parentOperations"),
        )
    if update.root_operations:
        _apply_with_lock(
            run.root_id or run.pk,
            validate_operations(update.root_operations, "rootOperations"),
        )
    return new


def _apply_with_lock(run_id: int, operations: list[dict], attempts: int = 5) -> dict:
    """Read-modify-write with an optimistic lock on metadata_version."""
    for _ in range(attempts):
        try:
            current, version, env_id = Run.objects.values_list(
                "metadata", "metadata_version", "environment_id"
            ).get(pk=run_id)
        except Run.DoesNotExist:
            raise NotFound("Task Run not found") from None
        new, changed = apply_operations(current or {}, operations)
        if not changed:
            return current or {}
        check_metadata_size(new)
        now = timezone.now()
        with transaction.atomic():
            updated = Run.objects.filter(pk=run_id, metadata_version=version).update(
                metadata=new,
                metadata_version=version + 1,
                metadata_updated_at=now,
                updated_at=now,
            )
            if updated:
                record_event(run_id, env_id, RunEventKind.METADATA, at=now)
                return new
    raise Unprocessable("Metadata was changed concurrently too often, please retry")
