"""`samizdat key`: archive keys (new, show), their recovery shares (split, recover), and the
custody commands on writer and reader keys and revocations (samizdat.client.custody_cmd)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from samizdat.client import custody_cmd, jsonout
from samizdat.client.custody_cmd import emit, json_option
from samizdat.client.options import env_passphrase, open_key, passphrase_flag
from samizdat.core.errors import UsageError
from samizdat.core.keys import ArchiveKey, read_key_file, save_key
from samizdat.core.shares import GroupSpec, read_share, recover_key, share_text, split_key

SHARE_PASSPHRASE_ENV = "SAMIZDAT_SHARE_PASSPHRASE"


@click.group()
def key() -> None:
    """Archive keys, their recovery shares, writer and reader keys, revocations."""


def _key_json(file: Path, archive_id: str, passphrase: bool) -> None:
    jsonout.emit(
        jsonout.document("key", archive_id=archive_id, file=str(file), passphrase=passphrase)
    )


@key.command("new")
@click.argument("file", type=click.Path(path_type=Path))
@passphrase_flag("Protect the key with a passphrase (Argon2id); or set SAMIZDAT_PASSPHRASE")
@jsonout.option("key")
def key_new(file: Path, ask: bool, as_json: bool) -> None:
    """Create a new archive key in FILE (mode 0600) and print the archive id."""
    passphrase = env_passphrase()
    if ask and passphrase is None:
        passphrase = click.prompt("passphrase", hide_input=True, confirmation_prompt=True)
    k = ArchiveKey.generate()
    save_key(k, file, passphrase)
    if as_json:
        _key_json(file, k.archive_id.hex(), passphrase is not None)
    else:
        click.echo(k.archive_id.hex())


@key.command("show")
@click.argument("file", type=click.Path(path_type=Path))
@jsonout.option("key")
def key_show(file: Path, as_json: bool) -> None:
    """Print the archive id of a key file (no passphrase needed)."""
    from samizdat.v1 import records_pb2 as pb

    kf = read_key_file(file)
    if as_json:
        _key_json(file, kf.archive_id.hex(), kf.kdf == pb.KDF_ARGON2ID)
    else:
        click.echo(kf.archive_id.hex())


def _share_passphrase(ask: bool, confirm: bool) -> str:
    passphrase = os.environ.get(SHARE_PASSPHRASE_ENV, "")
    if ask and not passphrase:
        passphrase = click.prompt(
            "share passphrase", hide_input=True, confirmation_prompt=confirm, default=""
        )
    return passphrase


@key.command("split")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--threshold", type=int, default=None, help="Shares needed to rebuild the key (K)")
@click.option("--shares", type=int, default=None, help="Shares to write (N)")
@click.option(
    "--group",
    "groups",
    multiple=True,
    metavar="K/N",
    help="Instead of --threshold/--shares: one group of N shares, K of which make the group "
    "(repeat per group, e.g. one per country)",
)
@click.option(
    "--group-threshold",
    type=int,
    default=None,
    help="Groups needed to rebuild the key [default: all groups]",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Directory for the share files (created; must not hold shares already)",
)
@passphrase_flag(f"Protect the shares with a passphrase (SLIP-39), or set {SHARE_PASSPHRASE_ENV}")
@json_option
def key_split(
    file: Path,
    threshold: int | None,
    shares: int | None,
    groups: tuple[str, ...],
    group_threshold: int | None,
    out_dir: Path,
    ask: bool,
    as_json: bool,
) -> None:
    """Split the archive key in FILE into recovery shares (SLIP-39 words, any K of N rebuild
    it). Give each share to a different person, in a different country."""
    if groups and (threshold or shares):
        raise UsageError("give either --threshold/--shares or --group, not both")
    if groups:
        specs = [GroupSpec.parse(g) for g in groups]
    elif threshold is not None and shares is not None:
        specs = [GroupSpec(threshold, shares)]
    else:
        raise UsageError("give --threshold K --shares N (or --group K/N per group)")
    needed = group_threshold if group_threshold is not None else len(specs)
    key = open_key(file)
    mnemonics = split_key(key, needed, specs, _share_passphrase(ask, confirm=True))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for g, group in enumerate(mnemonics):
        for m, words in enumerate(group):
            name = f"share-{m + 1}.txt" if len(specs) == 1 else f"share-g{g + 1}-{m + 1}.txt"
            path = out_dir / name
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                raise UsageError(f"{path} already exists; use an empty directory") from None
            with os.fdopen(fd, "w") as f:
                f.write(share_text(words, g, m, specs, needed))
            written.append({"file": str(path), "group": g + 1, "member": m + 1})
    summary = " and ".join(f"{s.threshold} of {s.count}" for s in specs)
    if len(specs) > 1:
        summary = f"{needed} of {len(specs)} groups, each {summary}"
    emit(
        as_json,
        {
            "archive_id": key.archive_id.hex(),
            "group_threshold": needed,
            "groups": [{"threshold": s.threshold, "shares": s.count} for s in specs],
            "shares": written,
        },
        f"{len(written)} shares of archive {key.archive_id.hex()} in {out_dir} "
        f"({summary} rebuild the key)",
    )


@key.command("recover")
@click.argument("share_files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Key file to write (mode 0600; never overwritten)",
)
@click.option(
    "--archive-id",
    default=None,
    help="Refuse unless the shares rebuild this archive (catches a wrong share passphrase)",
)
@passphrase_flag(f"The shares have a passphrase (asked for), or set {SHARE_PASSPHRASE_ENV}")
@json_option
def key_recover(
    share_files: tuple[Path, ...], out: Path, archive_id: str | None, ask: bool, as_json: bool
) -> None:
    """Rebuild the archive key from K recovery shares (files written by `key split`)."""
    from samizdat.core.ids import ArchiveId

    expect = bytes(ArchiveId.parse(archive_id)) if archive_id else None
    shares = [read_share(p) for p in share_files]
    key = recover_key(shares, _share_passphrase(ask, confirm=False), expect)
    save_key(key, out, env_passphrase())
    emit(
        as_json,
        {"archive_id": key.archive_id.hex(), "key_file": str(out), "shares_used": len(shares)},
        key.archive_id.hex(),
    )


for _command in custody_cmd.KEY_COMMANDS:
    key.add_command(_command)
