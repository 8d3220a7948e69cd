"""Dashboard pages for bulk actions."""

from __future__ import annotations

from django.urls import path

from dashboard.views.scaffold import section

urlpatterns = [
    path(
        "env/<slug:env>/bulk-actions/",
        section("bulk-actions", "Bulk actions"),
        name="bulk-actions",
    ),
]
