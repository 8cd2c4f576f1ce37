"""Numbered schema migrations, applied in order at open and recorded in `schema_migrations`.

A step is written once with type placeholders ({blob}, {ts}, {serial}) where the dialects only
differ in type names, or per dialect where they differ in substance (triggers). Steps are never
edited once released: a change is a new step.

Timestamps: PostgreSQL uses TIMESTAMPTZ; SQLite stores UTC text in one fixed-width format
(`YYYY-MM-DDTHH:MM:SS.ffffffZ`) so text order is time order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from signer.storage.errors import SchemaTooNew

Dialect = Literal["sqlite", "postgresql"]

_TYPES: dict[str, dict[str, str]] = {
    "sqlite": {"blob": "BLOB", "ts": "TEXT", "serial": "INTEGER PRIMARY KEY AUTOINCREMENT"},
    "postgresql": {"blob": "BYTEA", "ts": "TIMESTAMPTZ", "serial": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"},
}


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sqlite: tuple[str, ...]
    postgresql: tuple[str, ...]

    def statements(self, dialect: Dialect) -> tuple[str, ...]:
        return self.sqlite if dialect == "sqlite" else self.postgresql


def _neutral(version: int, description: str, *statements: str) -> Migration:
    return Migration(
        version,
        description,
        tuple(s.format(**_TYPES["sqlite"]) for s in statements),
        tuple(s.format(**_TYPES["postgresql"]) for s in statements),
    )


_BOOTSTRAP = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at {ts} NOT NULL)"""

BOOTSTRAP: dict[Dialect, str] = {
    "sqlite": _BOOTSTRAP.format(**_TYPES["sqlite"]),
    "postgresql": _BOOTSTRAP.format(**_TYPES["postgresql"]),
}

_DIALECTS: tuple[Dialect, ...] = ("sqlite", "postgresql")
_KEY_LIFECYCLE = (
    "party_names TEXT NOT NULL DEFAULT '[]'",
    "self_name TEXT NOT NULL DEFAULT ''",
    "predecessor_key_id TEXT NOT NULL DEFAULT ''",
    "state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'retired'))",
    "retired_at {ts}",
)
_KEY_LIFECYCLE_COLUMNS: dict[Dialect, tuple[str, ...]] = {
    d: tuple(c.format(**_TYPES[d]) for c in _KEY_LIFECYCLE) for d in _DIALECTS
}
# The columns no change may touch; SQLite spells PostgreSQL's `IS DISTINCT FROM` as `IS NOT`.
_KEY_IDENTITY = (
    "key_id",
    "protocol",
    "party_id",
    "threshold",
    "party_ids",
    "public_key",
    "chain_code",
    "sealer_kind",
    "created_at",
    "party_names",
    "self_name",
    "predecessor_key_id",
)
_DISTINCT: dict[Dialect, str] = {"sqlite": "IS NOT", "postgresql": "IS DISTINCT FROM"}
_KEY_CHANGE_REFUSED: dict[Dialect, str] = {
    d: "("
    + " OR ".join(f"NEW.{c} {_DISTINCT[d]} OLD.{c}" for c in _KEY_IDENTITY)
    + " OR NOT ((OLD.state = 'active' AND NEW.state = 'retired' AND length(NEW.sealed_share) = 0"
    " AND NEW.retired_at IS NOT NULL)"
    " OR (OLD.state = 'retired' AND NEW.state = 'active' AND length(NEW.sealed_share) > 0"
    " AND NEW.retired_at IS NULL)))"
    for d in _DIALECTS
}
_KEY_CHANGE_MESSAGE = "stored keys are immutable but for retirement or an explicit revival"

MIGRATIONS: tuple[Migration, ...] = (
    _neutral(
        1,
        "keys, presignatures, audit",
        """CREATE TABLE keys (
            key_id TEXT PRIMARY KEY CHECK (length(key_id) = 64),
            protocol TEXT NOT NULL,
            party_id INTEGER NOT NULL,
            threshold INTEGER NOT NULL,
            party_ids TEXT NOT NULL,
            public_key {blob} NOT NULL,
            chain_code {blob} NOT NULL,
            sealer_kind TEXT NOT NULL,
            sealed_share {blob} NOT NULL,
            created_at {ts} NOT NULL)""",
        """CREATE TABLE presignatures (
            presig_id TEXT PRIMARY KEY,
            key_id TEXT NOT NULL REFERENCES keys (key_id),
            signer_set TEXT NOT NULL,
            sealer_kind TEXT NOT NULL,
            sealed {blob} NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('available', 'consumed')),
            created_at {ts} NOT NULL,
            consumed_at {ts},
            consumed_by TEXT,
            CHECK ((state = 'available' AND consumed_at IS NULL AND consumed_by IS NULL)
                OR (state = 'consumed' AND consumed_at IS NOT NULL AND consumed_by IS NOT NULL)))""",
        """CREATE INDEX presignatures_available ON presignatures (key_id, signer_set, created_at, presig_id)
            WHERE state = 'available'""",
        """CREATE TABLE audit (
            id {serial},
            at {ts} NOT NULL,
            operation TEXT NOT NULL,
            caller TEXT NOT NULL,
            session_id TEXT NOT NULL,
            key_id TEXT,
            digest TEXT,
            result TEXT NOT NULL CHECK (result IN ('ok', 'failed')),
            culprits TEXT NOT NULL,
            reason TEXT NOT NULL)""",
        "CREATE INDEX audit_key ON audit (key_id, id)",
        "CREATE INDEX audit_at ON audit (at)",
    ),
    # Guards in the database itself, so no code path (or hand-written SQL) can rewrite history:
    # audit rows are append-only, a consumed presignature cannot become available again, and a
    # stored key's identity and share cannot be changed or deleted.
    Migration(
        2,
        "append-only audit, single-use presignatures, immutable keys",
        sqlite=(
            """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
               BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END""",
            """CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
               BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END""",
            """CREATE TRIGGER presignatures_single_use BEFORE UPDATE ON presignatures
               WHEN OLD.state = 'consumed' OR NEW.presig_id <> OLD.presig_id OR NEW.key_id <> OLD.key_id
                 OR NEW.signer_set <> OLD.signer_set
               BEGIN SELECT RAISE(ABORT, 'a consumed presignature cannot change'); END""",
            """CREATE TRIGGER keys_immutable BEFORE UPDATE ON keys
               BEGIN SELECT RAISE(ABORT, 'stored keys are immutable'); END""",
            """CREATE TRIGGER keys_no_delete BEFORE DELETE ON keys
               BEGIN SELECT RAISE(ABORT, 'stored keys are immutable'); END""",
        ),
        postgresql=(
            """CREATE FUNCTION mpc_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN RAISE EXCEPTION '%', TG_ARGV[0]; END $$""",
            """CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
               FOR EACH ROW EXECUTE FUNCTION mpc_reject_change('audit records are append-only')""",
            """CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
               FOR EACH STATEMENT EXECUTE FUNCTION mpc_reject_change('audit records are append-only')""",
            """CREATE TRIGGER presignatures_single_use BEFORE UPDATE ON presignatures
               FOR EACH ROW WHEN (OLD.state = 'consumed' OR NEW.presig_id <> OLD.presig_id
                 OR NEW.key_id <> OLD.key_id OR NEW.signer_set <> OLD.signer_set)
               EXECUTE FUNCTION mpc_reject_change('a consumed presignature cannot change')""",
            """CREATE TRIGGER keys_immutable BEFORE UPDATE OR DELETE ON keys
               FOR EACH ROW EXECUTE FUNCTION mpc_reject_change('stored keys are immutable')""",
        ),
    ),
    # Sealed Paillier pre-parameters (safe-prime pairs) the enclave exported, kept so a restarted
    # enclave need not search again. Rows are only inserted and deleted: handing one back to the
    # enclave deletes it, so a pair is imported at most once.
    _neutral(
        3,
        "sealed pre-parameters",
        """CREATE TABLE preparams (
            id TEXT PRIMARY KEY CHECK (length(id) = 32),
            sealed {blob} NOT NULL,
            created_at {ts} NOT NULL)""",
        "CREATE INDEX preparams_created ON preparams (created_at, id)",
    ),
    # Every session id this node (party) has started, so that none runs twice, whatever restarts:
    # an old session's HMAC'd messages carry no expiry and would otherwise be accepted by a new
    # session of the same id. Rows are only inserted (README "Fresh sessions" says for how long).
    _neutral(
        4,
        "used session ids",
        """CREATE TABLE session_ids (
            session_id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            started_at {ts} NOT NULL)""",
    ),
    # Key lifecycle (README "Keys: lookup and retirement"): a key is ACTIVE or RETIRED, keeps the
    # names of its parties and the key it was refreshed or reshared from. Existing rows become
    # ACTIVE with their data; their names are unknown ('[]', ''). The immutability guard of step 2
    # is narrowed to exactly two changes: retirement (the share erased, the time set) and an
    # operator's explicit revival from a backup (a share back, the time cleared). A key's identity
    # never changes and a key row is never deleted.
    Migration(
        5,
        "key state, lineage and party names",
        sqlite=(
            *(f"ALTER TABLE keys ADD COLUMN {c}" for c in _KEY_LIFECYCLE_COLUMNS["sqlite"]),
            "DROP TRIGGER keys_immutable",
            f"""CREATE TRIGGER keys_immutable BEFORE UPDATE ON keys
               WHEN {_KEY_CHANGE_REFUSED["sqlite"]}
               BEGIN SELECT RAISE(ABORT, '{_KEY_CHANGE_MESSAGE}'); END""",
            "CREATE INDEX keys_predecessor ON keys (predecessor_key_id)",
        ),
        postgresql=(
            *(f"ALTER TABLE keys ADD COLUMN {c}" for c in _KEY_LIFECYCLE_COLUMNS["postgresql"]),
            "DROP TRIGGER keys_immutable ON keys",
            f"""CREATE FUNCTION mpc_keys_lifecycle() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN
                 IF TG_OP = 'DELETE' THEN RAISE EXCEPTION 'stored keys are immutable and never deleted'; END IF;
                 IF {_KEY_CHANGE_REFUSED["postgresql"]} THEN RAISE EXCEPTION '{_KEY_CHANGE_MESSAGE}'; END IF;
                 RETURN NEW;
               END $$""",
            """CREATE TRIGGER keys_immutable BEFORE UPDATE OR DELETE ON keys
               FOR EACH ROW EXECUTE FUNCTION mpc_keys_lifecycle()""",
            "CREATE INDEX keys_predecessor ON keys (predecessor_key_id)",
        ),
    ),
)

LATEST_VERSION: int = MIGRATIONS[-1].version

assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1)), "migrations must be numbered 1..n"


def pending(current: int) -> list[Migration]:
    """The steps a database at schema version `current` lacks, in order; SchemaTooNew if a newer
    release migrated it."""
    if current > LATEST_VERSION:
        raise SchemaTooNew(current, LATEST_VERSION)
    return [m for m in MIGRATIONS if m.version > current]
