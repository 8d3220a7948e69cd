"""User-independent page fragments: what a page renders and the live feed re-renders.

Nothing here reads the request or the user, so the live feed can render a fragment
once per change and send the same HTML to every connection watching it. Each
`render_*` function returns HTML whose top-level elements carry stable ids, ready for
an htmx out-of-band swap.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from runs import packets
from runs.models import (
    Attempt,
    Batch,
    Deployment,
    Environment,
    Run,
    RunEvent,
    RunEventKind,
)
from runs.querysets import COUNTER_CAP, progress_fraction
from runs.statuses import FAILED, FINISHED, GROUPS, RunStatus

# --- header counters -------------------------------------------------------------


def _count_text(count: int, cap: int) -> str:
    return f"{cap:,}+" if count >= cap else f"{count:,}"


def env_counters(environment: Environment, cap: int = COUNTER_CAP) -> dict:
    """Runs executing and queued in the environment: two index range counts that stop
    at `cap` rows."""
    runs = Run.objects.for_environment(environment)
    executing = runs.filter(status__in=GROUPS["running"]).count_capped(cap)
    queued = runs.filter(status__in=GROUPS["queued"]).count_capped(cap)
    runs_url = reverse("dashboard:runs", args=[environment.slug])
    return {
        "environment_label": environment.label,
        "executing": executing,
        "queued": queued,
        "executing_text": _count_text(executing, cap),
        "queued_text": _count_text(queued, cap),
        "executing_url": f"{runs_url}?status=running&period=all",
        "queued_url": f"{runs_url}?status=queued&period=all",
    }


def render_env_counters(environment: Environment) -> str:
    """The `#env-counters` element of every page's header."""
    return render_to_string(
        "dashboard/_env_counters.html", {"counters": env_counters(environment)}
    )


# --- run page ----------------------------------------------------------------------

RUN_PAGE_TEMPLATE = "dashboard/run_page.html"
RUN_FRAGMENTS = ("run-header", "run-metadata", "run-attempts", "run-related")
EVENT_ROW_TEMPLATE = "runs/_partials.html#run-event-row"
# The run page's history: status changes, log lines and tag additions (metadata writes
# are shown by the metadata panel, not as one line per write).
EVENT_KINDS = (RunEventKind.STATUS, RunEventKind.LOG, RunEventKind.TAGS)
EVENT_LIMIT = 500
CHILDREN_LIMIT = 25
REPLAYS_LIMIT = 10
RELATED_COLUMNS = (
    "id",
    "friendly_id",
    "task_identifier",
    "status",
    "created_at",
    "depth",
    "environment_id",
)


def run_page_context(run: Run) -> dict:
    """Everything run_page.html and its fragments show about `run`."""
    return {
        "run": run,
        "env_slug": run.environment.slug,
        "timing": _timing(run),
        "payload": _payload(run),
        "output": _output(run),
        "metadata": metadata_view(run),
        "attempts": _attempts(run),
        **_related(run),
        **_events(run),
    }


def render_run_fragments(run: Run) -> str:
    """run-header, run-metadata, run-attempts and run-related, each marked for an
    out-of-band swap by id (for an htmx response or a websocket message)."""
    context = {**run_page_context(run), "oob": True}
    return "".join(
        render_to_string(f"{RUN_PAGE_TEMPLATE}#{name}", context)
        for name in RUN_FRAGMENTS
    )


def render_run_event_rows(run: Run, after_event_id: int) -> str:
    """The run's event rows after `after_event_id`, oldest first: `<tr id="event-…">`
    elements to append to `<tbody id="run-events">`."""
    events = RunEvent.objects.filter(
        run=run, kind__in=EVENT_KINDS, pk__gt=after_event_id
    ).order_by("id")[:EVENT_LIMIT]
    return "".join(
        render_to_string(EVENT_ROW_TEMPLATE, {"event": event}) for event in events
    )


def _timing(run: Run) -> dict:
    end = run.finished_at or timezone.now()
    return {
        "queued_for": _queued_for(run, end),
        "ran_for": end - run.started_at if run.started_at else None,
        "total": end - run.created_at,
        "is_live": run.finished_at is None,
    }


def _queued_for(run: Run, end: datetime) -> timedelta | None:
    """How long the run waited before it first started. `queued_at` is the latest
    queueing: a retried or recovered run was queued again after its first start, so
    its first wait counts from its creation (or the end of its delay)."""
    if not (run.queued_at or run.started_at):
        return None
    started = run.started_at or end
    waited_from = run.queued_at or run.created_at
    if waited_from > started:
        waited_from = max(run.created_at, run.delay_until or run.created_at)
    return started - waited_from


def _payload(run: Run) -> dict:
    return _packet(run.payload, run.payload_type)


def _output(run: Run) -> dict | None:
    if run.output is None:
        return None
    return _packet(run.output, run.output_type)


def _packet(data: str | None, packet_type: str) -> dict:
    data = data or ""
    stored = packet_type == packets.STORE
    value = packets.decode_packet(data, packet_type)
    if packet_type == packets.TEXT or (isinstance(value, str) and not stored):
        text = value if isinstance(value, str) else data
    else:
        text = json.dumps(value, indent=2, ensure_ascii=False) if data else ""
    return {
        "text": text,
        "type": packet_type,
        "size": packets.byte_size(data),
        "is_stored": stored,
        "path": data if stored else "",
        "is_empty": not data,
    }


def metadata_view(run: Run) -> dict:
    """The metadata panel: a collapsible JSON tree with `progress` keys as bars, the
    last write's time and the size used of the 256 KB limit."""
    value = run.metadata if isinstance(run.metadata, dict) else {}
    size = len(json.dumps(value, separators=(",", ":")).encode())
    limit = settings.RUNWATCH_METADATA_MAX_BYTES
    return {
        "is_empty": not value,
        "tree": json_tree(value),
        "progress_bars": progress_bars(value),
        "size": size,
        "limit": limit,
        "used": min(1.0, size / limit) if limit else 0,
        "updated_at": run.metadata_updated_at,
        "version": run.metadata_version,
        "text": json.dumps(value, indent=2, ensure_ascii=False),
    }


def progress_bars(value: Any, path: str = "") -> list[tuple[str, float]]:
    """Every numeric `progress` key (at any depth) as (path, 0–1 fraction)."""
    bars: list[tuple[str, float]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            fraction = progress_fraction(item) if _is_progress_key(key) else None
            if fraction is not None:
                bars.append((child, fraction))
            else:
                bars.extend(progress_bars(item, child))
    elif isinstance(value, list):
        for index, item in enumerate(value[:100]):
            bars.extend(progress_bars(item, f"{path}[{index}]"))
    return bars


def _is_progress_key(key: str) -> bool:
    return str(key).lower().endswith("progress")


TREE_OPEN_DEPTH = 2


def json_tree(value: Any, depth: int = 0) -> SafeString:
    """A JSON value as nested <details> (objects and arrays) and typed scalars."""
    if isinstance(value, dict):
        items = [
            (format_html('<span class="jk">{}</span>', k), v) for k, v in value.items()
        ]
        return _tree_branch(items, "{", "}", len(value), depth)
    if isinstance(value, list):
        items = [
            (format_html('<span class="ji">{}</span>', i), v)
            for i, v in enumerate(value)
        ]
        return _tree_branch(items, "[", "]", len(value), depth)
    return _tree_scalar(value)


def _tree_branch(
    items: list[tuple[SafeString, Any]],
    opening: str,
    closing: str,
    size: int,
    depth: int,
) -> SafeString:
    if not items:
        return format_html('<span class="jp">{}{}</span>', opening, closing)
    rows = format_html_join(
        "",
        "<li>{}{}{}</li>",
        (
            (
                key,
                mark_safe('<span class="jp">: </span>'),
                json_tree(item, depth + 1),
            )
            for key, item in items
        ),
    )
    summary = f"{size} {'key' if opening == '{' else 'item'}{'s' if size != 1 else ''}"
    return format_html(
        '<details class="jtree"{}><summary><span class="jp">{}</span><span class="jsummary">{}</span></summary><ul>{}</ul><span class="jp">{}</span></details>',
        " open" if depth < TREE_OPEN_DEPTH else "",
        opening,
        summary,
        rows,
        closing,
    )


def _tree_scalar(value: Any) -> SafeString:
    if value is None:
        return mark_safe('<span class="jnull">null</span>')
    if isinstance(value, bool):
        return format_html(
            '<span class="jbool">{}</span>', "true" if value else "false"
        )
    if isinstance(value, int | float):
        return format_html('<span class="jnum">{}</span>', value)
    return format_html('<span class="jstr">"{}"</span>', value)


def _attempts(run: Run) -> list[dict]:
    """Attempts with their place on a timeline from the run's creation to now/finish."""
    attempts = list(Attempt.objects.filter(run=run).order_by("number"))
    start = run.created_at
    end = run.finished_at or timezone.now()
    for attempt in attempts:
        end = max(end, attempt.completed_at or end)
    span = max((end - start).total_seconds(), 0.001)
    rows = []
    for attempt in attempts:
        finish = attempt.completed_at or timezone.now()
        rows.append(
            {
                "attempt": attempt,
                "duration": finish - attempt.started_at,
                "is_live": attempt.completed_at is None,
                "left": _pct((attempt.started_at - start).total_seconds() / span),
                "width": max(
                    _pct((finish - attempt.started_at).total_seconds() / span), 0.6
                ),
            }
        )
    return rows


def _pct(fraction: float) -> float:
    return round(max(0.0, min(1.0, fraction)) * 100, 2)


def _related(run: Run) -> dict:
    related = Run.objects.only(*RELATED_COLUMNS)
    ids = {run.parent_id, run.root_id, run.replayed_from_id} - {None}
    by_id = {r.pk: r for r in related.filter(pk__in=ids)} if ids else {}
    children = list(
        Run.objects.filter(parent=run)
        .with_row_columns()
        .order_by("created_at", "id")[: CHILDREN_LIMIT + 1]
    )
    replays = list(
        related.filter(replayed_from=run).order_by("-created_at", "-id")[
            : REPLAYS_LIMIT + 1
        ]
    )
    return {
        "parent": by_id.get(run.parent_id),
        "root": by_id.get(run.root_id) if run.root_id != run.parent_id else None,
        "replayed_from": by_id.get(run.replayed_from_id),
        "children": children[:CHILDREN_LIMIT],
        "more_children": len(children) > CHILDREN_LIMIT,
        "replays": replays[:REPLAYS_LIMIT],
        "more_replays": len(replays) > REPLAYS_LIMIT,
    }


def events_before(run: Run, before_event_id: int | None = None) -> tuple[list, bool]:
    """Up to EVENT_LIMIT of the run's events before an id (the latest ones without
    one), oldest first, and whether there are earlier ones."""
    events = RunEvent.objects.filter(run=run, kind__in=EVENT_KINDS)
    if before_event_id is not None:
        events = events.filter(pk__lt=before_event_id)
    latest = list(events.order_by("-id")[: EVENT_LIMIT + 1])
    return list(reversed(latest[:EVENT_LIMIT])), len(latest) > EVENT_LIMIT


def _events(run: Run) -> dict:
    events, earlier = events_before(run)
    return {
        "events": events,
        "earlier_events": earlier,
        "first_event_id": events[0].pk if events else 0,
        "last_event_id": events[-1].pk if events else 0,
    }


# --- batches -------------------------------------------------------------------------

# How a batch's runs are summarised: (key, label, tone, statuses), in display order.
PROGRESS_GROUPS = (
    ("completed", "Completed", "success", (RunStatus.COMPLETED,)),
    ("failed", "Failed", "failure", tuple(FAILED)),
    # "Canceled" covers EXPIRED too: neither ran to an end (the links filter on both)
    ("canceled", "Canceled", "neutral", (RunStatus.CANCELED, RunStatus.EXPIRED)),
    ("running", "Running", "running", tuple(GROUPS["running"])),
    ("waiting", "Waiting", "waiting", tuple(GROUPS["waiting"])),
    ("queued", "Queued", "queued", tuple(GROUPS["queued"])),
)


def status_counts(batch_ids: list[int]) -> dict[int, dict[str, int]]:
    """Runs per status for each batch: one grouped query over the run_batch index."""
    counts: dict[int, dict[str, int]] = {pk: {} for pk in batch_ids}
    rows = (
        Run.objects.filter(batch_id__in=batch_ids)
        .values_list("batch_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for batch_id, status, n in rows:
        counts[batch_id][status] = n
    return counts


def progress_view(
    counts: dict[str, int], expected: int, batch_id: str, env_slug: str
) -> dict:
    """Stacked-bar segments and legend entries for a batch's runs."""
    total = sum(counts.values())
    runs_url = reverse("dashboard:runs", args=[env_slug])
    groups = []
    for key, label, tone, statuses in PROGRESS_GROUPS:
        n = sum(counts.get(s, 0) for s in statuses)
        if n:
            groups.append(
                {
                    "key": key,
                    "label": label,
                    "tone": tone,
                    "count": n,
                    "width": _pct(n / max(total, expected, 1)),
                    "url": f"{runs_url}?batch={batch_id}&status={key if key in GROUPS else ','.join(statuses)}&period=all",
                }
            )
    finished = sum(counts.get(s, 0) for s in FINISHED)
    return {
        "groups": groups,
        "total": total,
        "expected": expected,
        "finished": finished,
        "fraction": finished / max(total, expected, 1),
    }


def batch_context(batch: Batch, counts: dict[str, int] | None = None) -> dict:
    if counts is None:
        counts = status_counts([batch.pk])[batch.pk]
    end = batch.completed_at or timezone.now()
    return {
        "batch": batch,
        "env_slug": batch.environment.slug,
        "progress": progress_view(
            counts, batch.run_count, batch.friendly_id, batch.environment.slug
        ),
        "duration": end - batch.created_at,
        "is_live": batch.completed_at is None,
    }


def render_batch_fragments(batch: Batch) -> str:
    """The batch page's `#batch-summary` (status, counts, progress by status), marked
    for an out-of-band swap."""
    return render_to_string(
        "dashboard/batch_page.html#batch-summary", {**batch_context(batch), "oob": True}
    )


# --- deployments -------------------------------------------------------------------------

DEPLOYMENTS_LIMIT = 100


def deployments_with_task_counts(environment: Environment) -> list[Deployment]:
    return list(
        Deployment.objects.filter(environment=environment)
        .annotate(task_count=Count("tasks"))
        .order_by("-created_at", "-id")[:DEPLOYMENTS_LIMIT]
    )


def render_deployments_rows(environment: Environment) -> str:
    """`<tbody id="deployments-body">` of the deployments list (newest first)."""
    return render_to_string(
        "dashboard/deployments.html#deployments-body",
        {
            "deployments": deployments_with_task_counts(environment),
            "env_slug": environment.slug,
            "oob": True,
        },
    )


# --- tasks ------------------------------------------------------------------------------


def task_activity(environment: Environment, tasks: list, since: datetime) -> list[dict]:
    """Each task with its runs created since `since`, counted by status group (one
    grouped query), and the links to those runs."""
    counts: dict[str, dict[str, int]] = {task.slug: {} for task in tasks}
    rows = (
        Run.objects.filter(
            environment=environment,
            created_at__gte=since,
            task_identifier__in=list(counts),
        )
        .values_list("task_identifier", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for slug, status, n in rows:
        counts[slug][status] = n
    runs_url = reverse("dashboard:runs", args=[environment.slug])
    result = []
    for task in tasks:
        by_status = counts[task.slug]
        groups = []
        for key, label, tone, statuses in PROGRESS_GROUPS:
            n = sum(by_status.get(s, 0) for s in statuses)
            if n:
                status_param = key if key in GROUPS else ",".join(statuses)
                groups.append(
                    {
                        "label": label,
                        "tone": tone,
                        "count": n,
                        "url": f"{runs_url}?task={task.slug}&status={status_param}&period=1d",
                    }
                )
        result.append(
            {
                "task": task,
                "groups": groups,
                "total": sum(by_status.values()),
                "runs_url": f"{runs_url}?task={task.slug}&period=1d",
            }
        )
    return result
