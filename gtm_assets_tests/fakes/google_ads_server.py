"""A wire-level fake of Google Ads for tests: GoogleAdsService.SearchStream over TLS, and an OAuth token endpoint.

The gRPC side speaks the real protocol with the google-ads package's own message classes,
so the official client (interceptors, metadata, GoogleAdsFailure trailers, api_core error
mapping) runs unmodified against it. It serves one in-memory account, parses just enough
GAQL (SELECT fields, FROM resource, a `segments.date` filter), streams results in batches,
records every request, and injects faults on demand.

TLS: one self-signed certificate (CN localhost, SAN localhost and 127.0.0.1) is generated per
process and trusted through GRPC_DEFAULT_SSL_ROOTS_FILE_PATH. gRPC core reads that variable
once, the first time any TLS channel is created in the process, so `trust_fake_certificate()`
must run before the first secure channel; every fake in the process reuses the same cert.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
import secrets
import tempfile
import threading
import urllib.parse
from collections import defaultdict
from concurrent import futures
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from google.ads.googleads.v26.errors.types.errors import GoogleAdsFailure
from google.ads.googleads.v26.services.types.google_ads_service import (
    GoogleAdsRow,
    SearchGoogleAdsStreamRequest,
    SearchGoogleAdsStreamResponse,
)

API_VERSION = "v26"
SERVICE_NAME = f"google.ads.googleads.{API_VERSION}.services.GoogleAdsService"
FAILURE_METADATA_KEY = f"google.ads.googleads.{API_VERSION}.errors.googleadsfailure-bin"

_ROW_PB = GoogleAdsRow.pb()


# ---------------------------------------------------------------- the account data model
@dataclass(frozen=True)
class FakeCampaign:
    id: int
    name: str
    channel_type: str  # AdvertisingChannelType name: SEARCH, DISPLAY, VIDEO, PERFORMANCE_MAX, ...
    budget_micros: int
    status: str = "ENABLED"


@dataclass(frozen=True)
class FakeAdGroup:
    id: int
    campaign_id: int
    name: str = ""


@dataclass(frozen=True)
class FakeKeyword:
    criterion_id: int
    ad_group_id: int
    text: str
    match_type: str  # EXACT, PHRASE, BROAD


@dataclass(frozen=True)
class FakeStat:
    """Metrics at the finest grain the fake knows: a keyword, an ad group without keyword
    (criterion_id None), or a campaign without ad groups such as Performance Max
    (ad_group_id None). Higher levels are sums, as in Google Ads."""

    day: dt.date
    campaign_id: int
    ad_group_id: int | None
    criterion_id: int | None
    impressions: int
    clicks: int
    cost_micros: int
    conversions: float = 0.0


@dataclass(frozen=True)
class FakeClick:
    gclid: str
    day: dt.date
    campaign_id: int
    ad_group_id: int | None = None
    criterion_id: int | None = None


@dataclass
class FakeAccount:
    customer_id: str  # ten digits, no dashes
    campaigns: list[FakeCampaign]
    ad_groups: list[FakeAdGroup] = field(default_factory=list)
    keywords: list[FakeKeyword] = field(default_factory=list)
    stats: list[FakeStat] = field(default_factory=list)
    clicks: list[FakeClick] = field(default_factory=list)
    # (day, campaign_id) -> metrics.search_budget_lost_impression_share; absent keys stay unset.
    budget_lost_share: dict[tuple[dt.date, int], float] = field(default_factory=dict)


# ---------------------------------------------------------------- GAQL answering
class QueryRejected(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


_QUERY_RE = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<resource>\w+)(?:\s+WHERE\s+(?P<where>.+?))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_BETWEEN_RE = re.compile(r"segments\.date\s+BETWEEN\s+'([\d-]+)'\s+AND\s+'([\d-]+)'", re.IGNORECASE)
_EQUALS_RE = re.compile(r"segments\.date\s*=\s*'([\d-]+)'", re.IGNORECASE)


@dataclass(frozen=True)
class ParsedQuery:
    fields: tuple[str, ...]
    resource: str
    start: dt.date | None
    end: dt.date | None


def parse_gaql(query: str) -> ParsedQuery:
    match = _QUERY_RE.match(query)
    if not match:
        raise QueryRejected("UNEXPECTED_INPUT", f"Error in query: cannot parse {query!r}.")
    fields = tuple(f.strip() for f in match["fields"].split(","))
    where = match["where"] or ""
    start = end = None
    if between := _BETWEEN_RE.search(where):
        start, end = (dt.date.fromisoformat(v) for v in between.groups())
    elif equals := _EQUALS_RE.search(where):
        start = end = dt.date.fromisoformat(equals[1])
    elif where.strip():
        raise QueryRejected("UNEXPECTED_INPUT", f"Error in query: unsupported WHERE clause {where!r}.")
    return ParsedQuery(fields, match["resource"].lower(), start, end)


def _account_rows(account: FakeAccount, query: ParsedQuery) -> list[dict]:
    """All rows of `query.resource` in the date range, each a {GAQL field path: value} dict."""
    campaigns = {c.id: c for c in account.campaigns}
    ad_groups = {a.id: a for a in account.ad_groups}
    keywords = {k.criterion_id: k for k in account.keywords}
    in_range = (lambda day: True) if query.start is None else (lambda day: query.start <= day <= query.end)

    def campaign_fields(campaign_id: int) -> dict:
        campaign = campaigns[campaign_id]
        return {
            "campaign.id": campaign.id, "campaign.name": campaign.name, "campaign.status": campaign.status,
            "campaign.advertising_channel_type": campaign.channel_type,
            "campaign_budget.amount_micros": campaign.budget_micros,
        }

    def metric_fields(stats: list[FakeStat]) -> dict:
        return {
            "metrics.impressions": sum(s.impressions for s in stats),
            "metrics.clicks": sum(s.clicks for s in stats),
            "metrics.cost_micros": sum(s.cost_micros for s in stats),
            "metrics.conversions": sum(s.conversions for s in stats),
        }

    uses_date = any(f.startswith("segments.date") for f in query.fields)
    if uses_date and query.start is None:
        raise QueryRejected(
            "EXPECTED_FILTERS_ON_DATE_RANGE",
            "A date range must be specified in WHERE when segments.date is selected.",
        )
    stats = [s for s in account.stats if in_range(s.day)]

    def grouped(key) -> dict:
        groups: dict = defaultdict(list)
        for s in stats:
            k = key(s)
            if k is not None:
                groups[k].append(s)
        return groups

    if query.resource == "campaign":
        if not uses_date:
            return [campaign_fields(c.id) for c in account.campaigns]
        rows = []
        for (day, campaign_id), group in sorted(grouped(lambda s: (s.day, s.campaign_id)).items()):
            row = {**campaign_fields(campaign_id), **metric_fields(group), "segments.date": day.isoformat()}
            if (day, campaign_id) in account.budget_lost_share:
                row["metrics.search_budget_lost_impression_share"] = account.budget_lost_share[(day, campaign_id)]
            rows.append(row)
        return rows
    if query.resource == "ad_group":
        groups = grouped(lambda s: None if s.ad_group_id is None else (s.day, s.ad_group_id))
        return [
            {**campaign_fields(ad_groups[ag].campaign_id), "ad_group.id": ag, "ad_group.name": ad_groups[ag].name,
             **metric_fields(group), "segments.date": day.isoformat()}
            for (day, ag), group in sorted(groups.items())
        ]
    if query.resource == "keyword_view":
        groups = grouped(lambda s: None if s.criterion_id is None else (s.day, s.criterion_id))
        rows = []
        for (day, criterion), group in sorted(groups.items()):
            keyword = keywords[criterion]
            rows.append({
                **campaign_fields(ad_groups[keyword.ad_group_id].campaign_id), "ad_group.id": keyword.ad_group_id,
                "ad_group_criterion.criterion_id": criterion,
                "ad_group_criterion.keyword.text": keyword.text,
                "ad_group_criterion.keyword.match_type": keyword.match_type,
                **metric_fields(group), "segments.date": day.isoformat(),
            })
        return rows
    if query.resource == "click_view":
        if query.start is None or query.start != query.end:
            raise QueryRejected(
                "EXPECTED_FILTERS_ON_DATE_RANGE",
                "click_view queries must filter segments.date to a single day.",
            )
        rows = []
        for click in account.clicks:
            if not in_range(click.day):
                continue
            row = {"click_view.gclid": click.gclid, "segments.date": click.day.isoformat(),
                   "campaign.id": click.campaign_id}
            if click.ad_group_id is not None:
                row["ad_group.id"] = click.ad_group_id
            if click.criterion_id is not None:
                keyword = keywords[click.criterion_id]
                row["click_view.keyword_info.text"] = keyword.text
                row["click_view.keyword_info.match_type"] = keyword.match_type
                row["click_view.keyword"] = (
                    f"customers/{account.customer_id}/adGroupCriteria/{keyword.ad_group_id}~{keyword.criterion_id}"
                )
            rows.append(row)
        return rows
    raise QueryRejected("BAD_RESOURCE_TYPE_IN_FROM_CLAUSE", f"Unsupported resource {query.resource!r} in FROM.")


@lru_cache(maxsize=None)
def _field_path(path: str) -> tuple[tuple[str, ...], str, object]:
    """Validate a GAQL field against GoogleAdsRow; return (parents, leaf, enum descriptor or None)."""
    descriptor = _ROW_PB.DESCRIPTOR
    parts = path.split(".")
    for part in parts[:-1]:
        f = descriptor.fields_by_name.get(part)
        if f is None or f.message_type is None:
            raise QueryRejected("UNRECOGNIZED_FIELD", f"Unrecognized field in the query: '{path}'.")
        descriptor = f.message_type
    leaf = descriptor.fields_by_name.get(parts[-1])
    if leaf is None:
        raise QueryRejected("UNRECOGNIZED_FIELD", f"Unrecognized field in the query: '{path}'.")
    return tuple(parts[:-1]), parts[-1], leaf.enum_type


def _to_row(values: dict, fields: tuple[str, ...]):
    """A raw GoogleAdsRow holding only the selected fields, as the real API returns."""
    row = _ROW_PB()
    for path in fields:
        if path not in values:
            continue
        parents, leaf, enum_type = _field_path(path)
        message = row
        for part in parents:
            message = getattr(message, part)
        value = values[path]
        if enum_type is not None and isinstance(value, str):
            value = enum_type.values_by_name[value].number
        setattr(message, leaf, value)
    return row


# ---------------------------------------------------------------- TLS material
@lru_cache(maxsize=1)
def fake_certificate() -> tuple[bytes, bytes]:
    """(private key PEM, certificate PEM) of a self-signed cert for localhost / 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


@lru_cache(maxsize=1)
def trust_fake_certificate() -> str:
    """Write the fake's certificate to a temp file and point gRPC's default roots at it.

    Must run before the process creates its first TLS gRPC channel (gRPC reads
    GRPC_DEFAULT_SSL_ROOTS_FILE_PATH once per process). Returns the file path.
    """
    _, cert_pem = fake_certificate()
    handle, path = tempfile.mkstemp(prefix="gtm-fake-google-ads-ca-", suffix=".pem")
    with os.fdopen(handle, "wb") as out:
        out.write(cert_pem)
    os.environ["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = path
    return path


# ---------------------------------------------------------------- the OAuth token endpoint
@dataclass
class TokenRequest:
    form: dict[str, str]
    access_token: str | None


class FakeTokenEndpoint:
    """POST /token with grant_type=refresh_token, as oauth2.googleapis.com does."""

    def __init__(self, client_id: str, client_secret: str, refresh_token: str, expires_in: int = 3600):
        self.client_id, self.client_secret, self.refresh_token = client_id, client_secret, refresh_token
        self.expires_in = expires_in
        self.issued: set[str] = set()
        self.requests: list[TokenRequest] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                form = {k: v[0] for k, v in urllib.parse.parse_qs(body).items()}
                status, payload = endpoint._answer(self.path, form)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def _answer(self, path: str, form: dict[str, str]) -> tuple[int, dict]:
        ok = (
            path == "/token" and form.get("grant_type") == "refresh_token"
            and form.get("refresh_token") == self.refresh_token
            and form.get("client_id") == self.client_id and form.get("client_secret") == self.client_secret
        )
        if not ok:
            self.requests.append(TokenRequest(form, None))
            return 400, {"error": "invalid_grant", "error_description": "Bad Request"}
        token = f"ya29.fake-{secrets.token_hex(8)}"
        self.issued.add(token)
        self.requests.append(TokenRequest(form, token))
        return 200, {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer",
                     "scope": "https://www.googleapis.com/auth/adwords"}

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# ---------------------------------------------------------------- the gRPC server
@dataclass
class RecordedRequest:
    customer_id: str
    query: str
    metadata: dict[str, str]
    resource: str | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    outcome: str = "OK"
    batches: int = 0
    rows: int = 0


@dataclass
class _Fault:
    code: grpc.StatusCode
    after_batches: int
    details: str


class FakeGoogleAdsServer:
    """The account's GoogleAdsService.SearchStream on 127.0.0.1, over TLS.

    `developer_token` and the token endpoint's access tokens are required on every call;
    with `login_customer_id` set, the `login-customer-id` header must carry it (a manager
    account reaching a client account).
    """

    def __init__(self, account: FakeAccount, token_endpoint: FakeTokenEndpoint, developer_token: str,
                 login_customer_id: str | None = None, batch_size: int = 3):
        self.account = account
        self.token_endpoint = token_endpoint
        self.developer_token = developer_token
        self.login_customer_id = login_customer_id
        self.batch_size = batch_size
        self.requests: list[RecordedRequest] = []
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._request_counter = 0
        trust_fake_certificate()
        key_pem, cert_pem = fake_certificate()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handler = grpc.method_handlers_generic_handler(SERVICE_NAME, {
            "SearchStream": grpc.unary_stream_rpc_method_handler(
                self._search_stream,
                request_deserializer=SearchGoogleAdsStreamRequest.deserialize,
                response_serializer=SearchGoogleAdsStreamResponse.serialize,
            ),
        })
        self._server.add_generic_rpc_handlers((handler,))
        port = self._server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key_pem, cert_pem)]))
        self._server.start()
        self.endpoint = f"127.0.0.1:{port}"

    # -- test controls
    def fail_next(self, code: grpc.StatusCode, after_batches: int = 0, times: int = 1,
                  details: str = "injected fault") -> None:
        """Make the next `times` SearchStream calls fail with `code` after `after_batches` batches."""
        with self._lock:
            self._faults.extend(_Fault(code, after_batches, details) for _ in range(times))

    def queries(self, resource: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if resource is None or r.resource == resource]

    def stop(self) -> None:
        self._server.stop(grace=None)

    # -- the RPC
    def _reject(self, context, status: grpc.StatusCode, family: str, code: str, message: str, record):
        failure = GoogleAdsFailure.pb()()
        error = failure.errors.add()
        setattr(error.error_code, family, error.error_code.DESCRIPTOR.fields_by_name[family]
                .enum_type.values_by_name[code].number)
        error.message = message
        failure.request_id = record.metadata["_request_id"]
        context.set_trailing_metadata((
            ("request-id", record.metadata["_request_id"]),
            (FAILURE_METADATA_KEY, failure.SerializeToString()),
        ))
        record.outcome = f"{status.name} {family}.{code}"
        context.abort(status, message)

    def _search_stream(self, request, context):
        metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        with self._lock:
            self._request_counter += 1
            request_id = f"fake-req-{self._request_counter:05d}"
            fault = self._faults.pop(0) if self._faults else None
        record = RecordedRequest(request.customer_id, request.query, {**metadata, "_request_id": request_id})
        self.requests.append(record)

        auth = metadata.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[len("Bearer "):] not in self.token_endpoint.issued:
            self._reject(context, grpc.StatusCode.UNAUTHENTICATED, "authentication_error", "OAUTH_TOKEN_INVALID",
                         "Request had invalid authentication credentials.", record)
        if metadata.get("developer-token") != self.developer_token:
            self._reject(context, grpc.StatusCode.UNAUTHENTICATED, "authentication_error", "DEVELOPER_TOKEN_INVALID",
                         "The developer token is not valid.", record)
        if self.login_customer_id is not None and metadata.get("login-customer-id") != self.login_customer_id:
            self._reject(context, grpc.StatusCode.PERMISSION_DENIED, "authorization_error", "USER_PERMISSION_DENIED",
                         "User doesn't have permission to access customer. Note: If you're accessing a client "
                         "customer, the manager's customer id must be set in the 'login-customer-id' header.", record)
        if request.customer_id != self.account.customer_id:
            self._reject(context, grpc.StatusCode.PERMISSION_DENIED, "authorization_error", "USER_PERMISSION_DENIED",
                         f"User doesn't have permission to access customer {request.customer_id}.", record)
        try:
            parsed = parse_gaql(request.query)
            record.resource, record.start, record.end = parsed.resource, parsed.start, parsed.end
            values = _account_rows(self.account, parsed)
            for path in parsed.fields:
                _field_path(path)
        except QueryRejected as rejected:
            self._reject(context, grpc.StatusCode.INVALID_ARGUMENT, "query_error", rejected.code, str(rejected), record)

        context.set_trailing_metadata((("request-id", request_id),))
        for start in range(0, max(len(values), 1), self.batch_size):
            if fault is not None and record.batches >= fault.after_batches:
                record.outcome = f"{fault.code.name} after {record.batches} batches"
                context.abort(fault.code, fault.details)
            response = SearchGoogleAdsStreamResponse.pb()()
            response.results.extend(_to_row(v, parsed.fields) for v in values[start:start + self.batch_size])
            response.field_mask.paths.extend(parsed.fields)
            response.request_id = request_id
            record.batches += 1
            record.rows += len(response.results)
            yield SearchGoogleAdsStreamResponse.wrap(response)
        if fault is not None:
            record.outcome = f"{fault.code.name} after {record.batches} batches"
            context.abort(fault.code, fault.details)


@dataclass
class FakeGoogleAds:
    """A running fake: the gRPC server, its token endpoint, and the credentials that work."""

    server: FakeGoogleAdsServer
    tokens: FakeTokenEndpoint
    developer_token: str
    client_id: str
    client_secret: str
    refresh_token: str

    def stop(self) -> None:
        self.server.stop()
        self.tokens.stop()


def start_fake_google_ads(account: FakeAccount, login_customer_id: str | None = None, batch_size: int = 3,
                          token_expires_in: int = 3600) -> FakeGoogleAds:
    """Start a token endpoint and a TLS gRPC server for `account` with fresh random secrets.

    Call it from a fixture; it trusts the fake certificate process-wide first (see module doc).
    """
    trust_fake_certificate()
    creds = {
        "developer_token": f"devtok-{secrets.token_hex(6)}",
        "client_id": f"{secrets.token_hex(4)}.apps.googleusercontent.com",
        "client_secret": f"GOCSPX-{secrets.token_hex(8)}",
        "refresh_token": f"1//refresh-{secrets.token_hex(8)}",
    }
    tokens = FakeTokenEndpoint(creds["client_id"], creds["client_secret"], creds["refresh_token"],
                               expires_in=token_expires_in)
    server = FakeGoogleAdsServer(account, tokens, creds["developer_token"], login_customer_id, batch_size)
    return FakeGoogleAds(server, tokens, **creds)
