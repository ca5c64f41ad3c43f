"""`--json` for every command, in one place: how the option is declared, how results are
written (one JSON object per line on stdout) and how errors and warnings are written (JSON
lines on stderr) once it is given. Formats and schemas: docs/json.md, docs/*.schema.json.

A command adopts it with `@jsonout.option("NAME")` (its schema is docs/NAME.schema.json)
and, when `as_json` is true, writes its result with `emit` (one object) or `emit_lines` (a
stream, e.g. a listing). Messages on stderr need nothing: `terminal.error` and the CLI's
error handling switch to `warning` and `error` below by themselves.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import click

SCHEMA_VERSION = 1
F = TypeVar("F", bound=Callable[..., Any])

_requested = False


def _remember(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    global _requested
    _requested = _requested or bool(value)
    return value


def option(schema: str) -> Callable[[F], F]:
    """The `--json` flag (parameter `as_json`), processed before the command's other
    options so that their errors are reported as JSON too."""
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        is_eager=True,
        callback=_remember,
        help=f"Print JSON on stdout (schema: docs/{schema}.schema.json) and errors as JSON "
        "lines on stderr",
    )


def requested(argv: Sequence[str] | None = None) -> bool:
    """Was `--json` given? Also true when the command line did not parse but held it."""
    args = sys.argv[1:] if argv is None else argv
    before_dashes = args[: args.index("--")] if "--" in args else args
    return _requested or "--json" in before_dashes


def document(schema: str, **fields: Any) -> dict[str, Any]:
    """A result object: `schema` ("samizdat.NAME") and `schema_version` first."""
    return {"schema": f"samizdat.{schema}", "schema_version": SCHEMA_VERSION, **fields}


def _escape(c: str) -> str:
    code = ord(c)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def dumps(doc: Mapping[str, Any]) -> str:
    """`doc` as one line of JSON: UTF-8 text as is, but every character that is not printable
    (DEL, C1 controls, bidi overrides, lone surrogates; JSON escapes C0 itself) as a `\\uXXXX`
    escape. The data stay exact, and the line cannot act on a terminal it is shown on."""
    text = json.dumps(doc, ensure_ascii=False)
    if text.isprintable():
        return text
    # Outside strings JSON is printable ASCII: every character caught here is inside one.
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _write(stream: Any, doc: Mapping[str, Any]) -> None:
    stream.write(dumps(doc) + "\n")
    stream.flush()


def emit(doc: Mapping[str, Any]) -> None:
    """Write one result object on one line of stdout."""
    _write(sys.stdout, doc)


def emit_lines(docs: Iterable[Mapping[str, Any]]) -> None:
    """Write a stream of objects, one per line (JSON lines), as they come."""
    for doc in docs:
        _write(sys.stdout, doc)


def warning(message: str) -> None:
    """Something went wrong but the command goes on (a source dropped, a node skipped)."""
    _write(sys.stderr, {"type": "warning", "message": message})


def error(message: str, kind: str, exit_code: int, reason: str = "") -> None:
    """The command failed: the last line on stderr before it exits with `exit_code`;
    `reason` (if any) is the error's stable reason code (docs/json.md)."""
    doc: dict[str, object] = {"type": "error", "kind": kind, "message": message}
    if reason:
        doc["reason"] = reason
    doc["exit_code"] = int(exit_code)
    _write(sys.stderr, doc)
