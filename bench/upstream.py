"""A fixed-latency OpenAI-compatible upstream for gateway overhead benchmarks.

A model server's own latency varies by hundreds of milliseconds on a CPU, which would drown the few
milliseconds a gateway adds. This server answers every chat completion with the same short reply after
exactly `--delay-ms`, so what a gateway in front of it adds is what is measured. HTTP/1.1 keep-alive,
one thread per connection (the standard library's ThreadingHTTPServer).

    python -m bench.upstream --port 8199 --delay-ms 20
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "fixed-latency-upstream"


def completion(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-upstream",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "OK."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14},
    }


def handler(delay_s: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as gateways' HTTP clients expect

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._reply({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "bench"}]})
            elif self.path in ("/health", "/v1/health"):
                self._reply({"status": "ok"})
            else:
                self._reply({"error": {"message": f"no route {self.path}"}}, HTTPStatus.NOT_FOUND)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not self.path.endswith("/chat/completions"):
                self._reply({"error": {"message": f"no route {self.path}"}}, HTTPStatus.NOT_FOUND)
                return
            try:
                model = json.loads(body).get("model") or MODEL
            except ValueError:
                self._reply({"error": {"message": "body is not JSON"}}, HTTPStatus.BAD_REQUEST)
                return
            time.sleep(delay_s)
            self._reply(completion(model))

        def _reply(self, payload: dict[str, Any], status: HTTPStatus = HTTPStatus.OK) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8199)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(args.delay_ms / 1000))
    server.daemon_threads = True
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
