"""The warehouse: partition writes replace exactly their rows, in one transaction, on DuckDB and Postgres."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from gtm_assets.warehouse.store import Warehouse, WarehouseError, Window, redact_url


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request, tmp_path):
    if request.param == "duckdb":
        return Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}")
    return Warehouse(request.getfixturevalue("postgres_url"))


def _day(frame_day: str, clicks: list[int], campaigns: list[str] | None = None) -> pd.DataFrame:
    campaigns = campaigns or [f"c{i}" for i in range(len(clicks))]
    return pd.DataFrame({
        "date": pd.to_datetime([frame_day] * len(clicks)),
        "campaign_id": campaigns,
        "clicks": pd.Series(clicks, dtype="Int64"),
        "cost": [c * 1.25 for c in clicks],
    })


def _window(day: str) -> Window:
    start = date.fromisoformat(day)
    return Window("date", start, start + pd.Timedelta(days=1))


def test_rerunning_a_day_replaces_its_rows_and_keeps_other_days(warehouse):
    warehouse.write("perf", _day("2026-01-01", [1, 2]), window=_window("2026-01-01"))
    warehouse.write("perf", _day("2026-01-02", [3, 4, 5]), window=_window("2026-01-02"))
    # re-run day 1 twice with new numbers: no duplicates, day 2 untouched
    for _ in range(2):
        warehouse.write("perf", _day("2026-01-01", [10, 20, 30]), window=_window("2026-01-01"))
    table = warehouse.read("perf").sort_values(["date", "campaign_id"])
    assert len(table) == 6
    assert table.groupby("date")["clicks"].sum().tolist() == [60, 12]
    assert table["cost"].sum() == pytest.approx(1.25 * 72)


def test_a_failed_write_keeps_the_old_partition(warehouse):
    warehouse.write("perf", _day("2026-01-01", [1, 2]), window=_window("2026-01-01"))
    broken = _day("2026-01-01", [5]).astype({"clicks": "object"})
    broken.loc[0, "clicks"] = "not a number"  # fails inside the transaction, after the delete
    with pytest.raises(WarehouseError, match="rolled back"):
        warehouse.write("perf", broken, window=_window("2026-01-01"))
    assert warehouse.read("perf")["clicks"].sort_values().tolist() == [1, 2]


def test_rows_outside_the_partition_are_refused(warehouse):
    with pytest.raises(WarehouseError, match="outside the partition"):
        warehouse.write("perf", _day("2026-01-03", [1]), window=_window("2026-01-01"))
    assert not warehouse.table_exists("perf")


def test_upsert_replaces_by_key_and_keeps_the_rest(warehouse):
    warehouse.write("contacts", pd.DataFrame({"contact_id": ["1", "2"], "stage": ["lead", "lead"]}), key=["contact_id"])
    warehouse.write("contacts", pd.DataFrame({"contact_id": ["2", "3"], "stage": ["sql", "lead"]}), key=["contact_id"])
    table = warehouse.read("contacts").sort_values("contact_id")
    assert table.to_dict("records") == [
        {"contact_id": "1", "stage": "lead"}, {"contact_id": "2", "stage": "sql"}, {"contact_id": "3", "stage": "lead"},
    ]


def test_new_columns_are_added_and_types_round_trip(warehouse):
    warehouse.write("t", pd.DataFrame({"id": ["a"], "n": pd.Series([1], dtype="Int64")}))
    extra = pd.DataFrame({
        "id": ["b"], "n": pd.Series([None], dtype="Int64"),
        "at": pd.to_datetime(["2026-01-01T10:30:00Z"], utc=True),
        "flag": pd.Series([True], dtype="boolean"),
        "note": ['says "hi", then leaves'],
    })
    warehouse.write("t", extra, key=["id"])
    table = warehouse.read("t").sort_values("id").reset_index(drop=True)
    assert list(table.columns) == ["id", "n", "at", "flag", "note"]
    assert pd.isna(table.loc[1, "n"]) and table.loc[0, "n"] == 1
    assert table.loc[1, "at"] == pd.Timestamp("2026-01-01T10:30:00Z")
    assert str(table["at"].dt.tz) == "UTC"
    assert bool(table.loc[1, "flag"]) is True and pd.isna(table.loc[0, "flag"])
    assert table.loc[1, "note"] == 'says "hi", then leaves' and pd.isna(table.loc[0, "note"])


def test_bad_urls_and_names_give_clear_errors():
    with pytest.raises(WarehouseError, match="GTM_WAREHOUSE_URL"):
        Warehouse("mysql://user:hunter2@db/x")
    try:
        Warehouse("mysql://user:hunter2@db/x")
    except WarehouseError as exc:
        assert "hunter2" not in str(exc)
    assert redact_url("postgresql://gtm:s3cret@db:5432/gtm") == "postgresql://gtm:***@db:5432/gtm"
    with pytest.raises(WarehouseError, match="valid table"):
        Warehouse("duckdb:///:memory:").write("bad name; drop", pd.DataFrame({"a": [1]}))
