"""All terminal output of the CLI: progress bars (only on a terminal), tables, errors.

Text that others choose reaches the terminal through here: node ids, jurisdictions and error
messages a node sends, custody names and revocation reasons, file names inside a snapshot.
Every function below that prints (`say`, `out`, `print_table`, `error`, `error_lines`,
`warning`, `fail`) passes every string it is given through `clean`, the one sanitizer: a
character that is not printable (C0 and C1 controls such as ESC, DEL, newline, bidi
overrides U+202A-202E and U+2066-2069, other format characters) is shown as its escape
(`\x1b`, `\u202e`), so it can neither move the cursor, recolour or hide text, set the window
title, nor start a line of its own. Rich markup is never read from strings: styles come only
from `Styled` parts, which the CLI's own code writes. Under --json, messages go to
samizdat.client.jsonout unchanged (exact data; JSON escapes them).
"""

from __future__ import annotations

import datetime
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NoReturn

import click
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
from rich.text import Text

from samizdat.client import jsonout
from samizdat.core.printable import printable

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


def clean(text: str) -> str:
    """`text` safe for a terminal: every character that is not printable written as its
    escape (samizdat.core.printable). What every printing function here applies."""
    return printable(text)


@dataclass(frozen=True)
class Styled:
    """Words in a rich style (`"red"`, `"bold"`): how the CLI's own code colours a part of a
    line (the words are cleaned too; markup in them is shown, never read)."""

    text: str
    style: str


Part = str | Styled
Line = Part | Sequence[Part]  # a line or a table cell: its parts one after the other


def _parts(line: Line) -> Sequence[Part]:
    return (line,) if isinstance(line, str | Styled) else line


def rich_text(line: Line) -> Text:
    """`line` as a rich Text: each part cleaned, styled only by `Styled`, no markup read."""
    text = Text()
    for part in _parts(line):
        if isinstance(part, Styled):
            text.append(clean(part.text), style=part.style)
        else:
            text.append(clean(part))
    return text


def plain(line: Line) -> str:
    """`line` as plain text (styles dropped), each part cleaned."""
    return "".join(clean(p.text if isinstance(p, Styled) else p) for p in _parts(line))


# Rich lays a table out in O(rows x columns) Python work: 6,000 rows took 17 s. Longer
# tables are printed as plain aligned columns.
RICH_TABLE_ROWS = 500


def print_table(title: str | None, columns: list[str], rows: Sequence[Sequence[Line]]) -> None:
    """A table on stdout; every cell cleaned, styled only by its `Styled` parts."""
    if len(rows) > RICH_TABLE_ROWS:
        cells = [[plain(c) for c in r] for r in [columns, *rows]]
        widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
        lines = [clean(title)] if title else []
        for r in cells:
            lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
        sys.stdout.write("\n".join(lines) + "\n")
        return
    table = Table(title=rich_text(title) if title else None, show_edge=False, header_style="bold")
    for c in columns:
        table.add_column(rich_text(c))
    for row in rows:
        table.add_row(*(rich_text(c) for c in row))
    console.print(table)


def say(*parts: Part) -> None:
    """One line on stdout (wrapped on a terminal): the parts one after the other, cleaned."""
    console.print(rich_text(parts), highlight=False, soft_wrap=True)


def out(text: str) -> None:
    """One plain line on stdout (a listing's), cleaned; never wrapped nor styled."""
    click.echo(clean(text))


def error(text: str) -> None:
    """Report a problem the command goes on after (a JSON warning under --json)."""
    if jsonout.requested():
        jsonout.warning(text)
    else:
        print(f"error: {clean(text)}", file=sys.stderr)


def error_lines(lines: Sequence[str]) -> None:
    """Report a problem in several lines (a heading, then one line per item): one JSON
    warning holding them all under --json."""
    if jsonout.requested():
        if lines:
            jsonout.warning("\n".join(lines))
        return
    for i, line in enumerate(lines):
        print(f"error: {clean(line)}" if i == 0 else clean(line), file=sys.stderr)


def fail(text: str, kind: str, exit_code: int, reason: str = "") -> NoReturn:
    """Report why the command stops (a JSON error under --json, with the error's reason code
    if it has one) and exit with `exit_code`."""
    if jsonout.requested():
        jsonout.error(text, kind, exit_code, reason)
    else:
        print(f"error: {clean(text)}", file=sys.stderr)
    sys.exit(exit_code)


def warning(text: str) -> None:
    """On stderr; above the progress bar, if one is drawn (a JSON warning under --json)."""
    if jsonout.requested():
        jsonout.warning(text)
        return
    err_console.print(f"warning: {clean(text)}", markup=False, highlight=False, soft_wrap=True)


class _LogToWarnings(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            warning(record.getMessage())
        except Exception:
            self.handleError(record)


def route_logs() -> None:
    """Show what samizdat's modules log at warning and above (a special file push skips, a
    source restore drops) as `warning` does: cleaned, or JSON warning lines under --json.
    Without it Python's fallback handler printed them raw, as plain lines on stderr."""
    logger = logging.getLogger("samizdat")
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    if not any(isinstance(h, _LogToWarnings) for h in logger.handlers):
        logger.addHandler(_LogToWarnings())


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n} B"


def local_time(ns: int) -> str:
    """A time in nanoseconds since the epoch as local `YYYY-MM-DD HH:MM:SS`."""
    return datetime.datetime.fromtimestamp(ns / 1e9).strftime("%Y-%m-%d %H:%M:%S")
