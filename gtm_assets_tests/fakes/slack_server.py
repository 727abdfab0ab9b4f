"""A local fake of the Slack Web API (chat.postMessage, auth.test) with fault injection, for slack_sdk to talk to."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


class FakeSlack:
    """Serves Slack's wire format on 127.0.0.1. Use as a context manager; `base_url` goes to WebClient.

    Faults are queued with `fail_next(...)` and consumed one request at a time:
    `fail_next(status=429, retry_after=3)`, `fail_next(status=503)`, `fail_next(error="channel_not_found")`.
    """

    def __init__(self, tokens: tuple[str, ...] = ("xoxb-test-token",)) -> None:
        self.tokens = set(tokens)
        self.messages: list[dict] = []
        self.requests: list[dict] = []
        self._faults: deque[dict] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/api/"

    def fail_next(self, status: int = 200, error: str | None = None, retry_after: int | None = None, times: int = 1) -> None:
        with self._lock:
            for _ in range(times):
                self._faults.append({"status": status, "error": error, "retry_after": retry_after})

    def __enter__(self) -> FakeSlack:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8") if length else ""
                content_type = self.headers.get("Content-Type", "")
                if "application/json" in content_type:
                    body = json.loads(raw or "{}")
                else:
                    body = {k: v[0] for k, v in parse_qs(raw).items()}
                    if isinstance(body.get("blocks"), str):
                        body["blocks"] = json.loads(body["blocks"])
                auth = self.headers.get("Authorization", "")
                token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else body.get("token")
                method = self.path.rsplit("/", 1)[-1]
                with fake._lock:
                    fake.requests.append({"method": method, "body": body, "authorization": auth})
                    fault = fake._faults.popleft() if fake._faults else None
                if fault and fault["status"] != 200:
                    headers = {"Retry-After": str(fault["retry_after"])} if fault["retry_after"] is not None else {}
                    if fault["status"] == 429:
                        return self._reply(429, {"ok": False, "error": "ratelimited"}, headers)
                    return self._reply(fault["status"], "<html>Service Unavailable</html>", headers)
                if fault and fault["error"]:
                    return self._reply(200, {"ok": False, "error": fault["error"]})
                if token not in fake.tokens:
                    return self._reply(200, {"ok": False, "error": "invalid_auth" if token else "not_authed"})
                if method == "auth.test":
                    return self._reply(200, {"ok": True, "team": "fake", "user": "gtm-bot", "bot_id": "B1"})
                if method == "chat.postMessage":
                    channel = body.get("channel")
                    if not channel:
                        return self._reply(200, {"ok": False, "error": "channel_not_found"})
                    if not body.get("text") and not body.get("blocks"):
                        return self._reply(200, {"ok": False, "error": "no_text"})
                    with fake._lock:
                        ts = f"{time.time():.6f}".replace(".", "")[:10] + f".{len(fake.messages) + 1:06d}"
                        fake.messages.append({"channel": channel, "text": body.get("text"), "blocks": body.get("blocks"), "ts": ts})
                    return self._reply(200, {"ok": True, "channel": channel, "ts": ts, "message": {"text": body.get("text")}})
                return self._reply(200, {"ok": False, "error": "unknown_method"})

            def _reply(self, status: int, payload, headers: dict | None = None) -> None:
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html" if isinstance(payload, str) else "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
