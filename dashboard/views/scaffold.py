"""TEMPORARY: section pages the dashboard, bulk and test-page work replaces. Delete when empty."""

from __future__ import annotations

from django.shortcuts import render

from dashboard.views.common import environment_page, page_context


def section(name: str, title: str):
    @environment_page
    def view(request, environment, *args, **kwargs):
        return render(
            request,
            "dashboard/not_built.html",
            page_context(request, environment, name, section_title=title),
        )

    return view
