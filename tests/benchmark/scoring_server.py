"""A tiny stand-in `/invocations` server for the benchmark tests: scores rows by a fixed rule.

Run as `python tests/benchmark/scoring_server.py PORT [SCORE]`; it prints `ready` once
listening on 127.0.0.1. It answers the same probability (SCORE, default 0.25; 1.5 makes every
answer invalid) for each row, as CSV lines or `{"predictions": [{"score": p}]}` when the client
accepts JSON, with a `Server-Timing: model;dur=...` header, and 400 for a body it cannot read.
"""

from __future__ import annotations

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    score = 0.25
    disable_nagle_algorithm = True  # headers and body go out in two writes

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        return

    def do_GET(self) -> None:
        self._answer(200, b"", "text/plain")

    def do_POST(self) -> None:
        started = time.perf_counter()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        try:
            if content_type == "application/json":
                rows = len(json.loads(body)["instances"])
            else:
                rows = len([line for line in body.splitlines() if line.strip()])
        except (ValueError, KeyError, TypeError):
            self._answer(
                400, b'{"error": "unreadable_body", "message": "bad body"}', "application/json"
            )
            return
        if rows == 0:
            self._answer(400, b'{"error": "empty_body", "message": "no rows"}', "application/json")
            return
        scores = [self.score] * rows
        timing = f"model;dur={(time.perf_counter() - started) * 1000:.3f}"
        if "json" in (self.headers.get("Accept") or ""):
            payload = json.dumps({"predictions": [{"score": s} for s in scores]}).encode()
            self._answer(200, payload, "application/json", timing)
        else:
            self._answer(200, "".join(f"{s}\n" for s in scores).encode(), "text/csv", timing)

    def _answer(self, status: int, body: bytes, content_type: str, timing: str = "") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if timing:
            self.send_header("Server-Timing", timing)
        self.end_headers()
        self.wfile.write(body)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(
            sys.exc_info()[1], ConnectionError
        ):  # load generators hang up mid-request
            super().handle_error(request, client_address)  # type: ignore[arg-type]


def main() -> None:
    if len(sys.argv) > 2:
        Handler.score = float(sys.argv[2])
    server = Server(("127.0.0.1", int(sys.argv[1])), Handler)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
