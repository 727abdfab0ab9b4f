"""A wire-level fake of the firmographic enrichment API (POST /companies/lookup) on 127.0.0.1, for tests.

It serves the shape documented in gtm_assets.resources.enrichment.live: a bearer key on every
request, 1..100 domains per batch, known companies in `results`, the rest in `not_found`.
Every request is logged (method, path, the domains asked for, the status, the Authorization
header's scheme only); faults (429 with Retry-After, 5xx) are injected on demand.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BATCH_MAX = 100


@dataclass
class _Fault:
    status: int
    count: int
    retry_after: float | None = None


class FakeEnrichment:
    """In-memory company register served over HTTP; use as a context manager.

    `companies` maps domain -> facts (company_size, employees, industry, country, tech_stack as a list).
    `base_url` (with the /v1 prefix a real provider would have) goes to HttpFirmographics.base_url.
    """

    def __init__(self, api_key: str = "enrich-test-key", companies: dict[str, dict] | None = None) -> None:
        self.api_key = api_key
        self.companies: dict[str, dict] = dict(companies or {})
        self.requests: list[dict] = []
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def __enter__(self) -> "FakeEnrichment":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        fake = self

        class Handler(_Handler):
            provider = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def fail_next(self, status: int = 429, *, count: int = 1, retry_after: float | None = None) -> None:
        with self._lock:
            self._faults.append(_Fault(status, count, retry_after))

    def domains_requested(self) -> list[str]:
        """Every domain sent in a successful request, in order (repeats included)."""
        return [d for r in self.requests if r["status"] == 200 for d in r["domains"]]

    def _take_fault(self) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.count > 0:
                    fault.count -= 1
                    return fault
            return None

    def answer(self, path: str, authorization: str | None, body: dict | None) -> tuple[int, dict, dict]:
        if path != "/v1/companies/lookup":
            return 404, {"error": "not_found", "message": f"no route {path}"}, {}
        if authorization != f"Bearer {self.api_key}":
            return 401, {"error": "unauthorized", "message": "invalid API key"}, {}
        fault = self._take_fault()
        if fault is not None:
            headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
            return fault.status, {"error": "unavailable" if fault.status >= 500 else "rate_limited"}, headers
        domains = (body or {}).get("domains")
        if not isinstance(domains, list) or not domains or len(domains) > BATCH_MAX:
            return 400, {"error": "bad_request", "message": f"'domains' must list 1..{BATCH_MAX} domains"}, {}
        results = [{"domain": d, **self.companies[d]} for d in domains if d in self.companies]
        return 200, {"results": results, "not_found": [d for d in domains if d not in self.companies]}, {}


class _Handler(BaseHTTPRequestHandler):
    provider: FakeEnrichment
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        authorization = self.headers.get("Authorization")
        entry = {"method": method, "path": self.path,
                 "domains": list((body or {}).get("domains") or []) if isinstance(body, dict) else [],
                 "auth_scheme": (authorization or "").split(" ", 1)[0], "status": None}
        status, payload, headers = (
            self.provider.answer(self.path, authorization, body if isinstance(body, dict) else None)
            if method == "POST" else (405, {"error": "method_not_allowed"}, {})
        )
        entry["status"] = status
        with self.provider._lock:
            self.provider.requests.append(entry)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
