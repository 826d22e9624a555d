"""``fewshot serve`` (and ``python demo/web.py``): the web app on this machine.

    fewshot serve [--host 127.0.0.1] [--port 8000] [--store PATH] [--model DIR] [--report FILE]

It listens on loopback unless told otherwise; on any other address every
request must carry the token printed at start (a new one each run, unless
``--token-file`` keeps one).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: The report ``fewshot evaluate --out report`` writes, served when it exists and no --report is given.
DEFAULT_REPORT = Path("report") / "report.html"


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, given {text}")
    return value


DESCRIPTION = (
    "A web page to enroll people, listen live and look at recordings' turns, over the same store and "
    "model as the fewshot command."
)


def add_serve_parser(sub):
    """Register ``serve`` on the ``fewshot`` command's subparsers."""
    p = sub.add_parser(
        "serve",
        help="the web page: groups, enrollment, listening live and recordings' turns in a "
        "browser (needs the extra 'web')",
        description=DESCRIPTION,
    )
    configure_parser(p)
    p.set_defaults(handler=cmd_serve)
    return p


def configure_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from .service import Limits

    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only; any other needs the token printed at start)",
    )
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0: any free one)")
    p.add_argument("--store", help="enrollment database (default: $FEWSHOT_HOME/enrollments.sqlite)")
    p.add_argument("--model", help="extractor model directory (default: the model shipped with fewshot)")
    p.add_argument("--report", help=f"evaluation report to serve at /report (default: {DEFAULT_REPORT} when it exists)")
    p.add_argument(
        "--max-upload-mb",
        type=_positive,
        default=Limits.max_upload_mb,
        metavar="MB",
        help=f"largest request body (default: {Limits.max_upload_mb:g})",
    )
    p.add_argument(
        "--max-minutes",
        type=_positive,
        default=Limits.max_minutes,
        metavar="MIN",
        help=f"longest uploaded file (default: {Limits.max_minutes:g})",
    )
    p.add_argument(
        "--tls-cert",
        metavar="PEM",
        help="serve https with this certificate (with --tls-key): browsers "
        "give the microphone only to pages on https or on this machine's own address",
    )
    p.add_argument("--tls-key", metavar="PEM", help="the certificate's private key")
    p.add_argument(
        "--token-file",
        help="read the token from this file (made, readable by you only, with a new "
        "token when missing) instead of printing a new one each run",
    )
    return p


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def token_of(path: str | None) -> str:
    """A new token, or the one kept in ``path`` (written there first when the file is missing)."""
    import os
    import secrets

    if path is None:
        return secrets.token_urlsafe(24)
    p = Path(path)
    if not p.exists():
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(24) + "\n")
    token = p.read_text().strip()
    if len(token) < 16 or not token.isprintable() or " " in token:
        raise ValueError(f"{path}: not a usable token (16 printable characters or more, no spaces)")
    return token


def missing_extra() -> str | None:
    """The install command when the extra ``web`` is missing."""
    import importlib.util

    def found(module: str) -> bool:
        try:
            return importlib.util.find_spec(module) is not None
        except ImportError:
            return False

    if all(found(m) for m in ("starlette", "uvicorn", "multipart", "websockets")):
        return None
    return "fewshot serve needs the extra 'web': pip install 'fewshot[web]' (in a clone: .venv/bin/pip install -e '.[web]')"


def serve(args) -> int:
    import socket

    import uvicorn

    from .app import create_app
    from .service import Limits, Service

    if bool(args.tls_cert) != bool(args.tls_key):
        raise ValueError("--tls-cert and --tls-key go together")
    for pem in filter(None, (args.tls_cert, args.tls_key)):
        if not Path(pem).is_file():
            raise FileNotFoundError(f"{pem}: file not found")
    loopback = is_loopback(args.host)
    token = None if loopback else token_of(args.token_file)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host.strip("[]"), args.port))
        sock.listen(2048)  # connections wait from now on, so the address printed below answers at once
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    port = sock.getsockname()[1]
    report = args.report or (str(DEFAULT_REPORT) if DEFAULT_REPORT.is_file() else None)
    print("Loading the speaker model ...", flush=True)
    service = Service(
        model=args.model,
        store=args.store,
        report=report,
        limits=Limits(max_upload_mb=args.max_upload_mb, max_minutes=args.max_minutes),
    )
    host = f"[{args.host.strip('[]')}]" if family == socket.AF_INET6 else args.host
    hosts = {f"{h}:{port}" for h in ("127.0.0.1", "localhost", "[::1]", host)}
    app = create_app(service, token=token, hosts=hosts)
    shown = host if loopback or args.host not in ("0.0.0.0", "::") else socket.gethostname()
    print(f"Model {service.sid.extractor.model_id}; enrollments in {service.sid.store.path}")
    if token:
        print("Anyone with the address below (its token) can use this server: share it only with people you trust.")
    scheme = "https" if args.tls_cert else "http"
    print(f"fewshot is at {scheme}://{shown}:{port}/{f'?token={token}' if token else ''} (Ctrl-C stops it)", flush=True)
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        ws_max_size=1 << 20,
        server_header=False,
        timeout_graceful_shutdown=2,
        ssl_certfile=args.tls_cert,
        ssl_keyfile=args.tls_key,
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        service.close()
    return 0


def cmd_serve(args) -> int:
    if (advice := missing_extra()) is not None:
        print(f"error: {advice}", file=sys.stderr)
        return 2
    return serve(args)


def main(argv=None, *, prog: str = "fewshot serve") -> int:
    from ...commands import exit_status

    args = configure_parser(argparse.ArgumentParser(prog=prog, description=DESCRIPTION)).parse_args(argv)
    return exit_status(lambda: cmd_serve(args), interrupted="stopped")


if __name__ == "__main__":
    raise SystemExit(main())
