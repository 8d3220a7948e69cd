from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("runs.api.urls")),
    path("api/", include("runs.api.bulk_urls")),
    path("", include("dashboard.bulk_urls")),
    path("", include("dashboard.testpage_urls")),
    path("", include("dashboard.ui_urls")),
]
