"""The REST API, shaped like Trigger.dev's management API (docs/api.md).

Building an endpoint (the bulk-actions API does it this way too):

- `endpoint.api_endpoint(...)` decorates the view: methods, rate limit, bearer
  authentication (`request.api.environment`, `request.api.caller`), body limit,
  request idempotency, error answers, CSRF exemption, public-token headers.
- `bodies.read_json_object(request, request.api.max_body)` reads a JSON body within
  its limit; `bodies.iter_ndjson` reads NDJSON line by line.
- `validation.validate(body, schema)` checks it against a JSON Schema from
  `schemas.py` (the same schemas feed `/api/openapi.json`); failures are 400 with
  `details`.
- `queries.page_params(request)` parses `page[size|after|before]` (400 on bad input)
  into the arguments of `runs.pagination.paginate`; `presenters.page_body(items,
  page, params)` builds `{data, pagination}` with API cursors.
- `presenters` turns runs and batches into API objects (omitted, never null; status
  names by `request.api.legacy`).
- Raise `errors.ApiError(status, message)` for any error; services' `RunError`s are
  mapped by their `status_code`. Never answer another environment's objects: look
  them up with `environment=request.api.environment` and 404 otherwise.
"""
