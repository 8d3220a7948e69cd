"""Deployments list and deployment page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from dashboard.presenters import DEPLOYMENTS_LIMIT, deployments_with_task_counts
from dashboard.views.common import environment_page, page_context
from runs.models import Deployment, Environment


@environment_page
def deployments_list(request: HttpRequest, environment: Environment) -> HttpResponse:
    deployments = deployments_with_task_counts(environment)
    context = page_context(
        request,
        environment,
        "deployments",
        deployments=deployments,
        env_slug=environment.slug,
        limited=len(deployments) == DEPLOYMENTS_LIMIT,
        live_url=f"/ws{request.path}",
    )
    return render(request, "dashboard/deployments.html", context)


@environment_page
def deployment_page(
    request: HttpRequest, environment: Environment, version: str
) -> HttpResponse:
    deployment = get_object_or_404(Deployment, environment=environment, version=version)
    context = page_context(
        request,
        environment,
        "deployments",
        deployment=deployment,
        tasks=list(deployment.tasks.order_by("slug")),
        env_slug=environment.slug,
    )
    return render(request, "dashboard/deployment_page.html", context)
