"""Recovery shares and key kinds through the real CLI (issue #12): split, recover, readers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from samizdat.core.keys import load_key
from tests.conftest import KeyFile
from tests.jsonschemas import json_object

pytestmark = pytest.mark.timeout(120)
Cli = Callable[..., tuple[int, str, str]]


def split(
    cli: Cli, key: KeyFile, out: Path, *args: str, env: dict[str, str] | None = None
) -> list[Path]:
    code, stdout, err = cli("key", "split", key, "--out", out, "--json", *args, env=env)
    assert code == 0, err
    return [Path(s["file"]) for s in json_object(stdout, "custody")["shares"]]


def recover(
    cli: Cli, out: Path, *shares: Path, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    return cli("key", "recover", *shares, "--out", out, env=env)


def test_any_3_of_5_shares_rebuild_the_exact_key_and_2_are_refused(
    cli: Cli, archive_key: KeyFile, tmp_path: Path
) -> None:
    shares = split(cli, archive_key, tmp_path / "shares", "--threshold", "3", "--shares", "5")
    assert len(shares) == 5
    text = shares[0].read_text()
    assert "share 1 of 5" in text and "3 shares" in text
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in shares)

    code, out, err = recover(cli, tmp_path / "back.key", shares[4], shares[1], shares[2])
    assert code == 0, err
    assert out.strip() == archive_key.archive_id
    assert load_key(tmp_path / "back.key") == archive_key.key  # the exact key, not a lookalike
    code, out, _ = cli("key", "show", tmp_path / "back.key")
    assert out.strip() == archive_key.archive_id

    code, out, err = recover(cli, tmp_path / "two.key", shares[0], shares[3])
    assert code == 2
    assert "too few shares: 2 of the 3 needed" in err
    assert not (tmp_path / "two.key").exists()
    # The same share twice is still one share.
    code, _, err = recover(cli, tmp_path / "dup.key", shares[0], shares[0], shares[3])
    assert code == 2 and "too few shares" in err


def test_mixed_sets_and_mistyped_words_are_named(
    cli: Cli, archive_key: KeyFile, tmp_path: Path
) -> None:
    first = split(cli, archive_key, tmp_path / "a", "--threshold", "2", "--shares", "3")
    second = split(cli, archive_key, tmp_path / "b", "--threshold", "2", "--shares", "3")
    code, _, err = recover(cli, tmp_path / "k", first[0], second[1])
    assert code == 2
    assert "different sets" in err and str(first[0]) in err and str(second[1]) in err

    lines = first[1].read_text().splitlines()
    words = lines[-1].split()
    words[2] = "zzzz"
    (tmp_path / "typo.txt").write_text("\n".join([*lines[:-1], " ".join(words)]) + "\n")
    code, _, err = recover(cli, tmp_path / "k", first[0], tmp_path / "typo.txt")
    assert code == 2
    assert "typo.txt" in err and "word" in err

    # A real word in the wrong place: caught by the checksum.
    body = [ln for ln in first[1].read_text().splitlines() if not ln.startswith("#")]
    words = " ".join(body).split()
    words[5], words[6] = words[6], words[5]
    (tmp_path / "swap.txt").write_text(" ".join(words) + "\n")
    code, _, err = recover(cli, tmp_path / "k", first[0], tmp_path / "swap.txt")
    assert code == 2
    assert "swap.txt" in err and "checksum" in err
    assert not (tmp_path / "k").exists()


def test_group_thresholds_and_passphrase(cli: Cli, archive_key: KeyFile, tmp_path: Path) -> None:
    env = {"SAMIZDAT_SHARE_PASSPHRASE": "tulips in spring"}
    shares = split(
        cli,
        archive_key,
        tmp_path / "g",
        "--group",
        "2/3",
        "--group",
        "2/3",
        "--group",
        "2/3",
        "--group-threshold",
        "2",
        env=env,
    )
    assert len(shares) == 9
    g1 = [p for p in shares if "-g1-" in p.name]
    g3 = [p for p in shares if "-g3-" in p.name]
    code, out, err = recover(cli, tmp_path / "ok.key", g1[0], g1[2], g3[1], g3[2], env=env)
    assert code == 0, err
    assert load_key(tmp_path / "ok.key") == archive_key.key

    code, _, err = recover(cli, tmp_path / "few.key", g1[0], g1[1], g3[0], env=env)
    assert code == 2 and "2 of 3 groups must be complete" in err

    # SLIP-39 turns a wrong passphrase into another key; --archive-id catches it.
    code, _, err = cli(
        "key",
        "recover",
        g1[0],
        g1[2],
        g3[1],
        g3[2],
        "--out",
        tmp_path / "wrong.key",
        "--archive-id",
        archive_key.archive_id,
        env={"SAMIZDAT_SHARE_PASSPHRASE": "tulips in autumn"},
    )
    assert code == 2 and "wrong passphrase" in err
    assert not (tmp_path / "wrong.key").exists()


def test_only_the_archive_key_splits_delegates_and_revokes(
    cli: Cli, archive_key: KeyFile, tmp_path: Path
) -> None:
    code, out, err = cli("key", "reader", archive_key, "--out", tmp_path / "r.key", "--json")
    assert code == 0, err
    doc = json_object(out, "custody")
    assert doc["archive_id"] == archive_key.archive_id and len(doc["reader_id"]) == 64
    code, out, err = cli(
        "key", "delegate", archive_key, "--name", "amal", "--out", tmp_path / "w.key"
    )
    assert code == 0, err
    writer_id = out.strip()
    assert load_key(tmp_path / "w.key").member_key.hex() == writer_id
    refused = [
        ("key", "split", "r.key", "--threshold", "2", "--shares", "3", "--out", "s"),
        ("key", "delegate", "w.key", "--name", "x", "--out", "x.key"),
        ("key", "reader", "r.key", "--out", "x.key"),
        ("key", "revoke-writer", "w.key", writer_id, "--out", "x.rec"),
        ("node", "revoke", "--key", "r.key", "a" * 52, "--out", "x.rec"),
    ]
    for args in refused:
        code, _, err = cli(*args)  # cwd is tmp_path
        assert code == 2, (args, err)
        assert "only the archive key can do this" in err
    assert not (tmp_path / "x.key").exists() and not (tmp_path / "x.rec").exists()
