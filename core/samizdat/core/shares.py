"""Recovery shares of the archive key: SLIP-39 mnemonics (the `shamir-mnemonic` package).

The secret split is the 64 bytes `signing_seed || master_secret` of the archive key, so any
threshold of shares rebuilds the exact key (same archive id). Shares may be organised in groups
(e.g. 2 of 3 countries, 2 of 3 people in each). A share file is plain text: `#` comment lines
saying what it is, then the words (docs/format.md, "Recovery shares"). SLIP-39 has an optional
passphrase; a wrong one yields a different key without error (by design of SLIP-39), which
`recover_key(..., expect=ARCHIVE_ID)` detects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import shamir_mnemonic
from shamir_mnemonic.shamir import ShareGroup
from shamir_mnemonic.share import Share

from samizdat.core.errors import ShareError, UsageError
from samizdat.core.ids import short_hex
from samizdat.core.keys import ArchiveKey

MAX_SHARES = 16  # SLIP-39's limit per group and on the number of groups
WORDS_PER_LINE = 8


@dataclass(frozen=True)
class GroupSpec:
    """`threshold` of `count` shares make one group."""

    threshold: int
    count: int

    @classmethod
    def parse(cls, text: str) -> GroupSpec:
        """Parse `K/N` or `KofN`."""
        k, sep, n = text.lower().replace("of", "/").partition("/")
        if not sep or not k.strip().isdigit() or not n.strip().isdigit():
            raise UsageError(f"a group is K/N (e.g. 2/3), got {text!r}")
        return cls(int(k), int(n))


def split_key(
    key: ArchiveKey, group_threshold: int, groups: Sequence[GroupSpec], passphrase: str = ""
) -> list[list[str]]:
    """SLIP-39 mnemonics of the archive key: one list of mnemonics per group."""
    key.require_archive_key()
    if not 1 <= group_threshold <= len(groups) <= MAX_SHARES:
        raise UsageError(
            f"group threshold must be between 1 and the number of groups ({len(groups)}, "
            f"at most {MAX_SHARES})"
        )
    for g in groups:
        if not 1 <= g.threshold <= g.count <= MAX_SHARES:
            raise UsageError(
                f"threshold {g.threshold} of {g.count} shares: need 1 <= threshold <= shares "
                f"<= {MAX_SHARES}"
            )
        if g.threshold == 1 and g.count > 1:
            raise UsageError("a threshold of 1 with several shares would just be copies")
    try:
        mnemonics: list[list[str]] = shamir_mnemonic.generate_mnemonics(
            group_threshold,
            [(g.threshold, g.count) for g in groups],
            key.signing_seed + key.master_secret,
            passphrase.encode(),
        )
    except shamir_mnemonic.MnemonicError as e:
        raise UsageError(f"cannot split the key: {e}") from None
    return mnemonics


def share_text(
    words: str, group: int, member: int, groups: Sequence[GroupSpec], group_threshold: int
) -> str:
    """The text of one share file."""
    g = groups[group]
    lines = [
        "# samizdat archive key recovery share (SLIP-39). Keep it secret, on paper or offline.",
        f"# share {member + 1} of {g.count} in group {group + 1}; {g.threshold} shares of a "
        f"group make the group",
    ]
    if len(groups) > 1:
        lines.append(f"# {group_threshold} of {len(groups)} groups rebuild the key")
    lines.append("# rebuild with: samizdat key recover SHARE_FILE... --out archive.key")
    split = words.split()
    lines += [" ".join(split[i : i + WORDS_PER_LINE]) for i in range(0, len(split), WORDS_PER_LINE)]
    return "\n".join(lines) + "\n"


def read_share(path: Path) -> tuple[Path, Share]:
    """Read one share file and check its words and checksum."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ShareError(f"cannot read share {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ShareError(f"{path} is not a share file (not text)") from None
    words = " ".join(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )
    try:
        return path, Share.from_mnemonic(words.lower())
    except shamir_mnemonic.MnemonicError as e:
        detail = str(e)
        if "word" in detail:
            detail += " Check the spelling against the paper copy."
        elif "checksum" in detail:
            detail = "its checksum fails: a word is mistyped, missing or swapped."
        raise ShareError(f"share {path}: {detail}") from None


def recover_key(
    shares: Sequence[tuple[Path, Share]], passphrase: str = "", expect: bytes | None = None
) -> ArchiveKey:
    """Rebuild the archive key from shares; ShareError names what is wrong."""
    if not shares:
        raise ShareError("no shares given")
    first_path, first = shares[0]
    groups: dict[int, ShareGroup] = {}
    seen: set[tuple[int, int]] = set()
    for path, share in shares:
        if share.common_parameters() != first.common_parameters():
            raise ShareError(
                f"shares {first_path} and {path} belong to different sets (another split, or "
                "another key): use shares of one split only"
            )
        if (share.group_index, share.index) in seen:
            continue  # the same share twice counts once
        seen.add((share.group_index, share.index))
        try:
            groups.setdefault(share.group_index, ShareGroup()).add(share)
        except shamir_mnemonic.MnemonicError:
            raise ShareError(f"share {path} does not match the other shares of its group") from None
    complete = {i: g.get_minimal_group() for i, g in groups.items() if g.is_complete()}
    needed = first.group_threshold
    if len(complete) < needed:
        raise ShareError(_too_few(groups, needed, first.group_count))
    chosen = dict(sorted(complete.items())[:needed])
    try:
        secret = shamir_mnemonic.recover_ems(chosen).decrypt(passphrase.encode())
    except shamir_mnemonic.MnemonicError as e:
        raise ShareError(f"the shares do not combine: {e}") from None
    key = ArchiveKey(secret[:32], secret[32:])
    if expect is not None and bytes(key.archive_id) != expect:
        raise ShareError(
            f"the shares rebuild archive {key.archive_id.short()}, not {short_hex(expect)}: "
            "wrong passphrase, or shares of another archive"
        )
    return key


def _too_few(groups: dict[int, ShareGroup], needed: int, group_count: int) -> str:
    have = []
    for index, group in sorted(groups.items()):
        have.append(f"{len(group)} of the {group.member_threshold()} needed in group {index + 1}")
    if group_count == 1:
        return f"too few shares: {have[0]}" if have else "too few shares"
    return f"too few shares: {needed} of {group_count} groups must be complete; have " + "; ".join(
        have
    )
