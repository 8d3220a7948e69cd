"""What an attempt process asks of its worker: metadata flushes and log lines,
child triggers, and the status of a child it waits for."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from runs import packets
from runs.errors import RunError
from runs.lifecycle import record_events
from runs.metadata import MetadataUpdate, update_metadata
from runs.models import Run, RunEvent, RunEventKind
from runs.sdk import _trigger_options
from runs.statuses import FINISHED
from runs.triggering import BatchItem, batch_trigger, trigger

logger = logging.getLogger("runwatch.worker")
LOG_LEVELS = {"debug", "info", "warn", "error"}


def write_flush(run_id: int, environment_id: int, ops: dict, logs: list[dict]) -> None:
    """Apply a batch of metadata operations and store a batch of log lines."""
    if logs:
        now = timezone.now()
        record_events(
            [
                RunEvent(
                    run_id=run_id,
                    environment_id=environment_id,
                    kind=RunEventKind.LOG,
                    level=line["level"] if line["level"] in LOG_LEVELS else "info",
                    message=line["message"][:10_000],
                    attributes=line.get("attributes") or {},
                    created_at=now,
                )
                for line in logs
            ]
        )
    if any(ops.values()):
        run = Run.objects.only(
            "pk", "status", "finished_at", "parent_id", "root_id", "environment_id"
        ).get(pk=run_id)
        try:
            update_metadata(
                run,
                MetadataUpdate(
                    operations=ops.get("self") or None,
                    parent_operations=ops.get("parent") or [],
                    root_operations=ops.get("root") or [],
                ),
            )
        except RunError as exc:  # e.g. 256 KB exceeded: keep the run going, log why
            logger.warning("metadata flush for run %s rejected: %s", run_id, exc)
            record_events(
                [
                    RunEvent(
                        run_id=run_id,
                        environment_id=environment_id,
                        kind=RunEventKind.LOG,
                        level="error",
                        message=f"Metadata update rejected: {exc}",
                        created_at=timezone.now(),
                    )
                ]
            )


def trigger_child(
    parent: Run, task_id: str, payload: Any, options: dict, wait: bool
) -> tuple[str, bool]:
    opts = _trigger_options(
        {
            **options,
            "parent_run_id": parent.friendly_id,
            "resume_parent_on_completion": wait,
        }
    )
    with transaction.atomic():
        run, cached = trigger(parent.environment, task_id, payload, opts)
    return run.friendly_id, cached


def trigger_children(parent: Run, items: list) -> list[tuple[str, bool]]:
    batch_items = [
        BatchItem(
            task_id,
            payload,
            options=_trigger_options({**options, "parent_run_id": parent.friendly_id}),
        )
        for task_id, payload, options in items
    ]
    _, runs, cached = batch_trigger(parent.environment, batch_items)
    return [(r.friendly_id, cached) for r in runs]


def child_results(environment_id: int, friendly_ids: list[str]) -> dict[str, tuple]:
    """Finished children among `friendly_ids`: id → (status, output, error)."""
    rows = Run.objects.filter(
        environment_id=environment_id, friendly_id__in=friendly_ids, status__in=FINISHED
    ).values_list("friendly_id", "status", "output", "output_type", "error")
    return {
        fid: (status, packets.decode_packet(output, output_type), error)
        for fid, status, output, output_type, error in rows
    }


def parent_run(run_id: int) -> Run:
    return Run.objects.select_related("environment").get(pk=run_id)
