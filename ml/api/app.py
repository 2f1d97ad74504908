"""The HTTP API and the loan officer's page: a FastAPI application over `LiveModels`.

    GET  /                          the loan officer's page (static files of this package)
    GET  /healthz                   200 when every deployed task's model is loaded, else 503
    GET  /v1/tasks                  deployed models: deployment, metrics, input contract
    GET  /v1/tasks/{task}           one of them
    POST /v1/tasks/{task}/predict   {"rows": [{...}, ...]} -> one answer per row, in order
    GET  /docs, /openapi.json       the generated OpenAPI page (Swagger UI shipped in a wheel)

A predict body is read whole up to `max_body_bytes` (more is a 413 before anything is parsed),
parsed as JSON (nothing is ever unpickled from a request), refused with a 413 above `max_rows`
rows, then validated against the task's row model (`ml.api.schema`): a missing field, a text in
a number field, a NaN is a 422 whose `loc` names the row and the field. When an API key is set,
every /v1 route needs it in the `X-API-Key` header (401 otherwise; compared in constant time).
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from ml.api.live import LiveModels, Served, Unavailable, UnknownTask
from ml.core.errors import UserError

#: The files of the page.
STATIC = Path(__file__).resolve().parent / "static"
#: The header that carries the API key.
KEY_HEADER = "X-API-Key"
#: Defaults of `ml.serve --max-rows` and `--max-body-mb`.
DEFAULT_MAX_ROWS = 10_000
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """How the server answers: its manifest, its API key (None: none needed) and its limits."""

    manifest: Path
    api_key: str | None = None
    max_rows: int = DEFAULT_MAX_ROWS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


class ApiError(Exception):
    """An answer other than 200, with its status and detail."""

    def __init__(self, status: int, detail: Any):
        super().__init__(str(detail))
        self.status, self.detail = status, detail


def _field_errors(err: ValidationError) -> list[dict[str, Any]]:
    """pydantic's errors located in the body: ["body", "rows", <row>, <field>]."""
    return [
        {"loc": ["body", "rows", *e["loc"]], "msg": e["msg"], "type": e["type"]}
        for e in err.errors(include_url=False, include_input=False)
    ]


def _unprocessable(message: str, loc: list[Any], kind: str) -> ApiError:
    return ApiError(422, [{"loc": loc, "msg": message, "type": kind}])


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) beyond `limit` bytes before it is all read."""
    declared = request.headers.get("content-length")
    too_large = f"the body is larger than {limit:,} bytes (ml.serve --max-body-mb)"
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, too_large)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, too_large)
        chunks.append(chunk)
    return b"".join(chunks)


def _rows_of(body: bytes, max_rows: int) -> list[Any]:
    """The `rows` list of a JSON body, refused (422, 413) when it is not one or too long."""
    try:
        content = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise _unprocessable(f"the body is not JSON: {err}", ["body"], "json_invalid") from None
    if not isinstance(content, dict) or "rows" not in content:
        raise _unprocessable('the body must be an object {"rows": [...]}', ["body"], "missing")
    rows = content["rows"]
    if not isinstance(rows, list):
        raise _unprocessable("rows must be a list of objects", ["body", "rows"], "list_type")
    if not rows:
        raise _unprocessable("no rows to score", ["body", "rows"], "too_short")
    if len(rows) > max_rows:
        raise ApiError(
            413, f"{len(rows):,} rows: at most {max_rows:,} per request (ml.serve --max-rows)"
        )
    return rows


def _model_of(served: Served) -> dict[str, Any]:
    d = served.deployment
    return {
        "run_id": served.model.run_id,
        "model_name": served.model.model_name,
        "deployed": served.deployed,
        "deployment_id": d["deployment_id"] if served.deployed else None,
        "deployed_at": d["deployed_at"] if served.deployed else None,
        "artifact_sha256": served.model.artifact_sha256,
    }


def create_app(settings: Settings, live: LiveModels | None = None) -> FastAPI:
    """The application; `live`: the models to answer with (default: from the manifest)."""
    live = live or LiveModels(settings.manifest)
    app = FastAPI(
        title="Predictive analytics warehouse",
        summary="Predictions of the deployed models, the same as the warehouse's.",
        version="1",
        docs_url=None,
        redoc_url=None,
    )
    app.state.live = live
    key_header = APIKeyHeader(name=KEY_HEADER, auto_error=False, description="SERVE_API_KEY")

    def check_key(key: str | None = Depends(key_header)) -> None:
        if settings.api_key is None:
            return
        if key is None or not hmac.compare_digest(key.encode(), settings.api_key.encode()):
            raise ApiError(401, f"a missing or wrong API key (header {KEY_HEADER})")

    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "ApiKey"} if err.status == 401 else None
        return JSONResponse({"detail": err.detail}, status_code=err.status, headers=headers)

    def served(task: str, model: str | None = None) -> Served:
        try:
            return live.served(task, model)
        except UnknownTask as err:
            raise ApiError(404, str(err)) from None
        except Unavailable as err:
            raise ApiError(503, str(err)) from None
        except UserError as err:  # a candidate's file missing or changed
            raise ApiError(503, str(err)) from None

    api = APIRouter(prefix="/v1", dependencies=[Depends(check_key)])

    @api.get("/tasks", summary="The deployed models, their metrics and input contracts")
    def tasks() -> dict[str, Any]:
        answer, unavailable = [], live.errors()
        for task in live.tasks():
            if task in unavailable:
                answer.append({"task": task, "status": "unavailable", "error": unavailable[task]})
            else:
                answer.append({"status": "ok", **served(task).describe()})
        return {"tasks": answer}

    @api.get("/tasks/{task}", summary="One deployed model, its metrics and input contract")
    def task_info(task: str) -> dict[str, Any]:
        return {"status": "ok", **served(task).describe()}

    @api.post(
        "/tasks/{task}/predict",
        summary="Score rows with the task's deployed model",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Rows"}}},
            }
        },
        responses={
            401: {"description": "missing or wrong API key"},
            404: {"description": "no deployed model of that task"},
            413: {"description": "the body or its rows exceed the limits"},
            422: {"description": "a row does not follow the input contract (loc names it)"},
            503: {"description": "the deployed model cannot be loaded (hash check)"},
        },
    )
    async def predict(
        task: str,
        request: Request,
        model: str | None = Query(None, description="a candidate of the deployed run, by name"),
        explain: bool = Query(True, description="reasons for decisions (loans)"),
    ) -> JSONResponse:
        body = await _read_body(request, settings.max_body_bytes)
        rows = _rows_of(body, settings.max_rows)
        chosen = served(task, model)
        try:
            result = await run_in_threadpool(chosen.predict, rows, explain)
        except ValidationError as err:
            raise ApiError(422, _field_errors(err)) from None
        except UserError as err:
            raise _unprocessable(str(err), ["body", "rows"], "value_error") from None
        return JSONResponse({"task": task, "model": _model_of(chosen), **result})

    app.include_router(api)

    @app.get("/healthz", summary="Liveness: every deployed task's model is loaded")
    def healthz() -> JSONResponse:
        try:
            tasks, errors = live.tasks(), live.errors()
        except UserError as err:
            return JSONResponse({"status": "unavailable", "error": str(err)}, status_code=503)
        body = {
            "status": "ok" if not errors and tasks else "degraded",
            "tasks": {t: errors.get(t, "ok") for t in tasks},
        }
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    swagger = resources.files("fastapi_swagger") / "resources"
    app.mount("/swagger", StaticFiles(directory=str(swagger)), name="swagger")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title}: API",
            swagger_js_url="/swagger/swagger-ui-bundle.js",
            swagger_css_url="/swagger/swagger-ui.css",
            swagger_favicon_url="/swagger/favicon-32x32.png",
        )

    def openapi() -> dict[str, Any]:
        """The generated schema with each deployed task's row model (rebuilt on every call:
        a promotion may change a contract)."""
        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        refs = []
        for task in live.tasks():
            try:
                row = live.served(task).rows
            except UserError:
                continue
            row_schema = row.model_json_schema(
                by_alias=True, ref_template="#/components/schemas/{model}"
            )
            components[row.__name__] = row_schema
            refs.append({"$ref": f"#/components/schemas/{row.__name__}"})
        components["Rows"] = {
            "type": "object",
            "required": ["rows"],
            "properties": {
                "rows": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": settings.max_rows,
                    "items": {"oneOf": refs} if refs else {"type": "object"},
                    "description": "rows of the task's input contract (GET /v1/tasks/{task})",
                }
            },
        }
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
