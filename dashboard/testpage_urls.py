"""The Test page."""

from __future__ import annotations

from django.urls import path

from dashboard.views import testpage

urlpatterns = [
    path("env/<slug:env>/test/", testpage.test_tasks, name="test"),
    path(
        "env/<slug:env>/test/tasks/<str:task_id>/",
        testpage.test_task,
        name="test-task",
    ),
    path(
        "env/<slug:env>/test/tasks/<str:task_id>/templates/",
        testpage.template_save,
        name="test-template-save",
    ),
    path(
        "env/<slug:env>/test/tasks/<str:task_id>/templates/<int:template_id>/rename",
        testpage.template_rename,
        name="test-template-rename",
    ),
    path(
        "env/<slug:env>/test/tasks/<str:task_id>/templates/<int:template_id>/delete",
        testpage.template_delete,
        name="test-template-delete",
    ),
]
