"""The bulk actions API's routes (mounted at /api/); views in runs/api/bulk.py."""

from __future__ import annotations

from django.urls import path

from runs.api import bulk

urlpatterns = [
    path("v1/bulk-actions", bulk.bulk_actions, name="api-bulk-actions"),
    path("v1/bulk-actions/<str:bulk_id>", bulk.bulk_action, name="api-bulk-action"),
    path(
        "v1/bulk-actions/<str:bulk_id>/abort", bulk.abort, name="api-bulk-action-abort"
    ),
]
