"""A wire-level fake of the HubSpot CRM v3 API (objects, search, properties, v4 associations) for tests.

It speaks the JSON shapes the official hubspot-api-client sends and parses, so the live
connector is exercised through the real client: bearer-token checks, list paging with
`after`, the search API's filterGroups/sorts/`total` and its result cap (HubSpot answers 400
once `after` reaches 10,000; the cap is lowered in tests to keep them fast), archived
records, and injected faults (429 with Retry-After, 5xx). Every request is logged.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np

# Properties every portal has; tests may add or remove names per object type.
DEFAULT_PROPERTIES: dict[str, set[str]] = {
    "contacts": {
        "hs_object_id", "email", "firstname", "lastname", "company", "website", "lifecyclestage",
        "createdate", "lastmodifieddate", "hs_google_click_id", "hs_analytics_source",
        "hs_analytics_source_data_1", "hs_analytics_source_data_2", "utm_source", "utm_medium",
        "utm_campaign", "hs_lifecyclestage_lead_date", "hs_lifecyclestage_marketingqualifiedlead_date",
        "hs_lifecyclestage_salesqualifiedlead_date", "hs_lifecyclestage_opportunity_date",
        "hs_lifecyclestage_customer_date",
    },
    "deals": {
        "hs_object_id", "dealname", "amount", "dealstage", "pipeline", "createdate", "closedate",
        "hs_is_closed", "hs_is_closed_won", "hs_lastmodifieddate",
    },
    "meetings": {
        "hs_object_id", "hs_timestamp", "hs_meeting_title", "hs_meeting_outcome",
        "hs_meeting_start_time", "hs_createdate", "hs_lastmodifieddate",
    },
}
# What HubSpot returns when a request names no properties.
ALWAYS_RETURNED = {
    "contacts": ("hs_object_id", "createdate", "lastmodifieddate", "email", "firstname", "lastname"),
    "deals": ("hs_object_id", "createdate", "hs_lastmodifieddate", "dealname", "amount", "dealstage"),
    "meetings": ("hs_object_id", "hs_createdate", "hs_lastmodifieddate"),
}
LIST_LIMIT_MAX = 100
SEARCH_LIMIT_MAX = 200
ASSOCIATION_BATCH_MAX = 1000


def iso(ts: datetime) -> str:
    """HubSpot's datetime property format: ISO 8601 in UTC with milliseconds and a Z."""
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def to_millis(value: str | int | float | None) -> int | None:
    """A filter value or stored property as epoch milliseconds (HubSpot accepts both forms)."""
    if value is None or value == "":
        return None
    text = str(value)
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp() * 1000)


@dataclass
class Fault:
    status: int
    count: int
    retry_after: float | None = None
    method: str | None = None
    path_contains: str | None = None


@dataclass
class Record:
    id: str
    properties: dict[str, str | None]
    archived: bool = False
    associations: dict[str, list[str]] = field(default_factory=dict)
    _millis: dict[str, int | None] = field(default_factory=dict, repr=False)

    def millis(self, name: str) -> int | None:
        """A property as epoch ms, parsed once (search filters and sorts hit it on every request)."""
        if name not in self._millis:
            self._millis[name] = to_millis(self.properties.get(name))
        return self._millis[name]


class FakeHubSpot:
    """In-memory HubSpot portal served over HTTP on 127.0.0.1 (a free port).

    Use as a context manager; `base_url` goes to the connector's `base_url`.
    """

    def __init__(self, token: str = "pat-test-token", search_cap: int = 10_000) -> None:
        self.token = token
        self.search_cap = search_cap
        self.properties: dict[str, set[str]] = {k: set(v) for k, v in DEFAULT_PROPERTIES.items()}
        self.records: dict[str, dict[str, Record]] = {k: {} for k in DEFAULT_PROPERTIES}
        self.requests: list[dict] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._next_id = 1000
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> "FakeHubSpot":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        fake = self

        class Handler(_Handler):
            portal = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # ---- data ----------------------------------------------------------------------------
    def add(self, object_type: str, properties: dict, *, id: str | None = None, archived: bool = False,
            associations: dict[str, list[str]] | None = None) -> str:
        with self._lock:
            if id is None:
                self._next_id += 1
                id = str(self._next_id)
            props = {k: (None if v is None else str(v)) for k, v in properties.items()}
            props["hs_object_id"] = id
            self.records[object_type][id] = Record(id, props, archived, dict(associations or {}))
            return id

    def associate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        """Associations are two-way in HubSpot: record both directions."""
        with self._lock:
            self.records[from_type][from_id].associations.setdefault(to_type, []).append(to_id)
            if to_id in self.records.get(to_type, {}):
                self.records[to_type][to_id].associations.setdefault(from_type, []).append(from_id)

    def add_contacts(self, n: int, start: datetime, end: datetime, *, seed: int = 0,
                     archived_every: int = 0) -> list[str]:
        """N well-formed contacts whose lastmodifieddate is spread evenly over [start, end).

        Created 0-30 days before their last modification; every `archived_every`-th is archived.
        """
        rng = np.random.default_rng(seed)
        span = (end - start) / n
        ids = []
        sources = ["PAID_SEARCH", "ORGANIC_SEARCH", "SOCIAL_MEDIA", "EMAIL_MARKETING", "DIRECT_TRAFFIC"]
        for i in range(n):
            modified = start + span * i + timedelta(milliseconds=int(rng.integers(0, 1000)))
            created = modified - timedelta(days=float(rng.uniform(0, 30)))
            paid = i % 5 == 0
            ids.append(self.add("contacts", {
                "email": f"person{seed}_{i}@company{i % 97}.com",
                "firstname": f"First{i}", "lastname": f"Last{i}", "company": f"Company {i % 97}",
                "website": f"https://www.company{i % 97}.com/about",
                "lifecyclestage": "lead", "createdate": iso(created), "lastmodifieddate": iso(modified),
                "hs_lifecyclestage_lead_date": iso(created),
                "hs_google_click_id": f"gclid-{seed}-{i}" if paid else None,
                "hs_analytics_source": sources[i % len(sources)],
                "hs_analytics_source_data_1": "brand_search" if paid else None,
                "utm_source": "google" if paid else None, "utm_medium": "cpc" if paid else None,
                "utm_campaign": "brand_search" if paid else None,
            }, archived=bool(archived_every) and i % archived_every == archived_every - 1))
        return ids

    def add_deals_and_meetings(self, contact_ids: list[str], start: datetime, end: datetime,
                               *, deal_every: int = 5, meetings_per_deal: int = 2) -> None:
        """One deal per `deal_every` contacts and `meetings_per_deal` meetings on each deal's contact."""
        chosen = contact_ids[::deal_every]
        span = (end - start) / max(len(chosen), 1)
        for i, contact_id in enumerate(chosen):
            at = start + span * i
            won = i % 3 == 0
            deal_id = self.add("deals", {
                "dealname": f"Deal {i}", "amount": str(1000 + 10 * i), "pipeline": "default",
                "dealstage": "closedwon" if won else "qualifiedtobuy", "createdate": iso(at - timedelta(days=3)),
                "closedate": iso(at), "hs_is_closed": "true" if won else "false",
                "hs_is_closed_won": "true" if won else "false", "hs_lastmodifieddate": iso(at),
            })
            self.associate("deals", deal_id, "contacts", contact_id)
            for k in range(meetings_per_deal):
                when = at + timedelta(hours=k + 1)
                meeting_id = self.add("meetings", {
                    "hs_timestamp": iso(when), "hs_meeting_title": f"Discovery call {i}.{k}",
                    "hs_meeting_outcome": "COMPLETED", "hs_createdate": iso(when), "hs_lastmodifieddate": iso(when),
                })
                self.associate("meetings", meeting_id, "contacts", contact_id)

    # ---- faults and log ------------------------------------------------------------------
    def fail_next(self, status: int = 429, *, count: int = 1, retry_after: float | None = None,
                  method: str | None = None, path_contains: str | None = None) -> None:
        """The next `count` matching requests answer `status` (with Retry-After if given)."""
        with self._lock:
            self._faults.append(Fault(status, count, retry_after, method, path_contains))

    def requests_to(self, method: str, path_contains: str = "") -> list[dict]:
        return [r for r in self.requests if r["method"] == method and path_contains in r["path"]]

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.count > 0 and fault.method in (None, method) and (
                        fault.path_contains is None or fault.path_contains in path):
                    fault.count -= 1
                    return fault
            return None

    # ---- API semantics -------------------------------------------------------------------
    def _shape(self, object_type: str, record: Record, wanted: list[str] | None,
               associations: list[str] | None = None) -> dict:
        names = wanted if wanted else ALWAYS_RETURNED[object_type]
        # HubSpot only returns properties that exist on the object type; unknown names are ignored.
        props = {n: record.properties.get(n) for n in names if n in self.properties[object_type]}
        props["hs_object_id"] = record.id
        created = record.properties.get("createdate") or record.properties.get("hs_createdate")
        updated = record.properties.get("lastmodifieddate") or record.properties.get("hs_lastmodifieddate")
        shaped = {"id": record.id, "properties": props, "createdAt": created, "updatedAt": updated,
                  "archived": record.archived}
        if associations:
            linked = {}
            for to_type in associations:
                ids = record.associations.get(to_type)
                if ids:
                    singular = object_type.rstrip("s")
                    linked[to_type] = {"results": [{"id": i, "type": f"{singular}_to_{to_type.rstrip('s')}"}
                                                   for i in ids]}
            if linked:
                shaped["associations"] = linked
        return shaped

    def list_objects(self, object_type: str, query: dict[str, list[str]]) -> tuple[int, dict]:
        limit = int(query.get("limit", ["10"])[0])
        if limit > LIST_LIMIT_MAX:
            limit = LIST_LIMIT_MAX  # HubSpot silently clamps list pages
        offset = int(query.get("after", ["0"])[0])
        archived = query.get("archived", ["false"])[0].lower() == "true"
        wanted = _split_multi(query.get("properties"))
        associations = _split_multi(query.get("associations"))
        rows = sorted((r for r in self.records[object_type].values() if r.archived == archived),
                      key=lambda r: int(r.id))
        page = rows[offset:offset + limit]
        body: dict = {"results": [self._shape(object_type, r, wanted, associations) for r in page]}
        if offset + limit < len(rows):
            after = str(offset + limit)
            body["paging"] = {"next": {"after": after, "link": f"?after={after}"}}
        return 200, body

    def search(self, object_type: str, request: dict) -> tuple[int, dict]:
        limit = int(request.get("limit", 10))
        offset = int(request.get("after") or 0)
        if limit > SEARCH_LIMIT_MAX:
            return 400, _error(f"limit must be at most {SEARCH_LIMIT_MAX}", "VALIDATION_ERROR")
        if offset >= self.search_cap:
            return 400, _error(f"Search results are limited to {self.search_cap}; 'after' = {offset}",
                               "VALIDATION_ERROR")
        groups = request.get("filterGroups") or []
        unknown = [f["propertyName"] for g in groups for f in g.get("filters", [])
                   if f["propertyName"] not in self.properties[object_type]]
        if unknown:
            return 400, _error(f"There was a problem with the request: unknown property {unknown[0]}",
                               "VALIDATION_ERROR")
        rows = [r for r in self.records[object_type].values()
                if not r.archived and (not groups or any(_matches(r, g) for g in groups))]
        for sort in reversed(request.get("sorts") or []):
            name = sort["propertyName"] if isinstance(sort, dict) else str(sort)
            descending = isinstance(sort, dict) and sort.get("direction") == "DESCENDING"
            rows.sort(key=lambda r: (r.millis(name) or 0, int(r.id)), reverse=descending)
        if not request.get("sorts"):
            rows.sort(key=lambda r: int(r.id))
        page = rows[offset:offset + limit]
        body = {"total": len(rows),
                "results": [self._shape(object_type, r, request.get("properties")) for r in page]}
        if offset + limit < len(rows):
            body["paging"] = {"next": {"after": str(offset + limit)}}
        return 200, body

    def properties_of(self, object_type: str) -> tuple[int, dict]:
        if object_type not in self.properties:
            return 400, _error(f"Unable to infer object type from: {object_type}", "VALIDATION_ERROR")
        return 200, {"results": [{"name": n, "label": n, "type": "string", "groupName": "info"}
                                 for n in sorted(self.properties[object_type])]}

    def association_batch(self, from_type: str, to_type: str, request: dict) -> tuple[int, dict]:
        inputs = request.get("inputs") or []
        if len(inputs) > ASSOCIATION_BATCH_MAX:
            return 400, _error(f"at most {ASSOCIATION_BATCH_MAX} inputs", "VALIDATION_ERROR")
        results = []
        for item in inputs:
            record = self.records[from_type].get(str(item["id"]))
            if record is None or not record.associations.get(to_type):
                continue
            results.append({"from": {"id": record.id},
                            "to": [{"toObjectId": int(t), "associationTypes": [
                                {"category": "HUBSPOT_DEFINED", "typeId": 200, "label": None}]}
                                   for t in record.associations[to_type]]})
        return 200, {"status": "COMPLETE", "results": results,
                     "startedAt": "2024-01-01T00:00:00.000Z", "completedAt": "2024-01-01T00:00:00.000Z"}


def _split_multi(values: list[str] | None) -> list[str] | None:
    """The client sends repeated `properties=a&properties=b`; others send `a,b`."""
    if not values:
        return None
    return [p for v in values for p in v.split(",") if p]


def _matches(record: Record, group: dict) -> bool:
    for f in group.get("filters", []):
        have = record.millis(f["propertyName"])
        want = to_millis(f.get("value"))
        op = f["operator"]
        if op == "HAS_PROPERTY":
            ok = have is not None
        elif have is None or want is None:
            ok = False
        else:
            ok = {"GTE": have >= want, "GT": have > want, "LT": have < want, "LTE": have <= want,
                  "EQ": have == want, "NEQ": have != want}[op]
        if not ok:
            return False
    return True


def _error(message: str, category: str) -> dict:
    return {"status": "error", "message": message, "correlationId": "00000000-fake", "category": category}


class _Handler(BaseHTTPRequestHandler):
    portal: FakeHubSpot
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: avoid 40 ms delayed-ACK stalls

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        split = urlsplit(self.path)
        query = parse_qs(split.query)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        entry = {"method": method, "path": split.path, "query": query, "body": body, "status": None}
        with self.portal._lock:
            self.portal.requests.append(entry)

        status, payload, headers = self._route(method, split.path, query, body)
        entry["status"] = status
        # ids of the objects answered (list/search pages), so tests can tell what a sync fetched
        entry["result_ids"] = [r["id"] for r in payload.get("results") or [] if isinstance(r, dict) and "id" in r]
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str, path: str, query: dict, body: dict | None) -> tuple[int, dict, dict]:
        portal = self.portal
        if self.headers.get("Authorization") != f"Bearer {portal.token}":
            return 401, _error("Authentication credentials not found. This API supports OAuth 2.0 "
                               "authentication.", "INVALID_AUTHENTICATION"), {}
        fault = portal._take_fault(method, path)
        if fault is not None:
            headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
            if fault.status == 429:
                return 429, {"status": "error", "message": "You have reached your secondly limit.",
                             "errorType": "RATE_LIMIT", "policyName": "SECONDLY"}, headers
            return fault.status, _error("internal error", "INTERNAL_ERROR"), headers
        parts = [p for p in path.split("/") if p]
        with portal._lock:
            if method == "GET" and parts[:3] == ["crm", "v3", "properties"] and len(parts) == 4:
                return (*portal.properties_of(parts[3]), {})
            if parts[:3] == ["crm", "v3", "objects"] and len(parts) >= 4 and parts[3] in portal.records:
                if method == "GET" and len(parts) == 4:
                    return (*portal.list_objects(parts[3], query), {})
                if method == "POST" and len(parts) == 5 and parts[4] == "search":
                    return (*portal.search(parts[3], body or {}), {})
            if (method == "POST" and parts[:3] == ["crm", "v4", "associations"] and len(parts) == 7
                    and parts[5:] == ["batch", "read"]):
                return (*portal.association_batch(parts[3], parts[4], body or {}), {})
        return 404, _error(f"no route {method} {path}", "OBJECT_NOT_FOUND"), {}
