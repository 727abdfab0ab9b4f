"""Dagster glue for the warehouse: a resource that opens it by URL and the IO manager that stores tables.

Asset metadata decides how an output is written:
- `partition_expr`: the column a time partition (or a single-run range of partitions) owns;
  the write replaces exactly the rows of that window.
- `primary_key`: the asset upserts entities (contacts, deals, campaigns) by this key.
- neither: the table is replaced whole.
The table is named after the last part of the asset key.
"""


import os
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path

import pandas as pd
from dagster import (
    ConfigurableIOManager,
    ConfigurableResource,
    InputContext,
    MetadataValue,
    OutputContext,
    ResourceDependency,
)

from gtm_assets import contracts
from gtm_assets.warehouse.store import Warehouse, WarehouseError, Window, redact_url


def gtm_home() -> Path:
    return Path(os.environ.get("GTM_HOME") or ".gtm").resolve()


def default_warehouse_url() -> str:
    """GTM_WAREHOUSE_URL, else a DuckDB file under GTM_HOME."""
    return os.environ.get("GTM_WAREHOUSE_URL") or f"duckdb:///{gtm_home() / 'warehouse.duckdb'}"


class WarehouseResource(ConfigurableResource):
    """The warehouse, chosen by URL: `duckdb:///path` (default, under GTM_HOME) or `postgresql://...`."""

    url: str

    @cached_property
    def _warehouse(self) -> Warehouse:
        return Warehouse(self.url)

    def get(self) -> Warehouse:
        return self._warehouse

    @property
    def display_url(self) -> str:
        return redact_url(self.url)


def _as_column_bound(bound: datetime, frame_column: pd.Series | None) -> object:
    """Partition bounds are UTC datetimes; DATE columns compare against the naive date."""
    if frame_column is not None and isinstance(frame_column.dtype, pd.DatetimeTZDtype):
        return pd.Timestamp(bound).tz_convert("UTC")
    return pd.Timestamp(bound).tz_convert("UTC").tz_localize(None).normalize()


class WarehouseIOManager(ConfigurableIOManager):
    """Stores pandas DataFrames as warehouse tables, one table per asset."""

    warehouse: ResourceDependency[WarehouseResource]

    def _table(self, context: OutputContext | InputContext) -> str:
        return context.asset_key.path[-1]

    def handle_output(self, context: OutputContext, obj: pd.DataFrame | None) -> None:
        if obj is None:
            return
        if not isinstance(obj, pd.DataFrame):
            raise WarehouseError(f"{context.asset_key.to_user_string()} returned {type(obj).__name__}; the warehouse stores DataFrames")
        table = self._table(context)
        metadata = context.definition_metadata or {}
        partition_expr = metadata.get("partition_expr")
        primary_key = metadata.get("primary_key")
        contract = contracts.INGEST_CONTRACTS.get(table)
        types = contract.all_columns if contract else None
        warehouse = self.warehouse.get()
        window = key = None
        if primary_key:
            key = [primary_key] if isinstance(primary_key, str) else list(primary_key)
        elif context.has_asset_partitions and partition_expr:
            time_window = context.asset_partitions_time_window
            column = obj[partition_expr] if partition_expr in obj.columns else None
            window = Window(partition_expr, _as_column_bound(time_window.start, column), _as_column_bound(time_window.end, column))
        rows = warehouse.write(table, obj, window=window, key=key, types=types)
        context.add_output_metadata({
            "table": table,
            "rows_written": rows,
            "table_rows": warehouse.row_count(table),
            "write_mode": "upsert" if key else "partition" if window else "replace",
            "warehouse": redact_url(warehouse.url),
        })

    def load_input(self, context: InputContext) -> pd.DataFrame:
        table = self._table(context)
        warehouse = self.warehouse.get()
        if not warehouse.table_exists(table):
            raise WarehouseError(
                f"table '{table}' is not in the warehouse {redact_url(warehouse.url)}: materialize "
                f"{context.asset_key.to_user_string()} first (e.g. `gtm run --start ... --end ...`)"
            )
        upstream_meta = (context.upstream_output.definition_metadata if context.upstream_output else None) or {}
        partition_expr = upstream_meta.get("partition_expr")
        if context.has_asset_partitions and partition_expr and not upstream_meta.get("primary_key"):
            time_window = context.asset_partitions_time_window
            return warehouse.read(
                table,
                where=f'"{partition_expr}" >= :start AND "{partition_expr}" < :end',
                params={"start": time_window.start.astimezone(timezone.utc).replace(tzinfo=None),
                        "end": time_window.end.astimezone(timezone.utc).replace(tzinfo=None)},
            )
        return warehouse.read(table)


def record_quarantine(context, warehouse: WarehouseResource, source_table: str, bad: pd.DataFrame,
                      key: tuple[str, ...]) -> None:
    """Upsert rows that failed `source_table`'s rules into the shared `quarantine` table and warn once."""
    if bad.empty:
        return
    records = contracts.quarantine_records(source_table, bad, key)
    records["quarantined_at"] = pd.Timestamp.now(tz="UTC")
    records["run_id"] = context.run.run_id
    warehouse.get().write("quarantine", records, key=["source_table", "record_key"])
    context.log.warning(
        f"{source_table}: {len(bad)} row(s) quarantined, e.g. {bad['reason'].iloc[0]!r}; see table quarantine"
    )


def table_preview(frame: pd.DataFrame, rows: int = 5) -> MetadataValue:
    """A markdown preview for the UI (first rows, wide frames cut to 12 columns)."""
    if frame.empty:
        return MetadataValue.md("_no rows_")
    return MetadataValue.md(frame.head(rows).iloc[:, :12].to_markdown(index=False))
