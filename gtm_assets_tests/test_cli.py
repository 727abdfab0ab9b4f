"""`gtm run`: builds a range in-process, records it in the Dagster instance, prints a summary."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance, DagsterRunStatus

from gtm_assets.cli import main


def test_gtm_run_builds_the_range_and_records_the_run(gtm_env, capsys):
    code = main(["run", "--start", "2026-11-20", "--end", "2026-11-22"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "status     SUCCESS" in out
    assert "google_ads/ad_clicks" in out and "hubspot/contacts" in out
    runs = DagsterInstance.get().get_runs()
    assert len(runs) == 1 and runs[0].status == DagsterRunStatus.SUCCESS
    assert runs[0].tags["dagster/asset_partition_range_start"] == "2026-11-20"
    assert (gtm_env / "warehouse.duckdb").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--start", "2026-11-22", "--end", "2026-11-20"], "is after --end"),
        (["run", "--start", "2020-01-01", "--end", "2020-01-02"], "before the first partition"),
        (["run", "--end", "2999-01-01"], "not a complete day yet"),
    ],
)
def test_gtm_run_refuses_bad_ranges_with_a_reason(gtm_env, capsys, args, message):
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_gtm_run_rejects_malformed_dates(gtm_env, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--start", "yesterday"])
    assert exit_info.value.code == 2
    assert "expected a date as YYYY-MM-DD" in capsys.readouterr().err
