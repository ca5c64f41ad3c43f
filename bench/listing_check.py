#!/usr/bin/env python3
"""CPU of checking one peer's whole listing of 10,000 records, in process.

    python bench/listing_check.py [--repeat 20]

Ten pages of 1,000 ~700-byte records, as a node lists them, checked page by page as every
client checks a listing: `check_page` alone (what a listing cost before `Listing` bounded the
whole) and `Listing.take` (each page, plus the whole: no record twice, records, bytes, pages,
time). Prints milliseconds of CPU per 10,000 records for each, alternating (ABAB).
"""

from __future__ import annotations

import argparse
import os
import time

from samizdat.core.peer import ListedSnapshot, Listing, SnapshotPage, check_page
from samizdat.v1 import records_pb2 as pb


def pages() -> list[SnapshotPage]:
    out, position = [], 0
    for index in range(10):
        items = []
        for _ in range(1000):
            position += 1
            signed = pb.SignedSnapshot(record=os.urandom(620), signature=os.urandom(64))
            items.append(ListedSnapshot(signed, 1, 1, position, os.urandom(32)))
        out.append(SnapshotPage(items, position, more=index < 9, nbytes=720_000))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    listing = pages()

    def before() -> None:
        after = 0
        for page in listing:
            check_page(page, after, 1000, "bench")
            after = page.last_position

    def after() -> None:
        whole = Listing("bench")
        for page in listing:
            whole.take(page)

    for name, run in [("A check_page", before), ("B Listing", after)] * 3:
        started = time.process_time()
        for _ in range(args.repeat):
            run()
        cpu = (time.process_time() - started) / args.repeat
        print(f"{name}: {cpu * 1000:.2f} ms CPU per 10,000 records")


if __name__ == "__main__":
    main()
