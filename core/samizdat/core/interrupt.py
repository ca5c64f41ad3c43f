"""Ctrl-C for the command-line entry points (`samizdat`, `samizdat-node`): whenever SIGINT
lands, the process ends with exit code 130 and one line on stderr (`error: interrupted`, or
the JSON error line of docs/json.md under `--json`), never a traceback.

Imports only modules built into the interpreter, so that an entry point can arrange this
before it imports anything else. SIGINT is handled in one of two modes:

- *exit now* (from `install` on, and whenever no command runs: imports, argument parsing
  done by the caller, the report, the interpreter's exit): report and `os._exit(130)` at
  once. Nothing needs cleaning there.
- *unwind* (inside `unwinding()`, around a running command): the first SIGINT raises
  `Interrupted` in the main thread, so that `finally` blocks and `except BaseException`
  cleanups run (restore's partial files, push's caches), then `run` reports it and exits
  130. The handler switches back to *exit now* before raising: a second Ctrl-C during the
  cleanup ends the process at once (what the cleanup left is what a SIGKILL would leave,
  which every writer tolerates).

`run` ends the process with `os._exit` after flushing stdout and stderr, also on success: the
interpreter's own exit (atexit handlers, joining worker threads, finalizers) is where a late
Ctrl-C printed "Exception ignored" tracebacks or hung on a thread stuck in a call.
"""

import os
import signal
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # only for the type checker: nothing beyond built-ins is imported
    from collections.abc import Callable
    from typing import NoReturn

EXIT_CODE = 130  # 128 + SIGINT: what a shell reports for a process SIGINT ended
MESSAGE = "interrupted"


class Interrupted(BaseException):
    """Raised by SIGINT in the main thread while a command runs (`unwinding`).

    Not a KeyboardInterrupt: click turns those into a generic "Aborted" (exit 1) and a blank
    line on stderr. Not an Exception either: `except Exception` never swallows it."""


_json = False


def _report_line(message: str) -> bytes:
    if _json:
        text = message.replace("\\", "\\\\").replace('"', '\\"')
        return (
            f'{{"type": "error", "kind": "Interrupted", "message": "{text}", '
            f'"exit_code": {EXIT_CODE}}}\n'
        ).encode()
    return f"error: {message}\n".encode("utf-8", "backslashreplace")


def exit_interrupted(message: str = MESSAGE) -> "NoReturn":
    """Report the interrupt (`message`: plain text, no control characters) and end the
    process with exit code 130 at once. Never returns."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the report is short: let it finish
    for stream in (sys.stdout, sys.stderr):
        try:  # complete the lines already written (a half-written JSON line, say)
            if stream is not None:
                stream.flush()
        except BaseException:  # noqa: S110 (a reentrant flush, a closed pipe: exit anyway)
            pass
    try:
        os.write(2, _report_line(message))
    except OSError:
        pass
    os._exit(EXIT_CODE)


def _exit_now(signum: int, frame: object) -> None:
    exit_interrupted()


def _unwind(signum: int, frame: object) -> None:
    signal.signal(signal.SIGINT, _exit_now)
    raise Interrupted


def _unraisable(hook_args: "sys.UnraisableHookArgs") -> None:
    """An interrupt raised inside a finalizer (`__del__`, a weakref callback) would be
    printed with a traceback and then ignored: end the process instead."""
    if hook_args.exc_type is not None and issubclass(
        hook_args.exc_type, (Interrupted, KeyboardInterrupt)
    ):
        exit_interrupted()
    sys.__unraisablehook__(hook_args)


def install(json_errors: bool = False) -> None:
    """From now on, SIGINT ends the process with exit code 130 and the report (a JSON error
    line if `json_errors`). Call first thing in an entry point's `main`."""
    global _json
    _json = json_errors
    signal.signal(signal.SIGINT, _exit_now)
    sys.unraisablehook = _unraisable


class unwinding:  # noqa: N801 (used as a context manager, like contextlib's)
    """`with unwinding():` SIGINT raises `Interrupted` in the main thread (once; a second one
    exits at once); outside, SIGINT exits at once."""

    def __enter__(self) -> None:
        signal.signal(signal.SIGINT, _unwind)

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, _exit_now)


def run(command: "Callable[[], int | None]") -> "NoReturn":
    """Call `command()` (which returns an exit code or None, or raises SystemExit) and end
    the process with its exit code, or with 130 if it was interrupted. Never returns."""
    try:
        code: object = command()
    except SystemExit as e:
        code = e.code
    except (Interrupted, KeyboardInterrupt):
        exit_interrupted()
    finish(code)


def finish(code: object) -> "NoReturn":
    """Flush stdout and stderr and end the process with `code` (SystemExit's conventions:
    None is 0, a string is printed and is 1), without the interpreter's exit. Never
    returns."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code & 0xFF
    else:
        try:
            os.write(2, f"{code}\n".encode("utf-8", "backslashreplace"))
        except OSError:
            pass
        status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except OSError:  # a closed pipe (`| head`): what was written stays written
            pass
    os._exit(status)
