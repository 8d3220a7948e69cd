"""Packets: the SDK's offload of large payloads, served by Runwatch itself.

`PUT /api/v2/packets/{path}` answers a signed upload URL; the SDK then PUTs the
bytes there (no Authorization: the URL is the credential). `GET /api/v1/packets/{path}`
and `GET /api/v1/runs/{id}/packets/{payload|output}` answer a signed download URL,
which serves the bytes with the Content-Type they were uploaded with.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from runs import packets
from runs.api.bodies import read_body
from runs.api.endpoint import ApiRequest, api_endpoint
from runs.api.errors import ApiError, error_response
from runs.api.packet_urls import InvalidPacketUrl, download_url, upload_url, verify
from runs.models import Run

MAX_PATH = 1024


def _check_path(path: str) -> str:
    path = path.strip("/")
    if not path or len(path) > MAX_PATH or ".." in path.split("/"):
        raise ApiError(400, "Invalid packet path")
    return path


@api_endpoint("PUT")
def create_upload_url(request: ApiRequest, path: str) -> HttpResponse:
    path = _check_path(path)
    packets.reserve_packet(request.api.environment, path)
    return JsonResponse(
        {
            "presignedUrl": upload_url(request, request.api.environment, path),
            "storagePath": path,
        }
    )


@api_endpoint("GET")
def create_download_url(request: ApiRequest, path: str) -> HttpResponse:
    path = _check_path(path)
    if not packets.is_uploaded(request.api.environment, path):
        raise ApiError(404, "Packet not found")
    return JsonResponse(
        {"presignedUrl": download_url(request, request.api.environment, path)}
    )


@api_endpoint("GET", public_tokens=True)
def run_packet_url(request: ApiRequest, run_id: str, field: str) -> HttpResponse:
    run = Run.objects.filter(
        environment=request.api.environment, friendly_id=run_id
    ).first()
    if run is None:
        raise ApiError(404, "Run not found")
    request.api.caller.authorize(
        "read", runs=run.friendly_id, tasks=run.task_identifier
    )
    data, data_type = (
        (run.payload, run.payload_type)
        if field == "payload"
        else (run.output, run.output_type)
    )
    if data_type != packets.STORE or not data:
        raise ApiError(404, f"The run's {field} is not stored as a packet")
    return JsonResponse(
        {"presignedUrl": download_url(request, request.api.environment, data)}
    )


@csrf_exempt
def transfer(request: HttpRequest, token: str) -> HttpResponse:
    """The signed URL itself: PUT stores the bytes, GET returns them."""
    if request.method not in ("GET", "PUT"):
        response = error_response(405, "Method not allowed")
        response["Allow"] = "GET, PUT"
        return response
    try:
        environment, path = verify(token, request.method)
    except InvalidPacketUrl as exc:
        return error_response(403, str(exc))
    if request.method == "PUT":
        try:
            data = read_body(request, settings.RUNWATCH_PACKET_MAX_BYTES)
        except ApiError as exc:
            return exc.response()
        packets.store_packet(
            environment, path, data, request.content_type or packets.JSON
        )
        return HttpResponse(status=200)
    stored = packets.read_packet(environment, path)
    if stored is None:
        return error_response(404, "Packet not found")
    data, content_type = stored
    return HttpResponse(data, content_type=content_type)
