"""`samizdat-node`, the entry point: Ctrl-C arranged first (samizdat.core.interrupt), then the
commands (samizdat.server.commands) imported and run.

Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error, 130 interrupted.
"""

from samizdat.core import interrupt


def main() -> None:
    """Run `samizdat-node`. From its first line, Ctrl-C at any moment ends it with exit code
    130 and `error: interrupted` (`serve` takes SIGINT itself: it stops cleanly)."""
    interrupt.install()
    interrupt.run(_run)


def _run() -> int:
    from samizdat.server import commands

    with interrupt.unwinding():
        return commands.run()


if __name__ == "__main__":
    main()
