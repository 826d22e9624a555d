"""The microphone over a WebSocket: listen (who speaks now, and the final turns) and record an enrollment.

The browser sends binary messages of 16-bit little-endian mono PCM at the
model's rate (16 kHz) and the text message ``stop`` to end; the server answers
with JSON messages. Listening feeds the terminal demo's decoder
(:class:`fewshot.live.turns.TurnStream`); recording feeds its enrollment take
(:class:`fewshot.live.speech.EnrollmentTake`: level, seconds of speech,
clipping) and enrolls it as the demo does.

Listen, ``/api/groups/{group}/listen``: first ``{"members": [...], "sr": 16000}``,
then after each message of audio ``{"heard_s", "level_dbfs", "current": turn or
null, "final": [turn, ...]}`` (a turn: ``{"start", "end", "speaker", "score"}``
in seconds since the stream began); after ``stop``, the last final turns and
``"done": true``.

Record, ``/api/groups/{group}/members/{name}/record?seconds=20&replace=0&force=0``:
first ``{"target_s"}``, then ``{"level_dbfs", "speech_s", "seconds", "alert"}``
per message of audio; when ``target_s`` of speech are heard (or on ``stop``),
``{"enrolling": true}`` and then ``{"enrolled": {...}}`` (as the API's enroll
answers) or ``{"error": line, "again": bool}`` (``again``: more than one voice
was heard; record the person alone).
"""

from __future__ import annotations

import asyncio

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect

from ...errors import FewshotError, IncoherentEnrollmentError
from ...names import normalize_name
from ..speech import EnrollmentTake
from ..turns import TurnStream
from .service import Service, turn_dict

#: Seconds of speech an enrollment recording may ask for (the terminal demo's ``--seconds``).
SECONDS_RANGE = (15.0, 35.0)
#: Fewer seconds of speech than this (or than the target) and a stopped recording is not enrolled.
MIN_TAKE_S = 10.0
#: The most audio one message may carry, in seconds.
MAX_MESSAGE_S = 2.0


def pcm(data: bytes, *, sr: int) -> np.ndarray:
    """A message of 16-bit little-endian PCM as float32 samples in [-1, 1)."""
    if len(data) % 2 or len(data) > 2 * MAX_MESSAGE_S * sr:
        raise ValueError(f"an audio message holds whole 16-bit samples, at most {MAX_MESSAGE_S:g} s of them")
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


async def messages(ws: WebSocket, *, sr: int):
    """Audio blocks from the browser until ``stop`` (or the socket closes)."""
    while True:
        msg = await ws.receive()
        if msg["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(msg.get("code", 1000))
        if msg.get("bytes") is not None:
            yield pcm(msg["bytes"], sr=sr)
        elif (msg.get("text") or "").strip() == "stop":
            return


async def failed(ws: WebSocket, exc: Exception, **extra) -> None:
    await ws.send_json({"error": str(exc), **extra})
    await ws.close(code=1000)


async def listen(ws: WebSocket, service: Service, group: str) -> None:
    await ws.accept()
    try:
        group = normalize_name(group, kind="group")
        clf = await service.call(service.classifier, group)
        members = await service.call(lambda: [s.name for s in service.sid.store.speakers(group)])
    except (FewshotError, ValueError, OSError) as exc:
        return await failed(ws, exc)
    stream = TurnStream(clf, service.sid.extractor)
    await ws.send_json({"group": group, "members": members, "sr": stream.sr})
    try:
        async for y in messages(ws, sr=stream.sr):
            final = await asyncio.to_thread(stream.add, y)
            cur = stream.current
            await ws.send_json(
                {
                    "heard_s": round(stream.samples_seen / stream.sr, 2),
                    "level_dbfs": round(stream.level_dbfs, 1),
                    "current": turn_dict(cur) if cur else None,
                    "final": [turn_dict(t) for t in final],
                }
            )
        final = await asyncio.to_thread(stream.flush)
        await ws.send_json({"final": [turn_dict(t) for t in final], "current": None, "done": True})
        await ws.close()
    except WebSocketDisconnect:
        pass
    except ValueError as exc:
        await failed(ws, exc)


def record_options(params) -> tuple[float, bool, bool]:
    """``(seconds, replace, force)`` from a record socket's query."""
    text = params.get("seconds", "20")
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not SECONDS_RANGE[0] <= seconds <= SECONDS_RANGE[1]:
        raise ValueError(f"seconds must be between {SECONDS_RANGE[0]:g} and {SECONDS_RANGE[1]:g}, given {text!r}")
    flag = lambda k: params.get(k, "0").lower() in ("1", "true", "yes")  # noqa: E731
    return seconds, flag("replace"), flag("force")


async def record(ws: WebSocket, service: Service, group: str, name: str) -> None:
    await ws.accept()
    try:
        group, name = normalize_name(group, kind="group"), normalize_name(name, kind="person")
        target, replace, force = record_options(ws.query_params)
    except (FewshotError, ValueError) as exc:
        return await failed(ws, exc)
    take = EnrollmentTake(sr=service.sid.extractor.feature_config.sr)
    await ws.send_json({"target_s": target})
    try:
        async for y in messages(ws, sr=take.sr):
            take.add(y)
            await ws.send_json(
                {
                    "level_dbfs": round(take.level_dbfs, 1),
                    "speech_s": round(take.speech_s, 1),
                    "seconds": round(take.seconds, 1),
                    "alert": "CLIPPING: move back"
                    if take.clipping_now
                    else "too quiet: come closer"
                    if take.too_quiet_now
                    else "",
                }
            )
            if take.speech_s >= target or take.seconds >= 3 * target + 30:
                break
        if take.speech_s < min(target, MIN_TAKE_S):
            return await failed(
                ws,
                ValueError(f"only {take.speech_s:.1f} s of speech heard: {name!r} is not enrolled; record again"),
                again=False,
            )
        await ws.send_json({"enrolling": True})
        try:
            res = await service.call(
                service.enroll,
                group,
                name,
                take.audio(),
                replace=replace,
                force=force,
                warnings=take.warnings(again="record again"),
            )
        except IncoherentEnrollmentError as exc:
            return await failed(ws, ValueError(f"{name!r} is not enrolled: {exc.finding}"), again=True)
        except (FewshotError, ValueError, OSError) as exc:
            return await failed(ws, exc, again=False)
        await ws.send_json({"enrolled": res})
        await ws.close()
    except WebSocketDisconnect:
        pass
    except ValueError as exc:
        await failed(ws, exc)
