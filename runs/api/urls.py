"""The API's routes (mounted at /api/). Bulk actions are in bulk_urls.py."""

from __future__ import annotations

from django.urls import path

from runs.api.views import batches, docs, keys, packets, runs, tasks

urlpatterns = [
    path("v1/tasks/<str:task>/trigger", tasks.trigger_task, name="api-trigger"),
    path("v1/tasks/batch", tasks.batch_trigger_v1, name="api-batch-v1"),
    path("v2/tasks/batch", tasks.batch_trigger_v2, name="api-batch-v2"),
    path("v3/batches", tasks.create_batch_v3, name="api-create-batch"),
    path(
        "v3/batches/<str:batch_id>/items",
        tasks.stream_batch_items,
        name="api-batch-items",
    ),
    path("v1/batches/<str:batch_id>", batches.retrieve_batch_v1, name="api-batch"),
    path("v2/batches/<str:batch_id>", batches.retrieve_batch_v2, name="api-batch-v2"),
    path("v1/runs", runs.list_runs, name="api-runs"),
    path("v3/runs/<str:run_id>", runs.retrieve_run, name="api-run"),
    path("v2/runs/<str:run_id>/cancel", runs.cancel, name="api-run-cancel"),
    path("v1/runs/<str:run_id>/replay", runs.replay_run, name="api-run-replay"),
    path(
        "v1/runs/<str:run_id>/reschedule",
        runs.reschedule_run,
        name="api-run-reschedule",
    ),
    path("v1/runs/<str:run_id>/metadata", runs.run_metadata, name="api-run-metadata"),
    path("v1/runs/<str:run_id>/tags", runs.run_tags, name="api-run-tags"),
    path(
        "v1/runs/<str:run_id>/packets/<str:field>",
        packets.run_packet_url,
        name="api-run-packet",
    ),
    path("v2/packets/<path:path>", packets.create_upload_url, name="api-packet-upload"),
    path("v1/packets/<path:path>", packets.create_download_url, name="api-packet"),
    path("packets/<str:token>", packets.transfer, name="api-packet-transfer"),
    path("v1/idempotencyKeys/<str:key>/reset", keys.reset_key, name="api-reset-key"),
    path("v1/auth/jwt/claims", keys.jwt_claims, name="api-jwt-claims"),
    path("openapi.json", docs.openapi_document, name="api-openapi"),
    path("docs", docs.docs_page, name="api-docs"),
]
