"""The JSON API's OpenAPI 3.1 description (served at ``/openapi.json``, shown at ``/api/docs``)."""

from __future__ import annotations

from ... import __version__

_ERROR = {
    "description": "the CLI's one-line reason",
    "content": {
        "application/json": {
            "schema": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
        }
    },
}
_TURN = {
    "type": "object",
    "properties": {
        "start": {"type": "number", "description": "seconds"},
        "end": {"type": "number"},
        "speaker": {"type": "string"},
        "score": {"type": "number"},
    },
}
_GROUP = {"name": "group", "in": "path", "required": True, "schema": {"type": "string"}}
_NAME = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "the person's name",
}


def _op(
    summary: str, ok: dict | None = None, *, params=(), body=None, status: str = "200", errors=("400", "404")
) -> dict:
    op = {
        "summary": summary,
        "parameters": list(params),
        "responses": {
            status: {"description": "done", "content": {"application/json": {"schema": ok or {"type": "object"}}}},
            **dict.fromkeys(errors, _ERROR),
        },
    }
    if body:
        op["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": body}}}
    return op


def openapi(service) -> dict:
    """The API as this server runs it (its upload limits in the descriptions)."""
    lim = service.limits
    files = {"type": "array", "items": {"type": "string", "format": "binary"}}
    limits = (
        f"At most {lim.max_upload_mb:g} MB in all, {lim.max_files} files, {lim.max_minutes:g} minutes "
        "each; decoded as `fewshot enroll` and `identify` decode files (wav, flac, mp3, ogg, m4a, ...)."
    )
    enroll = {
        "type": "object",
        "required": ["files"],
        "properties": {
            "files": files,
            "replace": {"type": "boolean", "description": "replace the earlier enrollment"},
            "force": {"type": "boolean", "description": "enroll despite clipping or a failed self-check"},
            "keep_audio": {"type": "boolean", "description": "keep the speech, for a later upgrade"},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "fewshot",
            "version": __version__,
            "description": (
                "Enroll people into groups and say who speaks, on this machine: the same store, model and decisions "
                "as the `fewshot` command. Off loopback, send the token fewshot serve printed as "
                "`Authorization: Bearer TOKEN`. The microphone's WebSockets (`/api/groups/{group}/listen`, "
                "`/api/groups/{group}/members/{name}/record`) take 16-bit little-endian 16 kHz mono PCM; their "
                "messages are described in the module fewshot.live.web.sockets."
            ),
        },
        "paths": {
            "/api/groups": {
                "get": _op(
                    "Every group and its members",
                    {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "name": {"type": "string"},
                                "members": {"type": "array", "items": {"type": "string"}},
                                "extractor": {"type": "string"},
                            },
                        },
                    },
                    errors=("400",),
                )
            },
            "/api/groups/{group}": {
                "get": _op("A group's members (as `fewshot groups show`)", params=[_GROUP]),
                "delete": _op("Delete a group and all its voiceprints", params=[_GROUP]),
            },
            "/api/groups/{group}/upgrade": {
                "post": _op(
                    "Re-embed the group's kept audio with the server's extractor (`fewshot groups upgrade G`)",
                    params=[_GROUP],
                )
            },
            "/api/groups/{group}/members/{name}": {
                "post": _op(
                    "Enroll a person from audio files (the group is created if new). " + limits,
                    params=[_GROUP, _NAME],
                    body=enroll,
                    status="201",
                    errors=("400", "409", "413"),
                ),
                "delete": _op("Remove a person and their voiceprints", params=[_GROUP, _NAME]),
            },
            "/api/groups/{group}/identify": {
                "post": _op(
                    "Who speaks in a file, and when (as `fewshot identify --segments --json`, with RTTM). " + limits,
                    {
                        "type": "object",
                        "properties": {
                            "file": {"type": "string"},
                            "speaker": {"type": "string"},
                            "score": {"type": "number"},
                            "unknown": {"type": "boolean"},
                            "nearest": {"type": "string"},
                            "turns": {"type": "array", "items": _TURN},
                            "rttm": {"type": "string"},
                        },
                    },
                    params=[_GROUP],
                    body={
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    },
                    errors=("400", "404", "413"),
                )
            },
            "/api/passages": {"get": _op("The passages people read aloud to enroll", errors=())},
            "/api/info": {"get": _op("The model, the store, the limits and whether a report is served", errors=())},
        },
    }
