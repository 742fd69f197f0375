"""Saved threads' bookkeeping: who runs a thread now, and with which models.

A table in the CLI's SQLite file holds, per thread, the lineup of its last run
and the process running it now. A second process that asks for a busy thread
is refused before it writes anything; a holder that died (killed, power cut)
is noticed by its process id and start time, so its thread is free again.
`--resume` with other models than the saved run's is refused by name.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_TABLE = "attention_moa_threads"


class ThreadStoreError(ValueError):
    """The thread database cannot be used; the message says what to do."""


class ThreadBusy(ValueError):
    """Another live process is running the thread."""


class LineupMismatch(ValueError):
    """`--resume` was given other models than the interrupted run's."""


@dataclass(frozen=True)
class LineupRecord:
    """The models a run used: what `--resume` must give again."""

    proposers: tuple[tuple[str, str], ...]
    """(agent name, model spec) per proposer, in order."""
    aggregator: str
    residual: str | None
    base_url: str | None
    options: str = field(default="", compare=False)
    """The command-line options that choose these models (shell-quoted)."""

    def to_json(self) -> str:
        """The record as stored in the thread table."""
        return json.dumps(
            {
                "proposers": [list(p) for p in self.proposers],
                "aggregator": self.aggregator,
                "residual": self.residual,
                "base_url": self.base_url,
                "options": self.options,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> LineupRecord:
        """A record read back from the thread table."""
        data = json.loads(text)
        return cls(
            tuple((name, spec) for name, spec in data["proposers"]),
            data["aggregator"],
            data.get("residual"),
            data.get("base_url"),
            data.get("options", ""),
        )

    def described(self) -> str:
        """The lineup in words, for messages."""
        agents = ", ".join(spec for _, spec in self.proposers)
        return (
            f"proposers {agents} and aggregator {self.aggregator}"
            + (f" (residual {self.residual})" if self.residual else "")
            + (f" at {self.base_url}" if self.base_url else "")
        )


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot ('' where unknown).

    With the pid it names one process: a pid reused after a crash differs.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # Field 22; the command name (field 2) may hold spaces, so split after it.
    return stat.rsplit(")", 1)[1].split()[19]


def _me() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def _alive(holder: str) -> bool:
    host, pid_text, started = holder.rsplit(":", 2)
    if host != socket.gethostname():
        return True  # another machine's process: it cannot be checked from here
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's live process
    return not started or _start_time(pid) in ("", started)


class ThreadStore:
    """The thread table of one SQLite file."""

    def __init__(self, path: Path) -> None:
        """Open `path`, adding the thread table if it has none."""
        self.path = path
        try:
            self._db = sqlite3.connect(path, timeout=10, isolation_level=None)
            self._db.execute(
                f"CREATE TABLE IF NOT EXISTS {_TABLE} (thread_id TEXT PRIMARY KEY, "
                "lineup TEXT, holder TEXT, since REAL)"
            )
        except sqlite3.Error as exc:
            raise store_error(path, exc) from None

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    @contextmanager
    def claim(
        self, thread: str, lineup: LineupRecord, *, resume: bool
    ) -> Iterator[None]:
        """Hold `thread` for this process while the block runs.

        Raises `ThreadBusy` when a live process holds it, and on `resume`
        `LineupMismatch` when the saved run used other models; either way
        nothing is written. The lineup is recorded for the next `--resume`.
        """
        me = _me()
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    f"SELECT lineup, holder, since FROM {_TABLE} WHERE thread_id = ?",
                    (thread,),
                ).fetchone()
                saved, holder, since = row if row else (None, None, None)
                if holder and holder != me and _alive(holder):
                    raise ThreadBusy(_busy_text(thread, holder, since))
                if resume and saved and LineupRecord.from_json(saved) != lineup:
                    raise LineupMismatch(
                        _mismatch_text(thread, LineupRecord.from_json(saved), lineup)
                    )
                self._db.execute(
                    f"INSERT INTO {_TABLE} (thread_id, lineup, holder, since) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (thread_id) DO UPDATE SET "
                    "lineup = excluded.lineup, holder = excluded.holder, "
                    "since = excluded.since",
                    (thread, lineup.to_json(), me, time.time()),
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise store_error(self.path, exc) from None
        try:
            yield
        finally:
            self._release(thread, me)

    def _release(self, thread: str, me: str) -> None:
        """Give the thread up, as far as the database lets us at once.

        Best effort: a run cut short (Ctrl-C during a checkpoint write) can
        leave the checkpointer's connection holding the write lock until this
        process exits. The row then keeps this process's id, which stops
        being alive a moment later, and the thread is free again.
        """
        try:
            self._db.execute("PRAGMA busy_timeout = 1000")
            # A thread that never saved a checkpoint keeps no row: a refused
            # `--resume` of an unknown thread leaves nothing behind.
            has_checkpoints = self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'checkpoints'"
            ).fetchone()
            saved = (
                has_checkpoints
                and self._db.execute(
                    "SELECT 1 FROM checkpoints WHERE thread_id = ? LIMIT 1", (thread,)
                ).fetchone()
            )
            change = (
                f"UPDATE {_TABLE} SET holder = NULL"
                if saved
                else (f"DELETE FROM {_TABLE}")
            )
            self._db.execute(
                f"{change} WHERE thread_id = ? AND holder = ?", (thread, me)
            )
        except sqlite3.Error:
            pass


def store_error(path: Path, exc: sqlite3.Error) -> ThreadStoreError:
    """One line for a thread database that cannot be used, and what to do."""
    text = str(exc)
    if isinstance(exc, sqlite3.DatabaseError) and "not a database" in text:
        why = "it is not an SQLite database (damaged, or another kind of file)"
    elif "readonly" in text:
        why = "it is read-only here"
    elif "locked" in text:
        why = "another process kept it locked for 10 s"
    else:
        why = text
    return ThreadStoreError(
        f"cannot use {path} for saved threads: {why}. Move it aside or give "
        "another file with --db, or --no-db to save nothing."
    )


def _busy_text(thread: str, holder: str, since: Any) -> str:
    host, pid, _ = holder.rsplit(":", 2)
    where = f"process {pid}" + ("" if host == socket.gethostname() else f" on {host}")
    when = time.strftime("%H:%M:%S", time.localtime(since)) if since else "earlier"
    return (
        f"thread {thread} is busy: {where} has been running it since {when}. Wait "
        "for it to finish, or ask in another --thread."
    )


def _mismatch_text(thread: str, saved: LineupRecord, given: LineupRecord) -> str:
    return (
        f"thread {thread} was run with {saved.described()}, but this command gives "
        f"{given.described()}; resuming with other models would mix the two. "
        f"Resume with the saved ones: {resume_command(thread, saved)}"
    )


def resume_command(thread: str, lineup: LineupRecord | None) -> str:
    """The command that finishes `thread`'s interrupted run."""
    command = f"attention-moa ask --resume --thread {shlex.quote(thread)}"
    if lineup is None:
        return f"{command} (and the same model options)"
    return f"{command} {lineup.options}".rstrip()


__all__ = [
    "LineupMismatch",
    "LineupRecord",
    "ThreadBusy",
    "ThreadStore",
    "ThreadStoreError",
]
