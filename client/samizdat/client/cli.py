"""`samizdat`: the custodian's and restorer's command line.

This module only assembles the command group and maps errors to exit codes; each command
group lives in its own module (push_cmd, restore_cmd, status_cmd, key_cmd, custody_cmd) and
the options they share in `options`.

Exit codes: 0 success (status: healthy); 1 failure (status: degraded; integrity or missing
data); 2 usage, configuration or connection error; 3 (restore, verify) finished, but some
files are damaged and listed, or (push) snapshot stored, but some files or directories could
not be read and are not in it.
"""

from __future__ import annotations

import sys

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


def main() -> None:
    """Run the CLI; end with the exit code of the error that stopped it (its class decides,
    samizdat.core.errors), also as JSON on stderr under --json."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        terminal.fail("aborted", "Aborted", ExitCode.FAILURE)
    except click.ClickException as e:
        if not jsonout.requested():
            e.show()
            sys.exit(UsageError.exit_code)
        terminal.fail(e.format_message(), "UsageError", UsageError.exit_code, UsageError.reason)
    except SamizdatError as e:
        terminal.fail(str(e), type(e).__name__, e.exit_code, e.reason)
    except KeyboardInterrupt:
        terminal.fail("interrupted", "Interrupted", ExitCode.INTERRUPTED)


if __name__ == "__main__":
    main()
