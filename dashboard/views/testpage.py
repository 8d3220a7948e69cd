"""The Test page: run any task of an environment's current deployment by hand, with a
payload, metadata and options; previous test runs and saved templates reload the form."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from django.contrib import messages
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from dashboard.run_options import queue_choices
from dashboard.testpage_forms import (
    BLANK,
    TestRunForm,
    editors_from_run,
    initial_from_run,
    initial_from_template,
    size_limits,
)
from dashboard.views.common import environment_page, page_context
from runs.deployments import current_deployment, find_task
from runs.errors import RunError
from runs.models import (
    Deployment,
    DeploymentStatus,
    Environment,
    Run,
    TaskDefinition,
    TestTemplate,
)
from runs.triggering import MAX_TAG_LENGTH, MAX_TAGS, trigger

PREVIOUS_RUNS = 20
OLDER_VERSIONS = 50
TEMPLATE_NAME_MAX = TestTemplate._meta.get_field("name").max_length


@environment_page
def test_tasks(request: HttpRequest, environment: Environment) -> HttpResponse:
    """The searchable list of the current deployment's tasks."""
    deployment = current_deployment(environment)
    query = request.GET.get("q", "").strip()
    tasks = []
    if deployment is not None:
        tasks = list(deployment.tasks.filter(slug__icontains=query))
    last_tested = dict(
        Run.objects.filter(
            environment=environment,
            is_test=True,
            task_identifier__in=[t.slug for t in tasks],
        )
        .values("task_identifier")
        .annotate(last=Max("created_at"))
        .values_list("task_identifier", "last")
    )
    for task in tasks:
        task.last_tested = last_tested.get(task.slug)
    context = page_context(
        request,
        environment,
        "test",
        deployment=deployment,
        tasks=tasks,
        query=query,
        live_url=f"/ws{request.path}",  # the header's live counters
    )
    template = "dashboard/test_tasks.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#test-task-list"
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
@environment_page
def test_task(
    request: HttpRequest, environment: Environment, task_id: str
) -> HttpResponse:
    """GET: the form, loaded from `?run=` or `?template=`, blank with `?blank`, else with
    the payload and metadata of the last test run (as Trigger.dev does). POST: run it."""
    task = _current_task(environment, task_id)
    if request.method == "POST":
        return _run_test(request, environment, task)
    loaded_run = loaded_template = prefilled_from = None
    initial = dict(BLANK)
    if run_id := request.GET.get("run"):
        loaded_run = get_object_or_404(
            Run, environment=environment, task_identifier=task.slug, friendly_id=run_id
        )
        initial = initial_from_run(loaded_run)
    elif template_id := request.GET.get("template"):
        loaded_template = _template(environment, task, template_id)
        initial = initial_from_template(loaded_template)
    elif "blank" not in request.GET:
        prefilled_from = _test_runs(environment, task).first()
        if prefilled_from is not None:
            initial = editors_from_run(prefilled_from)
    form = _form(environment, task, initial=initial)
    context = _task_context(
        request,
        environment,
        task,
        form,
        loaded_run=loaded_run,
        loaded_template=loaded_template,
        prefilled_from=prefilled_from,
    )
    template = "dashboard/test_task.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#test-workspace"
    return render(request, template, context)


def _run_test(
    request: HttpRequest, environment: Environment, task: TaskDefinition
) -> HttpResponse:
    form = _form(environment, task, data=request.POST)
    if form.is_valid():
        try:
            run, cached = trigger(
                environment,
                task.slug,
                form.cleaned_data["payload"],
                form.trigger_options(),
            )
        except RunError as exc:
            form.add_service_error(exc)
        else:
            if cached:
                messages.info(
                    request,
                    "A run with this idempotency key already exists: showing it instead of a new one.",
                )
            else:
                messages.success(request, f"Test run {run.friendly_id} created")
            return redirect("dashboard:run", environment.slug, run.friendly_id)
    context = _task_context(request, environment, task, form)
    return render(request, "dashboard/test_task.html", context, status=400)


# --- templates -----------------------------------------------------------------------


@require_POST
@environment_page
def template_save(
    request: HttpRequest, environment: Environment, task_id: str
) -> HttpResponse:
    """Save the form's current configuration under a name; an existing template of that
    name (same task and environment) is overwritten."""
    task = _current_task(environment, task_id)
    form = _form(environment, task, data=request.POST)
    name = request.POST.get("template_name", "").strip()
    name_error = _template_name_error(name)
    if form.is_valid() and not name_error:
        values = form.template_values()
        template, created = TestTemplate.objects.update_or_create(
            environment=environment,
            task_identifier=task.slug,
            name=name,
            defaults=values,
            create_defaults={**values, "created_by": request.user},
        )
        verb = "Saved" if created else "Updated"
        messages.success(request, f"{verb} template “{template.name}”")
        return redirect(_task_url(environment, task) + f"?template={template.pk}")
    context = _task_context(
        request,
        environment,
        task,
        form,
        template_name=name,
        template_error=name_error
        or "Fix the errors in the form before saving it as a template",
    )
    return render(request, "dashboard/test_task.html", context, status=400)


@require_POST
@environment_page
def template_rename(
    request: HttpRequest, environment: Environment, task_id: str, template_id: int
) -> HttpResponse:
    task = _current_task(environment, task_id)
    template = _template(environment, task, template_id)
    name = request.POST.get("name", "").strip()
    error = _template_name_error(name)
    taken = (
        TestTemplate.objects.filter(
            environment=environment, task_identifier=task.slug, name=name
        )
        .exclude(pk=template.pk)
        .exists()
    )
    if not error and taken:
        error = f"A template named “{name}” already exists for this task"
    if not error:
        template.name = name
        try:
            with transaction.atomic():
                template.save(update_fields=["name", "updated_at"])
        except IntegrityError:  # taken by a concurrent save or rename
            error = f"A template named “{name}” already exists for this task"
    return _templates_answer(
        request,
        environment,
        task,
        error=error,
        done=None if error else f"Renamed template to “{name}”",
    )


@require_POST
@environment_page
def template_delete(
    request: HttpRequest, environment: Environment, task_id: str, template_id: int
) -> HttpResponse:
    task = _current_task(environment, task_id)
    template = _template(environment, task, template_id)
    template.delete()
    return _templates_answer(
        request, environment, task, done=f"Deleted template “{template.name}”"
    )


def _templates_answer(
    request: HttpRequest,
    environment: Environment,
    task: TaskDefinition,
    *,
    error: str | None = None,
    done: str | None = None,
) -> HttpResponse:
    """htmx: the templates panel, re-rendered. Without JS: back to the page with a message."""
    if not request.htmx:
        if error:
            messages.error(request, error)
        elif done:
            messages.success(request, done)
        return redirect(_task_url(environment, task))
    context = _templates_context(
        environment, task, _template_in_url(request.htmx.current_url)
    )
    context.update(rename_error=error, template_done=done)
    return render(
        request,
        "dashboard/test_task.html#test-templates",
        context,
        status=400 if error else 200,
    )


# --- helpers ---------------------------------------------------------------------------


def _current_task(environment: Environment, task_id: str) -> TaskDefinition:
    """The task as the environment's current deployment defines it. A task that
    deployment does not have is not offered here (404)."""
    task = find_task(environment, task_id)
    if task is None:
        raise Http404("This task is not in the environment's current deployment")
    return task


def _template(
    environment: Environment, task: TaskDefinition, template_id: int | str
) -> TestTemplate:
    try:
        pk = int(template_id)
    except (TypeError, ValueError):
        raise Http404("No such template") from None
    return get_object_or_404(
        TestTemplate, pk=pk, environment=environment, task_identifier=task.slug
    )


def _templates_context(
    environment: Environment, task: TaskDefinition, loaded_id: int | None
) -> dict:
    """What the templates panel renders (on the page and alone, after an htmx action)."""
    templates = list(
        TestTemplate.objects.filter(
            environment=environment, task_identifier=task.slug
        ).order_by("name")
    )
    return {
        "environment": environment,
        "task": task,
        "task_url": _task_url(environment, task),
        "templates": templates,
        "loaded_template_id": loaded_id,
        "template_name": next((t.name for t in templates if t.pk == loaded_id), ""),
        "template_name_max": TEMPLATE_NAME_MAX,
    }


def _template_name_error(name: str) -> str | None:
    if not name:
        return "Give the template a name"
    if len(name) > TEMPLATE_NAME_MAX:
        return f"Template names are at most {TEMPLATE_NAME_MAX} characters"
    return None


def _template_in_url(url: str | None) -> int | None:
    values = parse_qs(urlsplit(url or "").query).get("template", [])
    return int(values[0]) if values and values[0].isdigit() else None


def _test_runs(environment: Environment, task: TaskDefinition):
    """This task's test runs here, newest first (index run_env_task_test)."""
    return Run.objects.filter(
        environment=environment, task_identifier=task.slug, is_test=True
    ).order_by("-created_at", "-id")


def _task_url(environment: Environment, task: TaskDefinition) -> str:
    return reverse("dashboard:test-task", args=[environment.slug, task.slug])


def _form(
    environment: Environment,
    task: TaskDefinition,
    *,
    data=None,
    initial: dict | None = None,
) -> TestRunForm:
    queues = queue_choices(environment)
    versions = [
        (version, version)
        for version in Deployment.objects.filter(
            environment=environment,
            status=DeploymentStatus.DEPLOYED,
            is_current=False,
            tasks__slug=task.slug,
        )
        .order_by("-created_at", "-id")
        .values_list("version", flat=True)[:OLDER_VERSIONS]
    ]
    return TestRunForm(
        data,
        initial=initial,
        environment=environment,
        task=task,
        queues=queues,
        versions=versions,
    )


def _task_context(
    request: HttpRequest,
    environment: Environment,
    task: TaskDefinition,
    form: TestRunForm,
    *,
    loaded_run: Run | None = None,
    loaded_template: TestTemplate | None = None,
    prefilled_from: Run | None = None,
    template_name: str = "",
    template_error: str | None = None,
) -> dict:
    context = page_context(request, environment, "test", live_url=f"/ws{request.path}")
    context.update(
        _templates_context(
            environment, task, loaded_template.pk if loaded_template else None
        )
    )
    environments = context["environments"]
    offered = set(
        TaskDefinition.objects.filter(
            slug=task.slug,
            deployment__is_current=True,
            deployment__environment__in=environments,
        ).values_list("deployment__environment_id", flat=True)
    )
    previous_runs = _test_runs(environment, task).only(
        "friendly_id", "status", "created_at", "tags"
    )[:PREVIOUS_RUNS]
    context.update(
        form=form,
        editors=_editors(form),
        tag_limits={"count": MAX_TAGS, "length": MAX_TAG_LENGTH},
        environment_choices=[(env, env.pk in offered) for env in environments],
        sibling_tasks=list(
            TaskDefinition.objects.filter(deployment_id=task.deployment_id).values_list(
                "slug", "queue"
            )
        ),
        previous_runs=list(previous_runs),
        previous_limit=PREVIOUS_RUNS,
        loaded_run=loaded_run,
        loaded_template=loaded_template,
        prefilled_from=prefilled_from,
        template_error=template_error,
    )
    if template_name:
        context["template_name"] = template_name
    return context


def _editors(form: TestRunForm) -> list[dict]:
    """The payload and metadata editors; the one with an error opens first."""
    limits = size_limits()
    metadata_first = bool(form["metadata"].errors) and not form["payload"].errors
    return [
        {
            "name": "payload",
            "label": "Payload",
            "field": form["payload"],
            "limit": limits["payload"],
            "hint": "The JSON value passed to the task.",
            "active": not metadata_first,
        },
        {
            "name": "metadata",
            "label": "Metadata",
            "field": form["metadata"],
            "limit": limits["metadata"],
            "hint": "A JSON object the task reads and updates while it runs.",
            "active": metadata_first,
        },
    ]
