from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from dashboard import bulk_urls, testpage_urls, ui_urls

# The dashboard's pages come from three modules (runs & co, bulk actions, the Test page)
# under one "dashboard" namespace.
dashboard_patterns = (
    [*ui_urls.urlpatterns, *bulk_urls.urlpatterns, *testpage_urls.urlpatterns],
    "dashboard",
)

urlpatterns = [
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("runs.api.urls")),
    path("api/", include("runs.api.bulk_urls")),
    path("", include(dashboard_patterns)),
]
