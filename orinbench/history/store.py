"""The run history: a local SQLite file that every measuring command appends its result to.

One row per run, holding the fields people filter by (device, model, precision, backend, command),
the flattened metrics of :meth:`Result.metrics` as JSON, and the result itself without its raw
samples and power trace (those stay in the result file; a history row is a few kilobytes).

Where it lives: ``--history PATH``; else ``$ORINBENCH_HISTORY``; else
``$XDG_DATA_HOME/orinbench/history.db`` (``~/.local/share/orinbench/history.db``).
``ORINBENCH_HISTORY=off`` turns the implicit appends of bench/demo/run/gate off.

Failure policy:

* An explicit history command (``orinbench history``, ``report --trend``) that finds the database
  locked or corrupt fails with one line and exit code 2.
* The implicit append after a finished benchmark never fails that benchmark: a locked or unwritable
  database gives a warning line instead (:func:`append_to_history`), because throwing away a
  ten-minute measurement over a bookkeeping file helps nobody.
* A file that is not SQLite at all (a result, a model, notes: its first 16 bytes are not the
  SQLite header) is refused with exit code 2 and left untouched (:func:`check_history_file`); it
  was never a database, so it is neither "recovered" nor moved.
* A corrupt database is never deleted: it is moved aside to ``history.db.corrupt-<UTC>``, every row
  that can still be read is copied into a fresh ``history.db``, and the message says how many.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from .._io import finite_or_null
from ..errors import HistoryError
from ..results.schema import Result

#: the layout version of the database; a newer one is refused
HISTORY_FORMAT_VERSION = 1
#: marker stored in the meta table, so that a foreign SQLite file is never written to
HISTORY_FORMAT = "orinbench-history"
#: how long to wait for another writer before calling the database locked (seconds)
DEFAULT_LOCK_TIMEOUT_S = 5.0
#: environment variable naming the database, or "off" to disable implicit appends
ENV_VAR = "ORINBENCH_HISTORY"
_OFF = ("off", "none", "0", "false", "no")
#: the first 16 bytes of every SQLite 3 database file (an empty file is a new database)
SQLITE_HEADER = b"SQLite format 3\x00"

_COLUMNS = (
    "id",
    "recorded_utc",
    "created_utc",
    "command",
    "device",
    "model",
    "model_sha256",
    "precision",
    "backend",
    "host",
    "tool_version",
    "source_path",
    "metrics",
    "result",
    "result_sha256",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orinbench_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recorded_utc TEXT NOT NULL,
    created_utc TEXT NOT NULL,
    command TEXT NOT NULL,
    device TEXT NOT NULL,
    model TEXT NOT NULL,
    model_sha256 TEXT NOT NULL,
    precision TEXT NOT NULL,
    backend TEXT NOT NULL,
    host TEXT NOT NULL,
    tool_version TEXT NOT NULL,
    source_path TEXT,
    metrics TEXT NOT NULL,
    result TEXT NOT NULL,
    result_sha256 TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_key ON runs (device, model, precision);
CREATE INDEX IF NOT EXISTS runs_by_result ON runs (result_sha256);
"""


class HistoryRecoveredError(HistoryError):
    """The database was corrupt; it was moved aside and its readable runs copied to a new one."""

    def __init__(self, path: Path, *, backup: Path, recovered: int) -> None:
        self.path = path
        self.backup = backup
        self.recovered = recovered
        super().__init__(
            f"history database {path} was corrupt",
            why=f"moved it to {backup} and recovered {recovered} run(s) from it into a new {path}",
            fix="run the command again; the file kept aside can be examined with "
            f"'sqlite3 {backup} .recover'",
        )


@dataclass(frozen=True)
class HistoryRow:
    """One recorded run. ``metrics`` are the dotted metric names of :meth:`Result.metrics`."""

    run_id: int
    recorded_utc: str
    created_utc: str
    command: str
    device: str
    model: str
    model_sha256: str
    precision: str
    backend: str
    host: str
    tool_version: str
    source_path: str | None
    metrics: Mapping[str, float]
    summary: Mapping[str, Any]
    result_sha256: str = ""

    @property
    def commands(self) -> tuple[str, ...]:
        """Every command that recorded this measurement (``bench`` then ``gate``, say)."""
        return tuple(self.command.split("+"))

    def metric(self, name: str) -> float | None:
        """The value of metric ``name`` in this run, or None if the run lacks it."""
        v = self.metrics.get(name)
        return float(v) if v is not None else None

    def to_dict(self, *, with_summary: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.run_id,
            "recorded_utc": self.recorded_utc,
            "created_utc": self.created_utc,
            "command": self.command,
            "device": self.device,
            "model": self.model,
            "model_sha256": self.model_sha256,
            "precision": self.precision,
            "backend": self.backend,
            "host": self.host,
            "tool_version": self.tool_version,
            "source_path": self.source_path,
            "metrics": dict(self.metrics),
            "result_sha256": self.result_sha256,
        }
        if with_summary:
            d["result"] = dict(self.summary)
        return d


def default_history_path() -> Path:
    """``$ORINBENCH_HISTORY`` if set to a path, else ``$XDG_DATA_HOME/orinbench/history.db``.

    ``XDG_DATA_HOME`` defaults to ``~/.local/share`` (the XDG base directory specification).
    """
    env = os.environ.get(ENV_VAR, "").strip()
    if env and env.lower() not in _OFF:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME", "").strip()
    # the spec says a relative XDG_DATA_HOME is invalid and must be ignored
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "orinbench" / "history.db"


def check_history_file(path: str | os.PathLike[str], *, flag: str = "--history") -> None:
    """Refuse an existing file that is not SQLite: it is never moved aside or written.

    Only the header is read. A missing or empty file is a new database; a folder or a special
    file is left to :meth:`HistoryStore.open`, which refuses it with its own message; an
    unreadable file is left to SQLite's own error. ``flag`` names where the path came from.
    """
    p = Path(path).expanduser()
    try:
        if not p.is_file():
            return
        with open(p, "rb") as fh:
            head = fh.read(len(SQLITE_HEADER))
    except OSError:
        return
    if head and head != SQLITE_HEADER:
        fix = "pass another --history path"
        if flag != "--history":
            fix = f"point {flag} at another path, or pass --history"
        raise HistoryError(
            f"{p} is not an orinbench history database (not SQLite)",
            why="it was left untouched",
            fix=fix,
        )


def history_disabled() -> bool:
    """True when ``$ORINBENCH_HISTORY`` is ``off`` (implicit appends are skipped)."""
    return os.environ.get(ENV_VAR, "").strip().lower() in _OFF and ENV_VAR in os.environ


def device_label(result: Result) -> str:
    """The device a run was made on: the Jetson module name, else the CPU, else the host."""
    dev = result.environment.device or {}
    for key in ("module", "model", "name"):
        v = dev.get(key)
        if isinstance(v, str) and v.strip():
            return v.strip()
    return result.environment.cpu or result.environment.host or "unknown"


def model_label(result: Result) -> str:
    """The model's name, else the stem of its file name."""
    if result.model.name:
        return result.model.name
    return Path(result.model.path).stem if result.model.path else "unknown"


def _summary_of(result: Result) -> dict[str, Any]:
    """The result without its bulky raw series (samples, power trace)."""
    d = result.to_dict()
    d["samples"] = {}
    power = d.get("power")
    if isinstance(power, dict):
        power = dict(power)
        power.pop("trace", None)
        power.pop("rails_trace", None)
        d["power"] = power
    return d


def result_digest(result: Result) -> str:
    """SHA-256 of the result's canonical JSON (sorted keys), raw samples included."""
    text = json.dumps(result.to_dict(), sort_keys=True, allow_nan=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _is_locked(exc: sqlite3.Error) -> bool:
    msg = str(exc).lower()
    return "locked" in msg or "busy" in msg


def _is_corrupt(exc: sqlite3.Error) -> bool:
    if isinstance(exc, sqlite3.OperationalError):
        return False
    msg = str(exc).lower()
    return "not a database" in msg or "malformed" in msg or "corrupt" in msg or "encrypted" in msg


class HistoryStore:
    """The history database, opened for the span of a ``with`` block.

    ``HistoryStore(path)`` with ``path=None`` uses :func:`default_history_path`; ``timeout_s=None``
    waits :data:`DEFAULT_LOCK_TIMEOUT_S` for a lock. Opening checks the file (``PRAGMA
    quick_check``); a corrupt one is moved aside, its readable rows are copied to a new database,
    and :class:`HistoryRecoveredError` is raised (the next open works). A database another process
    holds locked for longer than ``timeout_s`` raises :class:`HistoryError`. A file that is not
    SQLite, a SQLite file that is not an orinbench history, or one of a newer format, is refused
    and left untouched.
    """

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, timeout_s: float | None = None
    ) -> None:
        self.path = Path(path).expanduser() if path is not None else default_history_path()
        self.timeout_s = DEFAULT_LOCK_TIMEOUT_S if timeout_s is None else timeout_s
        self._conn: sqlite3.Connection | None = None

    # ------------------------------------------------------------------ opening and closing

    def __enter__(self) -> HistoryStore:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> None:
        if self._conn is not None:
            return
        if self.path.exists() and not self.path.is_file():
            raise HistoryError(
                f"history path {self.path} is not a file",
                fix="pass --history with a file name such as history.db",
            )
        check_history_file(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HistoryError(
                f"cannot create the folder of history database {self.path}",
                why=exc.strerror or str(exc),
                fix="pass --history with a writable path",
            ) from exc
        try:
            conn = self._connect(self.path)
        except sqlite3.Error as exc:
            raise self._open_error(exc) from exc
        try:
            self._check_and_init(conn)
        except sqlite3.Error as exc:
            conn.close()
            if _is_corrupt(exc):
                raise self._recover() from exc
            raise self._open_error(exc) from exc
        except _Corrupt as exc:
            conn.close()
            raise self._recover() from exc
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connect(self, path: Path) -> sqlite3.Connection:
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE for writes), so a
        # writer takes the lock up front instead of failing half-way through
        return sqlite3.connect(str(path), timeout=self.timeout_s, isolation_level=None)

    def _open_error(self, exc: sqlite3.Error) -> HistoryError:
        if _is_locked(exc):
            return HistoryError(
                f"history database {self.path} is locked",
                why=f"another process kept it locked for more than {self.timeout_s:g} s",
                fix="wait for the other orinbench (or sqlite3 client) to finish, "
                "or pass --history OTHER.db",
            )
        return HistoryError(
            f"cannot use history database {self.path}",
            why=str(exc),
            fix="check the file's permissions, or pass --history with a writable path",
        )

    def _check_and_init(self, conn: sqlite3.Connection) -> None:
        rows = conn.execute("PRAGMA quick_check").fetchall()
        if [r[0] for r in rows] != ["ok"]:
            raise _Corrupt("; ".join(str(r[0]) for r in rows[:3]))
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        user_tables = {t for t in tables if not t.startswith("sqlite_")}
        if user_tables and "orinbench_meta" not in user_tables:
            raise HistoryError(
                f"{self.path} is an SQLite database but not an orinbench history",
                why=f"it holds the tables {', '.join(sorted(user_tables))}",
                fix="pass --history with another file name; orinbench will not write into it",
            )
        if "orinbench_meta" in user_tables:
            meta = dict(conn.execute("SELECT key, value FROM orinbench_meta").fetchall())
            if meta.get("format") != HISTORY_FORMAT:
                raise HistoryError(
                    f"{self.path} is not an orinbench history database",
                    why="its meta table lacks the orinbench marker",
                    fix="pass --history with another file name",
                )
            raw_version = str(meta.get("version", "0") or "0")
            version = int(raw_version) if raw_version.isdigit() else HISTORY_FORMAT_VERSION + 1
            if version > HISTORY_FORMAT_VERSION:
                raise HistoryError(
                    f"history database {self.path} has format v{version}, newer than this "
                    f"orinbench understands (v{HISTORY_FORMAT_VERSION})",
                    fix="upgrade orinbench, or pass --history with another file",
                )
            return
        conn.execute("BEGIN IMMEDIATE")
        # executescript would COMMIT first; run the statements one by one inside the transaction
        for stmt in _SCHEMA.split(";"):
            if stmt.strip():
                conn.execute(stmt)
        conn.execute(
            "INSERT OR REPLACE INTO orinbench_meta (key, value) "
            "VALUES ('format', ?), ('version', ?)",
            (HISTORY_FORMAT, str(HISTORY_FORMAT_VERSION)),
        )
        conn.execute("COMMIT")

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("HistoryStore is not open; use it in a 'with' block")
        return self._conn

    # ------------------------------------------------------------------ writing and reading

    def append(
        self, result: Result, *, command: str, source_path: str | os.PathLike[str] | None = None
    ) -> int:
        """Record ``result`` as a run of ``command``; returns its run id.

        A measurement is recorded once: when the same result comes back (``bench`` wrote it,
        ``gate`` judged the file later), its row gains the command (``bench+gate``) instead of a
        second row, so trends and step changes count each measurement once. Results are matched
        by the SHA-256 of their canonical JSON, raw samples included.
        """
        if "+" in command or not command:
            raise HistoryError(f"invalid command name {command!r}", fix="use a plain command name")
        digest = result_digest(result)
        metrics = {k: v for k, v in result.metrics().items() if math.isfinite(v)}
        row = (
            _utc_now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            result.created_utc,
            command,
            device_label(result),
            model_label(result),
            result.model.sha256,
            result.config.precision,
            result.environment.backend,
            result.environment.host,
            result.tool_version,
            str(source_path) if source_path is not None else None,
            json.dumps(metrics, allow_nan=False),
            # NaN has no JSON form: an unknown number is stored as null, as in result files
            json.dumps(finite_or_null(_summary_of(result)), allow_nan=False, default=str),
            digest,
        )
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                found = self.conn.execute(
                    "SELECT id, command FROM runs WHERE result_sha256 = ? ORDER BY id LIMIT 1",
                    (digest,),
                ).fetchone()
                if found is not None:
                    run_id, seen = int(found[0]), str(found[1]).split("+")
                    if command not in seen:
                        self.conn.execute(
                            "UPDATE runs SET command = ? WHERE id = ?",
                            ("+".join([*seen, command]), run_id),
                        )
                    self.conn.execute("COMMIT")
                    return run_id
                cur = self.conn.execute(
                    f"INSERT INTO runs ({', '.join(_COLUMNS[1:])}) "
                    f"VALUES ({', '.join('?' * (len(_COLUMNS) - 1))})",
                    row,
                )
                self.conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._open_error(exc) from exc
        return int(cur.lastrowid or 0)

    def query(
        self,
        *,
        device: str | None = None,
        model: str | None = None,
        precision: str | None = None,
        backend: str | None = None,
        command: str | None = None,
        limit: int | None = None,
    ) -> list[HistoryRow]:
        """Runs matching every filter given, oldest first; ``limit`` keeps the most recent ones.

        ``device`` and ``model`` match case-insensitive substrings ("agx" finds "Jetson AGX
        Orin"); ``precision``, ``backend`` and ``command`` match whole values, case-insensitive.
        """
        where: list[str] = []
        params: list[Any] = []
        for col, value in (("device", device), ("model", model)):
            if value:
                where.append(f"{col} LIKE ? ESCAPE '\\'")
                params.append("%" + _like_escape(value) + "%")
        for col, value in (("precision", precision), ("backend", backend)):
            if value:
                where.append(f"lower({col}) = lower(?)")
                params.append(value)
        if command:
            # command holds every command that recorded the run, joined by '+'
            where.append("('+' || lower(command) || '+') LIKE ? ESCAPE '\\'")
            params.append("%+" + _like_escape(command.lower()) + "+%")
        sql = f"SELECT {', '.join(_COLUMNS)} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        if limit is not None:
            if limit < 1:
                raise HistoryError(
                    f"limit {limit} is not a positive number", fix="pass --limit 1 or more"
                )
            sql += " LIMIT ?"
            params.append(limit)
        try:
            raw = self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            if _is_corrupt(exc):
                self.close()
                raise self._recover() from exc
            raise self._open_error(exc) from exc
        return [_row(r) for r in reversed(raw)]

    def get(self, run_id: int) -> HistoryRow:
        """The run with id ``run_id``; HistoryError if there is none."""
        r = self.conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM runs WHERE id = ?", (run_id,))
        got = r.fetchone()
        if got is None:
            raise HistoryError(
                f"no run with id {run_id} in {self.path}",
                fix="list the runs with 'orinbench history'",
            )
        return _row(got)

    def count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM runs").fetchone()[0])

    # ------------------------------------------------------------------ recovery

    def _recover(self) -> HistoryError:
        """Move the corrupt file aside, copy what can be read into a new database."""
        stamp = _utc_now().strftime("%Y%m%dT%H%M%SZ")
        backup = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while backup.exists():
            backup = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
            n += 1
        try:
            os.replace(self.path, backup)
            for suffix in ("-journal", "-wal", "-shm"):
                side = self.path.with_name(self.path.name + suffix)
                if side.exists():
                    os.replace(side, backup.with_name(backup.name + suffix))
        except OSError as exc:
            return HistoryError(
                f"history database {self.path} is corrupt and could not be moved aside",
                why=exc.strerror or str(exc),
                fix="move it away by hand (it is kept as is) or pass --history OTHER.db",
            )
        rows = list(salvage_rows(backup))
        try:
            conn = self._connect(self.path)
            try:
                self._check_and_init(conn)
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(
                    f"INSERT OR IGNORE INTO runs ({', '.join(_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(_COLUMNS))})",
                    rows,
                )
                conn.execute("COMMIT")
                recovered = int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
            finally:
                conn.close()
        except (sqlite3.Error, _Corrupt) as exc:
            return HistoryError(
                f"history database {self.path} was corrupt and was moved to {backup}, but a new "
                "one could not be written",
                why=str(exc),
                fix=f"check the folder's permissions; the old runs are kept in {backup}",
            )
        return HistoryRecoveredError(self.path, backup=backup, recovered=recovered)


class _Corrupt(Exception):
    """PRAGMA quick_check found damage (internal signal)."""


def _like_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _row(r: Sequence[Any]) -> HistoryRow:
    metrics = json.loads(r[12]) if r[12] else {}
    summary = json.loads(r[13]) if r[13] else {}
    return HistoryRow(
        run_id=int(r[0]),
        recorded_utc=str(r[1]),
        created_utc=str(r[2]),
        command=str(r[3]),
        device=str(r[4]),
        model=str(r[5]),
        model_sha256=str(r[6]),
        precision=str(r[7]),
        backend=str(r[8]),
        host=str(r[9]),
        tool_version=str(r[10]),
        source_path=None if r[11] is None else str(r[11]),
        metrics={str(k): float(v) for k, v in metrics.items()},
        summary=summary,
        result_sha256=str(r[14]) if len(r) > 14 and r[14] is not None else "",
    )


def _valid(r: Sequence[Any]) -> bool:
    """A salvaged row is kept only if it would load: right types, JSON that parses."""
    if len(r) != len(_COLUMNS) or not isinstance(r[0], int):
        return False
    if not all(isinstance(v, str) for i, v in enumerate(r[1:], 1) if i != 11):
        return False
    try:
        _row(r)
    except (ValueError, TypeError, AttributeError):
        return False
    return True


#: salvage gives up after this many consecutive unreadable stretches
_SALVAGE_MAX_SKIPS = 48


def salvage_rows(path: Path) -> Iterator[tuple[Any, ...]]:
    """Every run row that can still be read from a damaged history file, in id order.

    Reads by ascending id; where a read fails (a damaged page), it jumps ahead by a growing stride
    and carries on, so rows behind one bad page are still found. Rows that fail to decode are
    dropped. Nothing is written to ``path`` (opened read-only and immutable).
    """
    uri = f"file:{path.resolve()}?mode=ro&immutable=1"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
    except sqlite3.Error:
        return
    try:
        last = -1
        stride = 1
        skips = 0
        cols = ", ".join(_COLUMNS)
        while skips < _SALVAGE_MAX_SKIPS:
            try:
                cur = conn.execute(f"SELECT {cols} FROM runs WHERE id > ? ORDER BY id", (last,))
                for r in cur:
                    rid = int(r[0])
                    if rid <= last:
                        continue  # a damaged b-tree can hand a row over twice
                    last = rid
                    stride = 1
                    if _valid(r):
                        yield tuple(r)
                return
            except (sqlite3.Error, ValueError, TypeError):
                skips += 1
                last += stride
                stride *= 2
    finally:
        conn.close()


def append_to_history(
    result: Result,
    *,
    command: str,
    path: str | os.PathLike[str] | None = None,
    source_path: str | os.PathLike[str] | None = None,
    timeout_s: float | None = None,
) -> str | None:
    """Append ``result`` to the history after a finished command; never raises a HistoryError.

    Returns None when the run was recorded (or history is off through ``ORINBENCH_HISTORY=off``
    with no explicit ``path``), else a one-line note for the caller to print as a warning: the
    database was locked or unwritable (the run was not recorded), or it was corrupt (moved aside,
    its runs recovered, and this run recorded in the new file).
    """
    if path is None and history_disabled():
        return None
    store = HistoryStore(path, timeout_s=timeout_s)
    try:
        try:
            with store:
                store.append(result, command=command, source_path=source_path)
            return None
        except HistoryRecoveredError as rec:
            with store:  # the recovered database is sound: record this run there too
                run_id = store.append(result, command=command, source_path=source_path)
            return (
                f"history database {rec.path} was corrupt: moved it to {rec.backup}, recovered "
                f"{rec.recovered} run(s) from it into a new {rec.path}, and recorded this run "
                f"there as run {run_id}"
            )
    except (HistoryError, sqlite3.Error, OSError) as exc:
        # a bookkeeping failure must never turn a finished benchmark into a failed command
        return f"{exc} This run was not recorded in the history."
