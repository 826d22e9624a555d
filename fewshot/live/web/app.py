"""The web app's routes: the page, the JSON API (``/api/...``, described at ``/openapi.json`` and ``/api/docs``),
the microphone's WebSockets and the evaluation report.

Errors answer ``{"error": "<the CLI's one-line reason>"}`` with a 4xx status
(:func:`status_of`); nothing else of an exception leaves the server.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from ...errors import DuplicateAudioError, FewshotError, NotEnrolledError, StoreBusyError
from ...names import normalize_name
from ..texts import PASSAGES
from . import sockets
from .guard import Guard, TooLarge
from .openapi import openapi
from .service import Service, upload_name

logger = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
#: What the page and its scripts may load: this server only.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; media-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'"
)


def status_of(exc: Exception) -> int:
    """The HTTP status of an error the CLI would report as one line."""
    if isinstance(exc, TooLarge):
        return 413
    if isinstance(exc, NotEnrolledError):
        return 404
    if isinstance(exc, (DuplicateAudioError, StoreBusyError)):
        return 409
    return 400


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    """Starlette's own refusals (no such route or method, a malformed or too many-part form), as JSON."""
    return JSONResponse({"error": str(exc.detail)}, exc.status_code, headers=exc.headers)


async def error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, (FewshotError, ValueError, OSError, TooLarge)):
        logger.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"error": f"internal error ({type(exc).__name__}); see the server's log"}, 500)
    return JSONResponse({"error": str(exc)}, status_of(exc))


def _service(request) -> Service:
    return request.app.state.service


def _names(request: Request) -> tuple[str, str | None]:
    """The group and person of the path, as the store keeps names."""
    p = request.path_params
    return (normalize_name(p["group"], kind="group"), normalize_name(p["name"], kind="person") if "name" in p else None)


def _flag(form, key: str) -> bool:
    return str(form.get(key, "")).lower() in ("1", "true", "on", "yes")


async def _uploads(request: Request, folder: Path, *, field: str) -> tuple[list[Path], dict, dict]:
    """The request's files saved in ``folder`` under their upload names; ``(paths, {path: name}, form)``."""
    svc = _service(request)
    async with request.form(max_files=svc.limits.max_files, max_fields=10) as form:
        files = [f for f in form.getlist(field) if hasattr(f, "filename")]
        if not files:
            raise ValueError(f"no file given (send the audio as multipart form field {field!r})")
        paths, names = [], {}
        for i, f in enumerate(files):
            name = upload_name(f.filename)
            path = folder / str(i) / name
            path.parent.mkdir(mode=0o700)

            def save(src=f.file, dst=path):
                with open(dst, "wb") as out:
                    shutil.copyfileobj(src, out)

            await asyncio.to_thread(save)
            paths.append(path)
            names[str(path)] = name
        return paths, names, {k: v for k, v in form.items() if isinstance(v, str)}


# ---------------------------------------------------------------------------- API
async def groups(request):
    svc = _service(request)
    return JSONResponse(await svc.call(svc.groups))


async def group(request):
    svc, (g, _) = _service(request), _names(request)
    if request.method == "DELETE":
        return JSONResponse(await svc.call(svc.delete_group, g))
    return JSONResponse(await svc.call(svc.group, g))


async def upgrade(request):
    svc, (g, _) = _service(request), _names(request)
    return JSONResponse(await svc.call(svc.upgrade, g))


async def member(request):
    svc, (g, name) = _service(request), _names(request)
    if request.method == "DELETE":
        return JSONResponse(await svc.call(svc.remove, g, name))
    with tempfile.TemporaryDirectory(prefix="fewshot-upload-") as tmp:
        paths, names, form = await _uploads(request, Path(tmp), field="files")
        res = await svc.call(
            svc.enroll,
            g,
            name,
            paths,
            names=names,
            replace=_flag(form, "replace"),
            force=_flag(form, "force"),
            keep_audio=_flag(form, "keep_audio"),
        )
    return JSONResponse(res, 201)


async def identify(request):
    svc, (g, _) = _service(request), _names(request)
    with tempfile.TemporaryDirectory(prefix="fewshot-upload-") as tmp:
        paths, names, _ = await _uploads(request, Path(tmp), field="file")
        if len(paths) != 1:
            raise ValueError("send one file to identify")
        res = await svc.call(svc.identify, g, paths[0], names[str(paths[0])])
    return JSONResponse(res)


async def passages(request):
    return JSONResponse([{"source": s, "text": t} for s, t in PASSAGES])


async def info(request):
    svc = _service(request)
    return JSONResponse(
        {
            "model": svc.sid.extractor.model_id,
            "store": str(svc.sid.store.path),
            "report": bool(svc.report and Path(svc.report).is_file()),
            "limits": {
                "max_upload_mb": svc.limits.max_upload_mb,
                "max_files": svc.limits.max_files,
                "max_minutes": svc.limits.max_minutes,
            },
            "record_seconds": list(sockets.SECONDS_RANGE),
        }
    )


async def listen_socket(ws):
    await sockets.listen(ws, ws.app.state.service, ws.path_params["group"])


async def record_socket(ws):
    await sockets.record(ws, ws.app.state.service, ws.path_params["group"], ws.path_params["name"])


# ---------------------------------------------------------------------------- pages
def _headers() -> dict:
    return {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


async def page(request):
    return FileResponse(STATIC / "index.html", headers=_headers())


async def api_docs(request):
    return FileResponse(STATIC / "docs.html", headers=_headers())


async def openapi_json(request):
    return JSONResponse(openapi(request.app.state.service))


async def report(request):
    path = _service(request).report
    if not path or not Path(path).is_file():
        return JSONResponse(
            {
                "error": "no evaluation report: run fewshot evaluate DATA --out report, then "
                "fewshot serve --report report/report.html"
            },
            404,
        )
    # the report is self-contained (figures inlined): nothing it holds may load or run anything
    return HTMLResponse(
        Path(path).read_text(encoding="utf-8"),
        headers={
            **_headers(),
            "Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'",
        },
    )


async def health(request):
    return Response("ok\n", media_type="text/plain")


def create_app(service: Service, *, token: str | None, hosts: set[str]) -> Starlette:
    """The app over ``service``; ``token`` (or ``None`` on loopback) and ``hosts`` as :class:`~.guard.Guard` takes them."""
    api = "/api/groups/{group}"
    routes = [
        Route("/", page),
        Route("/groups/{group}", page),
        Route("/groups/{group}/{view}", page),
        Route("/report", report),
        Route("/healthz", health),
        Route("/openapi.json", openapi_json),
        Route("/api/docs", api_docs),
        Route("/api/info", info),
        Route("/api/passages", passages),
        Route("/api/groups", groups),
        Route(api, group, methods=["GET", "DELETE"]),
        Route(api + "/upgrade", upgrade, methods=["POST"]),
        Route(api + "/identify", identify, methods=["POST"]),
        Route(api + "/members/{name}", member, methods=["POST", "DELETE"]),
        WebSocketRoute(api + "/listen", listen_socket),
        WebSocketRoute(api + "/members/{name}/record", record_socket),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    handlers = {
        HTTPException: http_error,
        Exception: error,
        FewshotError: error,
        ValueError: error,
        OSError: error,
        TooLarge: error,
    }
    app = Starlette(
        routes=routes,
        exception_handlers=handlers,
        middleware=[Middleware(Guard, token=token, hosts=hosts, max_body=service.limits.max_upload_bytes)],
    )
    app.state.service = service
    return app
