"""A node's log lines hold peers' words (error details, addresses): each stays one line, its
message one quoted field, and nothing in it acts on the terminal showing the log."""

from __future__ import annotations

import logging
import re

from samizdat.server.commands import _Formatter

WORDS = 'refused"\nts=2026-01-01 level=error logger=x msg="forged\r\x1b[2K\x1b]0;t\x07\u202e\\'


def test_a_peers_words_cannot_forge_a_log_line_or_field() -> None:
    record = logging.LogRecord("samizdat.server.replication", logging.WARNING, __file__, 1,
                               "pull from %s failed: %s", ("peer", WORDS), None)  # fmt: skip
    line = _Formatter().format(record)
    assert "\n" not in line and "\r" not in line
    assert not re.search("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", line), ascii(line)
    # One msg field, quoted to the end: every quote inside it is escaped.
    fields = re.fullmatch(r'ts=\S+ level=warning logger=\S+ msg="((?:[^"\\]|\\.)*)"', line)
    assert fields is not None, line
    assert r"\"\nts=2026-01-01 level=error" in fields.group(1)
    assert fields.group(1).endswith(r"\x1b[2K\x1b]0;t\x07\u202e\\")
