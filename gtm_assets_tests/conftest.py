"""Shared fixtures: a fixed demo world, isolated GTM_HOME/DAGSTER_HOME, and the machine's real Postgres."""

from __future__ import annotations

import os
import uuid
from datetime import date

import pytest

from gtm_assets.demo.world import World, cached_world

# A fixed end date keeps every test on the same world, whatever day CI runs.
END_DATE = date(2026, 11, 22)
POSTGRES_URL = os.environ.get("GTM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def world() -> World:
    return cached_world(END_DATE)


@pytest.fixture
def gtm_env(tmp_path, monkeypatch):
    """A fresh GTM_HOME and DAGSTER_HOME for one test, on the demo world ending END_DATE."""
    home = tmp_path / "gtm"
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True)
    monkeypatch.setenv("GTM_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("GTM_SOURCE", "demo")
    monkeypatch.setenv("GTM_DEMO_END_DATE", END_DATE.isoformat())
    monkeypatch.delenv("GTM_WAREHOUSE_URL", raising=False)
    for secret in ("SLACK_BOT_TOKEN", "HUBSPOT_ACCESS_TOKEN"):
        monkeypatch.delenv(secret, raising=False)
    return home


def _postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL.replace("postgresql://", "postgresql://", 1), connect_timeout=3):
            return True
    except Exception:  # noqa: BLE001
        return False


@pytest.fixture
def postgres_url():
    """A fresh schema on the machine's real PostgreSQL, dropped afterwards."""
    if not _postgres_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL}; CI must provide it")
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_URL}")
    import psycopg

    schema = f"gtm_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
