"""The commands of `samizdat`, the custodian's and restorer's command line (the entry point,
with its Ctrl-C handling, is samizdat.client.cli).

This module only assembles the command group and maps errors to exit codes; each command
group lives in its own module (push_cmd, restore_cmd, status_cmd, key_cmd, custody_cmd) and
the options they share in `options`.

Exit codes: 0 success (status: healthy); 1 failure (status: degraded; integrity or missing
data); 2 usage, configuration or connection error; 3 (restore, verify) finished, but some
files are damaged and listed, or (push) snapshot stored, but some files or directories could
not be read and are not in it; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import click

from samizdat.client import custody_cmd, jsonout, terminal
from samizdat.client.key_cmd import key
from samizdat.client.options import EPILOG
from samizdat.client.push_cmd import push
from samizdat.client.restore_cmd import ls, restore, verify
from samizdat.client.status_cmd import snapshots, status
from samizdat.core.errors import ExitCode, SamizdatError, UsageError


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EPILOG)
@click.version_option(package_name="samizdat", prog_name="samizdat")
def cli() -> None:
    """samizdat: replicated, end-to-end encrypted, verifiable archives."""


for _command in (key, custody_cmd.node_group, push, snapshots, ls, restore, verify, status):
    cli.add_command(_command)


def run() -> int:
    """Run the command of the command line; return its exit code, or that of the error that
    stopped it (its class decides, samizdat.core.errors), reported on stderr (as JSON under
    --json). An interrupt is left to the entry point (samizdat.client.cli)."""
    terminal.route_logs()
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.exceptions.Abort:
        terminal.fail("aborted", "Aborted", ExitCode.FAILURE)
    except click.ClickException as e:
        if not jsonout.requested():
            e.show()
            return UsageError.exit_code
        terminal.fail(e.format_message(), "UsageError", UsageError.exit_code, UsageError.reason)
    except SamizdatError as e:
        terminal.fail(str(e), type(e).__name__, e.exit_code, e.reason)
    return ExitCode.OK
