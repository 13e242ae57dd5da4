"""A real ``roamledger serve`` (uvicorn) for end-to-end tests: started on 127.0.0.1 with the given
environment, returned once ``GET /v1/health`` answers 200 (the test fails with the server's output
if it exits or does not answer within ``timeout`` seconds)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

import httpx
import pytest
from conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    env: dict[str, str], port: int | None = None, timeout: float = 120, log: Any = None
) -> tuple[subprocess.Popen, str]:
    """(process, base URL) of a started server whose environment adds ``env``; ``log``: a binary
    file that receives its output (default: a temporary file)."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if log is None:
        log = tempfile.TemporaryFile()  # the server's output (a pipe nobody reads could fill and block it)
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:  # not listening yet
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            log.seek(0)
            pytest.fail(f"server did not start: {log.read().decode(errors='replace')[-2000:]}")
        time.sleep(0.1)
