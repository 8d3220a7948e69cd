"""Dashboard pages for bulk actions (views in dashboard/views/bulk.py)."""

from __future__ import annotations

from django.urls import path

from dashboard.views import bulk

urlpatterns = [
    path("env/<slug:env>/bulk-actions/", bulk.bulk_actions_list, name="bulk-actions"),
    path(
        "env/<slug:env>/bulk-actions/preview",
        bulk.bulk_preview,
        name="bulk-preview",
    ),
    path("env/<slug:env>/bulk-actions/new", bulk.bulk_create, name="bulk-create"),
    path(
        "env/<slug:env>/bulk-actions/<str:bulk_id>/",
        bulk.bulk_action_page,
        name="bulk-action",
    ),
    path(
        "env/<slug:env>/bulk-actions/<str:bulk_id>/abort",
        bulk.bulk_abort,
        name="bulk-abort",
    ),
    path(
        "env/<slug:env>/bulk-actions/<str:bulk_id>/replay",
        bulk.bulk_replay_again,
        name="bulk-replay-again",
    ),
]
