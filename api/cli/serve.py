"""``roamledger serve``: the HTTP service (:mod:`api.http`) on uvicorn with uvloop and httptools."""

from __future__ import annotations

import argparse
import errno
import os
import socket

import uvicorn

from api.cli.options import EXIT_OK, command_parser
from api.http.settings import ENV_PREFIX, load_settings
from pricing.errors import InputError

EXAMPLE = """example:
  roamledger serve --port 8000 --workers 2
  ROAMLEDGER_MAX_BODY_BYTES=65536 roamledger serve --settings service.toml
  curl -s localhost:8000/v1/health
  python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > operator.token
  roamledger serve --host 0.0.0.0 --operator-token-file operator.token
  curl -s localhost:8000/v1/settlements -H "Authorization: Bearer $(cat operator.token)"
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "serve", "run the HTTP quote service (FastAPI on uvicorn)", EXAMPLE)
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8000)")
    p.add_argument("--workers", type=int, help="worker processes (default 1)")
    p.add_argument(
        "--settings", metavar="FILE", help="settings file, TOML or JSON (see api/http/settings.py)"
    )
    p.add_argument(
        "--operator-token-file",
        metavar="FILE",
        help="the operator token of the /v1 settlement, month and store routes, sent as "
        "'Authorization: Bearer <token>' (default: those routes answer this machine only)",
    )


def run(args: argparse.Namespace) -> int:
    # Workers are separate processes that build their app from the environment: hand them the file
    # and the command-line values there, after checking the whole set once here.
    if args.settings:
        os.environ[f"{ENV_PREFIX}SETTINGS"] = os.path.abspath(args.settings)
    if args.operator_token_file:  # the path, never the token: the environment is easier to read
        os.environ[f"{ENV_PREFIX}OPERATOR_TOKEN_FILE"] = os.path.abspath(args.operator_token_file)
    for name in ("host", "port", "workers"):
        value = getattr(args, name)
        if value is not None:
            os.environ[f"{ENV_PREFIX}{name.upper()}"] = str(value)
    settings = load_settings()
    check_port(settings.host, settings.port)
    uvicorn.run(
        "api.http.app:app_from_environment",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http="httptools",
        log_level=settings.log_level,
        access_log=False,
    )
    return EXIT_OK


def check_port(host: str, port: int) -> None:
    """A port another process listens on is the user's input (exit 2, one sentence), not uvicorn's
    raw message and exit 3. (Checked by binding once; uvicorn binds again right after.)"""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InputError(
                    f"port {port} is in use on {host}. Hint: choose another --port, or stop the server on it"
                ) from None
            raise InputError(f"cannot listen on {host}:{port}: {exc.strerror}. Hint: check --host") from None
