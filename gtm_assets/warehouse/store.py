"""The warehouse: DuckDB or Postgres behind one SQLAlchemy code path, with transactional partition writes.

Every write is one transaction: delete the rows being replaced, bulk-load the new ones. If
anything fails the transaction rolls back and the old rows stay. Only the bulk load and the
fast read differ per dialect (DuckDB scans a registered DataFrame; Postgres uses COPY).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from gtm_assets import contracts

log = logging.getLogger("gtm_assets.warehouse")

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SQL_TYPES = {
    contracts.STR: "TEXT",
    contracts.INT: "BIGINT",
    contracts.FLOAT: "DOUBLE PRECISION",
    contracts.BOOL: "BOOLEAN",
    contracts.DATE: "DATE",
    contracts.TIMESTAMP: "TIMESTAMP WITH TIME ZONE",
    contracts.JSON: "JSON",
}


class WarehouseError(RuntimeError):
    """A warehouse operation failed; the message names the table and what to do."""


def quote(identifier: str) -> str:
    if not _IDENT.match(identifier):
        raise WarehouseError(f"'{identifier}' is not a valid table or column name (letters, digits, underscore)")
    return f'"{identifier}"'


def logical_type(series: pd.Series) -> str:
    """Infer the logical column type of a frame column that has no declared contract."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return contracts.BOOL
    if pd.api.types.is_integer_dtype(dtype):
        return contracts.INT
    if pd.api.types.is_float_dtype(dtype):
        return contracts.FLOAT
    if isinstance(dtype, pd.DatetimeTZDtype):
        return contracts.TIMESTAMP
    if pd.api.types.is_datetime64_dtype(dtype):
        return contracts.DATE if _is_midnight_only(series) else contracts.TIMESTAMP
    sample = series.dropna()
    if len(sample) and isinstance(sample.iloc[0], (list, dict, tuple)):
        return contracts.JSON
    if len(sample) and isinstance(sample.iloc[0], bool):
        return contracts.BOOL
    return contracts.STR


def _is_midnight_only(series: pd.Series) -> bool:
    values = series.dropna()
    return bool(len(values)) and bool((values == values.dt.normalize()).all())


@dataclass(frozen=True)
class Window:
    """Rows whose `column` lies in [start, end) are the ones a partition write replaces."""

    column: str
    start: object
    end: object


def redact_url(url: str) -> str:
    """The URL with any password replaced, safe for logs and errors."""
    return re.sub(r"(//[^:/@]+:)[^@]*@", r"\1***@", url)


class Warehouse:
    """A SQL warehouse reached by URL: `duckdb:///path/file.duckdb` or `postgresql://user@host/db`."""

    def __init__(self, url: str, lock_timeout_seconds: float = 120.0):
        self.url = url
        self.lock_timeout_seconds = lock_timeout_seconds
        if url.startswith("duckdb:"):
            self.dialect = "duckdb"
            path = url.split("///", 1)[1] if "///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine_url = url
        elif url.startswith(("postgresql:", "postgres:", "postgresql+")):
            self.dialect = "postgresql"
            engine_url = re.sub(r"^postgres(ql)?(\+\w+)?:", "postgresql+psycopg:", url)
        else:
            raise WarehouseError(
                f"GTM_WAREHOUSE_URL must start with duckdb:/// or postgresql://, got {redact_url(url)!r}"
            )
        # NullPool: DuckDB allows one writing process per file, so hold the file only while working.
        self.engine: Engine = sa.create_engine(engine_url, poolclass=NullPool)

    def __repr__(self) -> str:
        return f"Warehouse({redact_url(self.url)!r})"

    # ---- connections -----------------------------------------------------------------
    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection inside one transaction; retries while another process holds the DuckDB lock."""
        deadline = time.monotonic() + self.lock_timeout_seconds
        delay = 0.2
        while True:
            try:
                ctx = self.engine.begin()
                conn = ctx.__enter__()
                break
            except sa.exc.OperationalError as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise WarehouseError(
                        f"cannot open the warehouse {redact_url(self.url)}: {exc.orig}. "
                        "With DuckDB only one process may write at a time: wait for the other run, "
                        "or move the warehouse to Postgres (GTM_WAREHOUSE_URL=postgresql://...)."
                    ) from None
                log.info("warehouse is locked by another process; retrying in %.1fs", delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        try:
            if self.dialect == "duckdb":
                conn.exec_driver_sql("SET TimeZone='UTC'")
            else:
                conn.exec_driver_sql("SET TIME ZONE 'UTC'")
            yield conn
        except BaseException as exc:
            ctx.__exit__(type(exc), exc, exc.__traceback__)
            raise
        else:
            ctx.__exit__(None, None, None)

    # ---- schema ----------------------------------------------------------------------
    def table_exists(self, table: str, conn: Connection | None = None) -> bool:
        if conn is None:
            with self.begin() as c:
                return self.table_exists(table, c)
        # information_schema, not SQLAlchemy reflection: it reads the same on DuckDB and Postgres.
        found = conn.execute(sa.text(
            "SELECT 1 FROM information_schema.tables WHERE table_name = :t AND table_schema = current_schema()"
        ), {"t": table}).first()
        return found is not None

    def columns(self, table: str, conn: Connection) -> dict[str, str]:
        rows = conn.execute(sa.text(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = :t AND table_schema = current_schema() ORDER BY ordinal_position"
        ), {"t": table}).fetchall()
        return {name: str(kind).upper() for name, kind in rows}

    def _ensure_table(self, conn: Connection, table: str, types: dict[str, str]) -> dict[str, str]:
        if not self.table_exists(table, conn):
            cols = ", ".join(f"{quote(c)} {_SQL_TYPES[t]}" for c, t in types.items())
            conn.exec_driver_sql(f"CREATE TABLE {quote(table)} ({cols})")
            return dict(types)
        existing = self.columns(table, conn)
        for column, kind in types.items():
            if column not in existing:
                # New source columns are additive: old rows read NULL for them.
                conn.exec_driver_sql(f"ALTER TABLE {quote(table)} ADD COLUMN {quote(column)} {_SQL_TYPES[kind]}")
        return types

    # ---- writes ----------------------------------------------------------------------
    def write(
        self,
        table: str,
        frame: pd.DataFrame,
        *,
        window: Window | None = None,
        key: Sequence[str] | None = None,
        equals: dict[str, object] | None = None,
        types: dict[str, str] | None = None,
    ) -> int:
        """Write `frame` to `table` in one transaction and return the rows written.

        - window: replace the rows whose window.column lies in [start, end) (a partition).
        - key: upsert: replace the rows whose key equals a key in the frame.
        - equals: additionally restrict the replaced rows to these column values.
        - none of these: replace the whole table.
        """
        quote(table)
        types = {**{c: logical_type(frame[c]) for c in frame.columns}, **(types or {})}
        types = {c: t for c, t in types.items() if c in frame.columns}
        if window is not None:
            self._check_window(table, frame, window)
        started = time.perf_counter()
        try:
            with self.begin() as conn:
                if window is None and key is None and not equals and self.table_exists(table, conn):
                    conn.exec_driver_sql(f"DROP TABLE {quote(table)}")
                self._ensure_table(conn, table, types)
                deleted = self._delete(conn, table, frame, window, key, equals)
                self._bulk_insert(conn, table, frame, types)
        except WarehouseError:
            raise
        except Exception as exc:
            cause = getattr(exc, "orig", None) or exc
            raise WarehouseError(
                f"{table}: write of {len(frame)} rows failed and was rolled back (the old rows are kept): "
                f"{type(cause).__name__}: {str(cause).splitlines()[0]}"
            ) from exc
        log.info("%s: replaced %s rows with %s in %.2fs", table, deleted, len(frame), time.perf_counter() - started)
        return len(frame)

    def _check_window(self, table: str, frame: pd.DataFrame, window: Window) -> None:
        if window.column not in frame.columns:
            raise WarehouseError(f"{table}: partition column '{window.column}' is not in the frame")
        values = frame[window.column].dropna()
        if values.empty:
            return
        start, end = pd.Timestamp(window.start), pd.Timestamp(window.end)
        if getattr(values.dt, "tz", None) is not None:
            start = start.tz_localize("UTC") if start.tzinfo is None else start
            end = end.tz_localize("UTC") if end.tzinfo is None else end
        outside = (values < start) | (values >= end)
        if outside.any():
            raise WarehouseError(
                f"{table}: {int(outside.sum())} row(s) have {window.column} outside the partition "
                f"[{window.start}, {window.end}); e.g. {values[outside].iloc[0]}. A partition write "
                "may only hold its own rows, or re-runs would duplicate them."
            )

    def _delete(self, conn, table, frame, window, key, equals) -> int:
        clauses, params = [], {}
        if window is not None:
            clauses.append(f"{quote(window.column)} >= :w_start AND {quote(window.column)} < :w_end")
            params.update(w_start=_sql_value(window.start), w_end=_sql_value(window.end))
        for i, (column, value) in enumerate((equals or {}).items()):
            clauses.append(f"{quote(column)} = :eq{i}")
            params[f"eq{i}"] = value
        if key is not None:
            if frame.empty:
                return 0
            keys = frame[list(key)].drop_duplicates()
            staged = self._stage(conn, f"_gtm_keys_{table}", keys, {k: self.columns(table, conn)[k] for k in key})
            match = " AND ".join(f"{quote(table)}.{quote(k)} = {staged}.{quote(k)}" for k in key)
            clauses.append(f"EXISTS (SELECT 1 FROM {staged} WHERE {match})")
            try:
                result = conn.execute(sa.text(f"DELETE FROM {quote(table)} WHERE {' AND '.join(clauses)}"), params)
            finally:
                self._unstage(conn, staged)
            return result.rowcount or 0
        if not clauses:
            return 0
        result = conn.execute(sa.text(f"DELETE FROM {quote(table)} WHERE {' AND '.join(clauses)}"), params)
        return result.rowcount or 0

    def _stage(self, conn: Connection, name: str, frame: pd.DataFrame, sql_types: dict[str, str]) -> str:
        """Make `frame` queryable as a relation inside this transaction; return its quoted name."""
        raw = conn.connection.driver_connection
        if self.dialect == "duckdb":
            raw.register(name, _for_duckdb(frame))
            return quote(name)
        cols = ", ".join(f"{quote(c)} {sql_types[c]}" for c in frame.columns)
        conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {quote(name)} ({cols}) ON COMMIT DROP")
        self._copy(raw, name, frame, sql_types)
        return quote(name)

    def _unstage(self, conn: Connection, staged: str) -> None:
        # Best effort: after a failed statement the transaction is aborted and the rollback
        # drops the staged rows anyway; the original error is the one worth raising.
        try:
            if self.dialect == "duckdb":
                conn.connection.driver_connection.unregister(staged.strip('"'))
            else:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {staged}")
        except Exception:  # noqa: BLE001
            pass

    @staticmethod
    def _copy(raw, table: str, frame: pd.DataFrame, sql_types: dict[str, str]) -> None:
        with raw.cursor() as cursor:
            with cursor.copy(
                f"COPY {quote(table)} ({', '.join(quote(c) for c in frame.columns)}) "
                f"FROM STDIN WITH (FORMAT csv, NULL '{_PG_NULL}')"
            ) as copy:
                copy.write(_to_copy_csv(frame, sql_types))

    def _bulk_insert(self, conn: Connection, table: str, frame: pd.DataFrame, types: dict[str, str]) -> None:
        if frame.empty:
            return
        table_types = self.columns(table, conn)
        if self.dialect == "duckdb":
            view = self._stage(conn, f"_gtm_incoming_{table}", frame, table_types)
            try:
                select = ", ".join(f"CAST({quote(c)} AS {table_types[c]})" for c in frame.columns)
                conn.exec_driver_sql(
                    f"INSERT INTO {quote(table)} ({', '.join(quote(c) for c in frame.columns)}) SELECT {select} FROM {view}"
                )
            finally:
                self._unstage(conn, view)
        else:
            self._copy(conn.connection.driver_connection, table, frame, table_types)

    # ---- reads -----------------------------------------------------------------------
    def read(self, table: str, where: str | None = None, params: dict | None = None, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Read a table (optionally filtered) with proper types: timestamps UTC, dates as naive datetimes."""
        cols = ", ".join(quote(c) for c in columns) if columns else "*"
        sql = f"SELECT {cols} FROM {quote(table)}" + (f" WHERE {where}" if where else "")
        return self.query(sql, params)

    def query(self, sql: str, params: dict | None = None) -> pd.DataFrame:
        with self.begin() as conn:
            if self.dialect == "duckdb" and not params:
                frame = conn.connection.driver_connection.execute(sql).df()
            else:
                result = conn.execute(sa.text(sql), params or {})
                frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
        return _normalize_read(frame)

    def execute(self, sql: str, params: dict | None = None) -> None:
        with self.begin() as conn:
            conn.execute(sa.text(sql), params or {})

    def row_count(self, table: str) -> int:
        if not self.table_exists(table):
            return 0
        return int(self.query(f"SELECT COUNT(*) AS n FROM {quote(table)}")["n"].iloc[0])

    def tables(self) -> list[str]:
        frame = self.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
        return sorted(frame["table_name"].tolist())


_PG_NULL = "\\N"


def _sql_value(value: object) -> object:
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def _for_duckdb(frame: pd.DataFrame) -> pd.DataFrame:
    """DuckDB scans most pandas dtypes directly; JSON-ish Python objects go in as JSON text."""
    out = frame
    for column in frame.columns:
        series = frame[column]
        if series.dtype == object:
            sample = series.dropna()
            if len(sample) and isinstance(sample.iloc[0], (list, dict, tuple)):
                out = out if out is not frame else frame.copy()
                out[column] = series.map(lambda v: None if v is None else json.dumps(v, default=str))
    return out


def _to_copy_csv(frame: pd.DataFrame, sql_types: dict[str, str]) -> str:
    """CSV for Postgres COPY: every value quoted, NULL as the bare marker, so no value reads back as NULL."""
    texts = []
    for column in frame.columns:
        series = frame[column]
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            text = series.dt.strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
        elif pd.api.types.is_datetime64_dtype(series.dtype):
            text = series.dt.strftime("%Y-%m-%d" if sql_types.get(column) == "DATE" else "%Y-%m-%d %H:%M:%S.%f")
        elif pd.api.types.is_bool_dtype(series.dtype):
            text = series.map(lambda v: "true" if v else "false", na_action="ignore")
        elif pd.api.types.is_float_dtype(series.dtype):
            text = series.map(lambda v: repr(float(v)), na_action="ignore")
        else:
            text = series.map(
                lambda v: json.dumps(v, default=str) if isinstance(v, (list, dict, tuple)) else str(v),
                na_action="ignore",
            )
        quoted = '"' + text.astype("object").where(series.notna(), "").astype(str).str.replace('"', '""', regex=False) + '"'
        texts.append(quoted.where(series.notna().to_numpy(), _PG_NULL))
    if not texts:
        return ""
    lines = texts[0].astype(str)
    for text in texts[1:]:
        lines = lines + "," + text.astype(str)
    return "\n".join(lines.tolist()) + "\n"


def _normalize_read(frame: pd.DataFrame) -> pd.DataFrame:
    """Same dtypes whichever database answered: tz-aware UTC timestamps, naive dates, floats for numerics."""
    for column in frame.columns:
        series = frame[column]
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            frame[column] = series.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
        elif pd.api.types.is_datetime64_dtype(series.dtype):
            frame[column] = series.astype("datetime64[us]")
        elif series.dtype == object:
            sample = series.dropna()
            if sample.empty:
                continue
            first = sample.iloc[0]
            if isinstance(first, _dt.datetime):
                parsed = pd.to_datetime(series, utc=first.tzinfo is not None)
                frame[column] = parsed.astype("datetime64[us, UTC]" if first.tzinfo else "datetime64[us]")
            elif isinstance(first, _dt.date):
                frame[column] = pd.to_datetime(series).astype("datetime64[us]")
            elif isinstance(first, bool):
                frame[column] = series.astype("boolean")
            elif isinstance(first, Decimal):
                frame[column] = series.astype("float64")
    return frame
