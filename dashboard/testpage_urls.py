"""The Test page."""

from __future__ import annotations

from django.urls import path

from dashboard.views.scaffold import section

urlpatterns = [
    path("env/<slug:env>/test/", section("test", "Test"), name="test"),
]
