"""`samizdat`, the entry point: Ctrl-C arranged first (samizdat.core.interrupt), then the
commands (samizdat.client.commands) imported and run.

Exit codes: 0 success (status: healthy); 1 failure; 2 usage, configuration or connection
error; 3 finished, but some files damaged (restore, verify) or not saved (push); 130
interrupted (Ctrl-C, at any moment: `error: interrupted` on stderr, or under --json the JSON
error line of docs/json.md).
"""

import sys

from samizdat.core import interrupt


def main() -> None:
    """Run `samizdat`; never returns. From its first line on, Ctrl-C ends it with exit code
    130 and one line on stderr, whatever it was doing; a running command first unwinds
    (restore removes its partial file, push keeps its caches consistent)."""
    interrupt.install(json_errors=_json_requested(sys.argv[1:]))
    interrupt.run(_run)


def _json_requested(args: list[str]) -> bool:
    """`--json` on the command line (before any `--`): as samizdat.client.jsonout decides."""
    return "--json" in (args[: args.index("--")] if "--" in args else args)


def _run() -> int:
    from samizdat.client import commands  # rich, grpc, click, protobuf: ~0.3 s

    with interrupt.unwinding():
        return commands.run()


if __name__ == "__main__":
    main()
