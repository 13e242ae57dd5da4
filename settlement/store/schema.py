"""The store's tables (SQLAlchemy Core). The Alembic migrations in ``migrations/`` create them; this
module is what the code reads and writes through, on SQLite and PostgreSQL alike.

Times are UTC epoch milliseconds (BIGINT), like everywhere in roamledger; the raw OCPI JSON is kept
as received (text, exact numbers), next to the columns settlement selects on.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy import Table as T

metadata = MetaData()

parties = T(
    "parties",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("country_code", String(2), nullable=False),
    Column("party_id", String(3), nullable=False),
    Column("role", String(8), nullable=False),  # CPO | EMSP | HUB | OTHER
    Column("name", Text),
    Column("token_sha256", String(64), unique=True),  # the token this party authenticates with
    Column("created_ms", BigInteger, nullable=False),
    # 0004: when it registered (credentials POST; its token is then token C); NULL: token A or none
    Column("registered_ms", BigInteger),
    UniqueConstraint("country_code", "party_id", "role", name="uq_party"),
)

tariffs = T(
    "tariffs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("country_code", String(2), nullable=False),
    Column("party_id", String(3), nullable=False),
    Column("tariff_id", String(36), nullable=False),
    Column("last_updated_ms", BigInteger, nullable=False),  # the version: a new last_updated, a new row
    Column("ocpi_version", String(8), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("start_ms", BigInteger),  # validity window, when the tariff states one
    Column("end_ms", BigInteger),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("raw", Text, nullable=False),
    Column("received_ms", BigInteger, nullable=False),
    UniqueConstraint("country_code", "party_id", "tariff_id", "last_updated_ms", name="uq_tariff_version"),
)

cdrs = T(
    "cdrs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("country_code", String(2), nullable=False),
    Column("party_id", String(3), nullable=False),
    Column("cdr_id", String(39), nullable=False),
    Column("ocpi_version", String(8), nullable=False),
    Column("start_ms", BigInteger, nullable=False),
    Column("end_ms", BigInteger, nullable=False, index=True),  # months are selected by session end
    Column("currency", String(3), nullable=False),
    Column("credit", Boolean, nullable=False, default=False),
    Column("raw", Text, nullable=False),
    Column("raw_sha256", String(64), nullable=False),
    Column("received_ms", BigInteger, nullable=False),
    Column("ingest_id", Integer, ForeignKey("ingest_log.id")),
    # the columns the kernel reads (migration 0003; settlement.store.rows fills them): CDR-level
    # fields of the flat layout (pricing.flat) here, one cdr_periods row per charging period.
    # ``kernel`` false: only the raw JSON is held (stored before 0003, embedded tariffs, amounts
    # beyond micro-units) and settlement reads that CDR record by record.
    Column("kernel", Boolean, nullable=False, server_default=false()),
    Column("emsp_country_code", Text),
    Column("emsp_party_id", Text),
    Column("time_zone", Text),
    Column("location_country", Text),
    Column("location_id", Text),
    Column("contract_id", Text),
    Column("credit_reference_id", Text),
    Column("reported_total_excl_e6", BigInteger),  # exact micro-units of the currency
    Column("reported_total_incl_e6", BigInteger),
    # what the CPO reported beyond the total (pricing.flat FLAT_REPORTED), micro-units: the cost
    # of each dimension excl. VAT, total energy (kWh) and time (hours); the 2.3.0 tax lines of
    # total_cost as JSON [[name, percentage e6, amount e6], ...]
    *(
        Column(f"reported_{d}_cost_excl_e6", BigInteger)
        for d in ("fixed", "energy", "time", "parking", "reservation")
    ),
    Column("reported_total_energy_e6", BigInteger),
    Column("reported_total_time_e6", BigInteger),
    Column("reported_taxes", Text),
    # OCPI 2.1.1: the tariff ids its location's connectors name (JSON list, document order); the
    # first one among the tariffs held when settling prices it (pricing.sessions.select_tariffs)
    Column("connector_tariff_ids", Text),
    UniqueConstraint("country_code", "party_id", "cdr_id", name="uq_cdr"),
)

cdr_periods = T(
    "cdr_periods",
    metadata,
    Column("cdr_pk", Integer, ForeignKey("cdrs.id"), primary_key=True),
    Column("period_idx", Integer, primary_key=True, autoincrement=False),
    Column("period_start_ms", BigInteger, nullable=False),
    Column("tariff_id", Text),
    Column("energy_mwh", BigInteger),
    Column("time_ms", BigInteger),
    Column("parking_ms", BigInteger),
    Column("reservation_ms", BigInteger),
    Column("min_power_w", BigInteger),
    Column("max_power_w", BigInteger),
    Column("min_current_ma", BigInteger),
    Column("max_current_ma", BigInteger),
)

ingest_log = T(
    "ingest_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at_ms", BigInteger, nullable=False),
    Column("country_code", String(2)),
    Column("party_id", String(3)),
    Column("kind", String(16), nullable=False),  # tariff | cdr | import
    Column("object_id", String(64)),
    Column("outcome", String(16), nullable=False),  # stored | unchanged | duplicate | conflict | rejected
    Column("message", Text),
    Column("source", Text),  # file and line for imports, route for pushes
)

settlement_runs = T(
    "settlement_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("month", String(7), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("manifest", Text, nullable=False),  # manifest.json of a done run ("" before)
    # 0002_months: runs kept in the store (settlement.store.months)
    Column("status", String(8)),  # queued | running | done | failed
    Column("message", Text),  # why a run failed
    Column("options", Text),  # the run's options (JSON)
    Column("finished_ms", BigInteger),
    Column("heartbeat_ms", BigInteger),  # a running run's last sign of life
    Column("cdr_rows", Text),  # the cdrs rows the run read, as ranges "1-500,502-900"
)

statements = T(
    "statements",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("settlement_runs.id"), nullable=False),
    Column("statement_id", String(64), nullable=False),
    Column("cpo", String(8), nullable=False),
    Column("emsp", String(8), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("document", Text, nullable=False),
)

closed_months = T(
    "closed_months",
    metadata,
    Column("month", String(7), primary_key=True),
    Column("closed_ms", BigInteger, nullable=False),
    Column("run_id", Integer, ForeignKey("settlement_runs.id"), nullable=False),
)

run_files = T(
    "run_files",
    metadata,
    Column("run_id", Integer, ForeignKey("settlement_runs.id"), primary_key=True),
    Column("path", String(255), primary_key=True),  # as in the run folder, e.g. NL-CPO__DE-MSP__EUR/lines.csv
    Column("content", Text, nullable=False),
)

closed_cdrs = T(
    "closed_cdrs",
    metadata,
    Column("cdr_row", Integer, ForeignKey("cdrs.id"), primary_key=True),  # settled by a final run
    Column("month", String(7), nullable=False),  # the closed month whose final run settled it
)
