"""The JSON schemas in docs/ and a parser that validates a command's `--json` output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

DOCS = Path(__file__).parents[1] / "docs"


def schema(name: str) -> dict[str, Any]:
    """docs/NAME.schema.json, parsed."""
    return json.loads((DOCS / f"{name}.schema.json").read_text())  # type: ignore[no-any-return]


def json_lines(text: str, name: str) -> list[dict[str, Any]]:
    """Every line of `text` parsed and validated against docs/NAME.schema.json."""
    docs = [json.loads(line) for line in text.splitlines()]
    for doc in docs:
        jsonschema.validate(doc, schema(name))
    return docs


def json_object(text: str, name: str) -> dict[str, Any]:
    """The one object of `text`, validated against docs/NAME.schema.json."""
    (doc,) = json_lines(text, name)
    return doc
