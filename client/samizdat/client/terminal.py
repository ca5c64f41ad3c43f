"""All terminal output of the CLI: progress bars (only on a terminal), tables, errors."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

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

if TYPE_CHECKING:
    from samizdat.client.health import HealthReport

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


def fail(text: str, kind: str, exit_code: int) -> NoReturn:
    """Report why the command stops (a JSON error under --json) and exit with `exit_code`."""
    if jsonout.requested():
        jsonout.error(text, kind, exit_code)
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


# ------------------------------------------------------------------ `samizdat status`


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _scrub_cell(s: Any) -> str:
    sc = s.scrub
    if not sc.enabled:
        state = "disabled"
    elif sc.pass_started_unix:
        state = f"pass {sc.passes_completed + 1}: {sc.position_fraction:.0%}"
    elif sc.last_pass_completed_unix:
        last = _ago(s.time_unix - sc.last_pass_completed_unix)
        state = f"{sc.passes_completed} passes, last {last}"
    else:
        state = "no pass yet"
    found = ""
    if sc.corrupt_found:
        found = f"; {sc.corrupt_found} corrupt found, {sc.repaired} repaired"
    pending = f", {sc.pending_repair} awaiting repair" if sc.pending_repair else ""
    return state + found + pending


def print_status(report: HealthReport, code: int) -> None:
    """The human form of `samizdat status` (the stable form is --json)."""
    from samizdat.client.health import Severity

    policy = report.policy
    state = {0: "[green]HEALTHY[/]", 1: "[red]DEGRADED[/]"}.get(code, "[red]ERROR[/]")
    console.print(
        f"[bold]samizdat status[/]: {state} - {report.reachable} of {len(report.nodes)} nodes "
        f"reachable, {len(report.snapshots)} snapshot(s); target {policy.replicas} copies in "
        f">= {policy.min_jurisdictions} jurisdictions",
        highlight=False,
    )

    rows = []
    for n in report.nodes:
        s = n.status
        if n.revoked:
            rows.append(
                [
                    n.name,
                    n.jurisdiction or "-",
                    n.node_id[:8] or "-",
                    "-",
                    "[red]revoked[/]",
                    "",
                    "",
                    "",
                ]
            )
            continue
        if s is None:
            rows.append(
                [
                    n.name,
                    n.jurisdiction or "-",
                    n.node_id[:8] or "-",
                    "-",
                    "[red]unreachable[/]",
                    "",
                    "",
                    "",
                ]
            )
            continue
        audit = "-"
        if n.audit is not None:
            a = n.audit
            audit = (
                f"[red]FAILED[/] {len(a.missing)} missing, {len(a.corrupt)} corrupt of {a.sampled}"
                if a.failed
                else f"{a.ok}/{a.sampled} ok"
            )
            if a.error:
                audit = f"[red]FAILED[/] {a.error}"
        rows.append(
            [
                n.name,
                n.jurisdiction or "-",
                s.node_id[:8],
                s.software_version,
                f"{s.chunks_stored} chunks, {human_bytes(s.bytes_stored)}",
                human_bytes(s.disk_free_bytes),
                _scrub_cell(s),
                audit,
            ]
        )
    print_table(
        "Nodes", ["node", "jur", "id", "version", "stored", "free disk", "scrub", "audit"], rows
    )

    names = {(n.status.node_id if n.status else n.node_id): n.name for n in report.nodes}
    rows = []
    for n in report.nodes:
        if n.status is None:
            continue
        for p in n.status.peers:
            peer = names.get(p.node_id, p.node_id[:8])
            if p.revoked:
                rows.append([n.name, peer, "revoked", "", "", ""])
                continue
            last = (
                _ago(n.status.time_unix - p.last_success_unix)
                if p.last_success_unix
                else "[yellow]never[/]"
            )
            bad = f"{p.bad_chunks_received} chunks, {p.bad_records_received} records"
            if p.bad_chunks_received or p.bad_records_received:
                bad = f"[red]{bad}[/]"
            rows.append(
                [
                    n.name,
                    peer,
                    last,
                    f"{p.chunks_pulled} chunks, {human_bytes(p.bytes_pulled)}",
                    bad,
                    _clip(p.last_error or p.last_offence, 60),
                ]
            )
    if rows:
        print_table(
            "Peers",
            ["node", "peer", "last sync", "pulled", "bad data received", "last error"],
            rows,
        )

    rows = []
    for n in report.nodes:
        if n.status is None:
            continue
        for f in n.status.scrub.findings[:5]:
            fate = (
                f"repaired {_ago(n.status.time_unix - f.repaired_unix)}"
                if f.repaired_unix
                else "[red]awaiting repair[/]"
            )
            rows.append(
                [
                    n.name,
                    f.chunk_id.hex()[:16],
                    _ago(n.status.time_unix - f.found_unix),
                    _clip(f.detail, 70),
                    fate,
                ]
            )
    if rows:
        print_table(
            "Corrupt chunks found (latest 5 per node)",
            ["node", "chunk", "found", "what", "state"],
            rows,
        )

    hosts = [n.name for n in report.nodes]
    down = {n.name for n in report.nodes if not n.reachable}
    revoked = {n.name for n in report.nodes if n.revoked}
    rows = []
    for r in report.snapshots:
        held = {h.node: h for h in r.holdings}
        cells = []
        for name in hosts:
            h = held.get(name)
            if name in revoked:
                cells.append("[red]revoked[/]")
            elif name in down:
                cells.append("[red]down[/]")
            elif h is None:
                cells.append("n/a")
            elif h.complete:
                cells.append(f"[green]{h.held}/{h.total}[/]" + (" v" if h.verified_by else ""))
            else:
                cells.append(f"[yellow]{h.held}/{h.total}[/]")
        copies = f"{r.complete_copies}/{policy.replicas}"
        if r.complete_copies < policy.replicas:
            copies = f"[red]{copies}[/]"
        rows.append(
            [
                r.snapshot.id.hex()[:16],
                str(r.snapshot.record.sequence),
                human_bytes(r.bytes_total),
                *cells,
                copies,
                str(r.verified_copies),
                ", ".join(f"{j or '?'}:{c}" for j, c in r.jurisdictions.items()) or "-",
                str(r.below_target),
                str(r.at_risk),
            ]
        )
    if rows:
        print_table(
            "Snapshots (chunks held/total per node; v = verified)",
            [
                "snapshot",
                "seq",
                "size",
                *hosts,
                "copies",
                "verified",
                "jurisdictions",
                "below target",
                "single copy",
            ],
            rows,
        )

    _print_custody(report)

    for finding in report.findings:
        mark = "[red]problem[/]" if finding.severity is Severity.DEGRADED else "[yellow]warning[/]"
        console.print(f"{mark}: {finding.message}", highlight=False, soft_wrap=True)


def _print_custody(report: HealthReport) -> None:
    """Revoked nodes and the writer and reader keys the archive key certified or revoked."""
    rows = [
        [r.name or "-", r.node_id[:16], r.archive_id_hex[:12], "[red]revoked[/]", r.reason]
        for r in report.revoked_nodes
    ]
    if rows:
        print_table("Revoked nodes", ["node", "id", "archive", "state", "reason"], rows)
    rows = []
    for m in report.members:
        state = (
            f"[red]revoked[/] (keeps {m.kept_snapshots} snapshots, up to sequence "
            f"{m.last_sequence})"
            if m.revoked
            else "[green]active[/]"
        )
        rows.append([m.name or "-", m.role or "?", m.key_hex[:16], m.archive_id_hex[:12], state])
    if rows:
        print_table("Writer and reader keys", ["name", "role", "key id", "archive", "state"], rows)
