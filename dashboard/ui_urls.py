"""Dashboard pages: runs, batches, deployments, tasks, API keys, environment switch."""

from __future__ import annotations

from django.urls import path

from dashboard.views import apikeys, batches, common, deployments, runs, tasks

urlpatterns = [
    path("", common.home, name="home"),
    path("env/<slug:env>/", common.switch_environment, name="env-switch"),
    path("env/<slug:env>/runs/", runs.runs_list, name="runs"),
    path("env/<slug:env>/runs/<str:run_id>/", runs.run_page, name="run"),
    path("env/<slug:env>/runs/<str:run_id>/events", runs.run_events, name="run-events"),
    path("env/<slug:env>/runs/<str:run_id>/cancel", runs.run_cancel, name="run-cancel"),
    path("env/<slug:env>/runs/<str:run_id>/replay", runs.run_replay, name="run-replay"),
    path(
        "env/<slug:env>/runs/<str:run_id>/reschedule",
        runs.run_reschedule,
        name="run-reschedule",
    ),
    path("env/<slug:env>/batches/", batches.batches_list, name="batches"),
    path("env/<slug:env>/batches/<str:batch_id>/", batches.batch_page, name="batch"),
    path("env/<slug:env>/tasks/", tasks.tasks_page, name="tasks"),
    path(
        "env/<slug:env>/deployments/", deployments.deployments_list, name="deployments"
    ),
    path(
        "env/<slug:env>/deployments/<str:version>/",
        deployments.deployment_page,
        name="deployment",
    ),
    path("env/<slug:env>/apikeys/", apikeys.apikeys_page, name="apikeys"),
    path("env/<slug:env>/apikeys/reveal", apikeys.apikey_reveal, name="apikey-reveal"),
    path(
        "env/<slug:env>/apikeys/regenerate",
        apikeys.apikey_regenerate,
        name="apikey-regenerate",
    ),
]
