"""All terminal output of the CLI: progress bars (only on a terminal), tables, errors."""

from __future__ import annotations

import datetime
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from samizdat.client import jsonout

console = Console()
if not console.is_terminal:  # piped: do not wrap tables at 80 columns
    console = Console(width=160)
err_console = Console(stderr=True)


class Transfer:
    """Progress of a transfer whose size is known only once planned: `total(n)`, then
    `advance(n)` per chunk of bytes. Draws bytes, rate and ETA on a terminal only."""

    def __init__(self, progress: Progress | None, task: TaskID | None) -> None:
        self._progress, self._task = progress, task

    def total(self, nbytes: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, total=nbytes)

    def advance(self, nbytes: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, nbytes)


@contextmanager
def transfer_progress(label: str) -> Iterator[Transfer]:
    if not err_console.is_terminal or jsonout.requested():  # stderr carries JSON lines then
        yield Transfer(None, None)
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        yield Transfer(progress, progress.add_task(label, total=None))


# Rich lays a table out in O(rows x columns) Python work: 6,000 rows took 17 s. Longer
# tables are printed as plain aligned columns.
RICH_TABLE_ROWS = 500


def print_table(title: str | None, columns: list[str], rows: list[list[str]]) -> None:
    if len(rows) > RICH_TABLE_ROWS:
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
        lines = [title] if title else []
        for r in [columns, *rows]:
            lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
        sys.stdout.write("\n".join(lines) + "\n")
        return
    table = Table(title=title, show_edge=False, header_style="bold")
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*r)
    console.print(table)


def say(text: str) -> None:
    console.print(text, highlight=False, soft_wrap=True)


def error(text: str) -> None:
    """Report a problem the command goes on after (a JSON warning under --json)."""
    if jsonout.requested():
        jsonout.warning(text)
    else:
        print(f"error: {text}", file=sys.stderr)


def fail(text: str, kind: str, exit_code: int, reason: str = "") -> NoReturn:
    """Report why the command stops (a JSON error under --json, with the error's reason code
    if it has one) and exit with `exit_code`."""
    if jsonout.requested():
        jsonout.error(text, kind, exit_code, reason)
    else:
        print(f"error: {text}", file=sys.stderr)
    sys.exit(exit_code)


def warning(text: str) -> None:
    """On stderr; above the progress bar, if one is drawn (a JSON warning under --json)."""
    if jsonout.requested():
        jsonout.warning(text)
        return
    err_console.print(f"warning: {text}", markup=False, highlight=False, soft_wrap=True)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n} B"


def local_time(ns: int) -> str:
    """A time in nanoseconds since the epoch as local `YYYY-MM-DD HH:MM:SS`."""
    return datetime.datetime.fromtimestamp(ns / 1e9).strftime("%Y-%m-%d %H:%M:%S")
