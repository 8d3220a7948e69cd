"""Dashboard pages: runs, batches, deployments, tasks, API keys, environment switch."""

from __future__ import annotations

from django.urls import path

from dashboard.views import common, runs
from dashboard.views.scaffold import section

urlpatterns = [
    path("", common.home, name="home"),
    path("env/<slug:env>/", common.switch_environment, name="env-switch"),
    path("env/<slug:env>/runs/", runs.runs_list, name="runs"),
    path("env/<slug:env>/runs/<str:run_id>/", runs.run_page, name="run"),
    path("env/<slug:env>/runs/<str:run_id>/cancel", runs.run_cancel, name="run-cancel"),
    path("env/<slug:env>/runs/<str:run_id>/replay", runs.run_replay, name="run-replay"),
    path(
        "env/<slug:env>/runs/<str:run_id>/reschedule",
        runs.run_reschedule,
        name="run-reschedule",
    ),
    path("env/<slug:env>/batches/", section("batches", "Batches"), name="batches"),
    path(
        "env/<slug:env>/batches/<str:batch_id>/",
        section("batches", "Batch"),
        name="batch",
    ),
    path("env/<slug:env>/tasks/", section("tasks", "Tasks"), name="tasks"),
    path(
        "env/<slug:env>/deployments/",
        section("deployments", "Deployments"),
        name="deployments",
    ),
    path("env/<slug:env>/apikeys/", section("apikeys", "API keys"), name="apikeys"),
]
