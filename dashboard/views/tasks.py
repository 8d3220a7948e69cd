"""Tasks page: the current deployment's tasks with their runs of the last 24 hours."""

from __future__ import annotations

from datetime import timedelta

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from dashboard.presenters import task_activity
from dashboard.views.common import environment_page, page_context
from runs.deployments import current_deployment
from runs.models import Environment

WINDOW = timedelta(hours=24)


@environment_page
def tasks_page(request: HttpRequest, environment: Environment) -> HttpResponse:
    deployment = current_deployment(environment)
    tasks = list(deployment.tasks.order_by("slug")) if deployment else []
    context = page_context(
        request,
        environment,
        "tasks",
        deployment=deployment,
        rows=task_activity(environment, tasks, timezone.now() - WINDOW),
        env_slug=environment.slug,
    )
    return render(request, "dashboard/tasks.html", context)
