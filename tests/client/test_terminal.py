"""Text others choose (file names in a snapshot, a node's words, custody names) reaches the
terminal only through samizdat.client.terminal, which shows control characters and bidi
overrides as escapes and never reads rich markup from data; --json keeps the exact data."""

from __future__ import annotations

import json
import re

import pytest

from samizdat.client import jsonout, terminal

# A title-setting OSC, a cursor-moving CSI, a C1 CSI, DEL, a bidi override and isolate,
# a newline and CR that would start a forged line, and rich markup.
HOSTILE = (
    "\x1b]0;pwned\x07|\x1b[2K\x1b[1A|\x9b31m|\x7f|\u202egnp.exe|\u2066x\u2069|"
    "\nrestored: ok\r|[red]red[/red] [link=https://x.invalid]click[/link]"
)
# What must never reach a terminal raw: C0 but newline (lines are ours), DEL, C1, bidi.
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def assert_shown_literally(text: str) -> None:
    assert not UNSAFE.search(text), ascii(text)
    assert "\\x1b]0;pwned\\x07" in text  # the escape, shown as text
    assert "\\u202egnp.exe" in text
    assert "[red]red[/red]" in text  # markup shown, not interpreted
    assert "\\nrestored: ok\\r" in text  # the forged line stays on the line it came in


@pytest.fixture(autouse=True)
def _no_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonout, "requested", lambda argv=None: False)


def test_clean_escapes_every_control_and_bidi_character() -> None:
    every = "".join(map(chr, [*range(0x20), 0x7F, *range(0x80, 0xA0)]))
    bidi = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    shown = terminal.clean("a" + every + bidi + "é漢")
    assert shown.isprintable() and shown.isascii() is False
    assert shown.startswith("a\\x00\\x01") and shown.endswith("\\u2069é漢")
    assert terminal.clean(shown) == shown  # idempotent: cleaning twice shows the same


def test_say_and_out_show_hostile_text_literally(capsys: pytest.CaptureFixture[str]) -> None:
    terminal.say("file ", HOSTILE, terminal.Styled(" [bold]ours[/bold]", "bold"))
    terminal.out(HOSTILE)
    out = capsys.readouterr().out
    assert out.count("\n") == 2  # one line each
    assert_shown_literally(out)
    assert "[bold]ours[/bold]" in out


@pytest.mark.parametrize("rows", [1, terminal.RICH_TABLE_ROWS + 1], ids=["rich", "plain"])
def test_tables_show_hostile_cells_literally(capsys: pytest.CaptureFixture[str], rows: int) -> None:
    terminal.print_table(
        "title " + HOSTILE,
        ["name", "state"],
        [[HOSTILE, [terminal.Styled("revoked", "red"), " " + HOSTILE]]] * rows,
    )
    out = capsys.readouterr().out
    # A rich table may wrap a long cell: compare with the line breaks it added removed.
    assert_shown_literally(re.sub(r"\s*\n\s*", "", out) if rows == 1 else out)
    assert out.count("\n") >= rows


def test_errors_and_warnings_show_hostile_text_literally(
    capsys: pytest.CaptureFixture[str],
) -> None:
    terminal.error(HOSTILE)
    terminal.warning(HOSTILE)
    terminal.error_lines(["2 file(s) could not be restored:", "  " + HOSTILE, "  " + HOSTILE])
    with pytest.raises(SystemExit) as stopped:
        terminal.fail(HOSTILE, "IntegrityError", 1)
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 6  # no line of the data's own
    assert_shown_literally(err)
    for line in err.splitlines():
        assert line.startswith(("error: ", "warning: ", "  \\x1b]0;pwned")), line


def test_json_output_keeps_the_exact_text_and_escapes_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jsonout, "requested", lambda argv=None: True)
    weird = HOSTILE + "\udcff\U000e0041"  # a lone surrogate (undecodable name), a tag char
    jsonout.emit({"path": weird})
    terminal.error(weird)
    captured = capsys.readouterr()
    for stream in (captured.out, captured.err):
        assert stream.isascii() or not UNSAFE.search(stream)
        assert "\udcff" not in stream and "\U000e0041" not in stream
    assert json.loads(captured.out) == {"path": weird}
    assert json.loads(captured.err) == {"type": "warning", "message": weird}
    assert "[red]red[/red]" in captured.out and "\\u202e" in captured.out
