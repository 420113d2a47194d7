"""The HTTP endpoint of a service (standard library, localhost, JSON bodies only).

==========================  ==============================================================
``POST /push/<region>``     body ``{"data": [[...], ...]}`` (``[T, size]`` or ``[size]``);
                            answers ``{"step", "ran"}``
``GET /output/<region>``    query ``since=STEP`` (default 0): :meth:`Brain.read
                            <aura_snn.serve.brain.Brain.read>`'s events / rates / values
``GET /status``             :meth:`Brain.describe <aura_snn.serve.brain.Brain.describe>`
``POST /snapshot``          save a snapshot now
==========================  ==============================================================

Bad requests answer 400 with ``{"error": message}`` (the message names the region, the
shape or the parameter), unknown paths 404. The handler calls the brain actor through
``call``, a function ``(method, *args) -> result`` that raises the actor's own error.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from ..errors import AuraError

MAX_BODY = 256 * 1024 * 1024


def make_server(call: Callable[..., Any], port: int, host: str = "127.0.0.1"
                ) -> ThreadingHTTPServer:
    """A server bound to ``host:port`` (``port=0``: any free port) answering the routes
    of the module docstring; start it with :func:`start`."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet: the service logs itself
            pass

        def _send(self, code: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _call(self, *args: Any) -> None:
            try:
                self._send(200, call(*args))
            except (AuraError, ValueError, TypeError) as exc:
                self._send(400, {"error": str(getattr(exc, "cause", None) or exc)})

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            url = urlparse(self.path)
            parts = url.path.strip("/").split("/")
            if parts == ["status"]:
                return self._call("describe")
            if len(parts) == 2 and parts[0] == "output":
                raw = parse_qs(url.query).get("since", ["0"])[-1]
                if not raw.isdigit():
                    return self._send(400, {"error": f"since must be a step (an integer "
                                                     f">= 0), got {raw!r}"})
                return self._call("read", parts[1], int(raw))
            self._send(404, {"error": f"no route GET {url.path}"})

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            parts = urlparse(self.path).path.strip("/").split("/")
            if parts == ["snapshot"]:
                return self._call("snapshot", True)
            if len(parts) != 2 or parts[0] != "push":
                return self._send(404, {"error": f"no route POST {self.path}"})
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self._send(413, {"error": f"body of {length} bytes exceeds "
                                                 f"{MAX_BODY}"})
            try:
                body = json.loads(self.rfile.read(length) or b"null")
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                return self._send(400, {"error": f"body is not JSON: {exc}"})
            if not isinstance(body, dict) or "data" not in body:
                return self._send(400, {"error": "body must be a JSON object with 'data'"})
            self._call("push", parts[1], body["data"])

    return ThreadingHTTPServer((host, port), Handler)


def start(server: ThreadingHTTPServer) -> threading.Thread:
    """Serve in a daemon thread; stop with ``server.shutdown()``."""
    thread = threading.Thread(target=server.serve_forever, name="aura-snn-serve-http",
                              daemon=True)
    thread.start()
    return thread


__all__ = ["make_server", "start"]
