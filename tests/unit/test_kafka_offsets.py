"""The Kafka queue's commit point when items finish out of order (services/batch/backends/offsets.py)."""

from __future__ import annotations

from pathlib import Path

from launcher.settings import KAFKA_VERSION, ROOT
from services.batch.backends.kafka import parse_receipt, receipt
from services.batch.backends.offsets import OffsetBook, commit_point


def test_commit_point_is_the_lowest_offset_in_flight_else_past_the_highest_claimed() -> None:
    assert commit_point({7, 5, 9}, 10) == 5
    assert commit_point(set(), 10) == 10


def test_out_of_order_completions_commit_only_the_contiguous_prefix() -> None:
    book: OffsetBook[str] = OffsetBook()
    for offset in (0, 1, 2, 3):
        assert book.claimed("p0", offset)
    assert book.done("p0", 2) is None  # 0 and 1 still run: committing 3 would lose them on a crash
    assert book.done("p0", 1) is None
    assert book.done("p0", 0) == 3  # 0, 1, 2 done: resume at 3
    assert book.done("p0", 3) == 4


def test_gaps_in_offsets_do_not_hold_the_commit_back() -> None:
    book: OffsetBook[str] = OffsetBook()
    for offset in (10, 12):  # 11 is a transaction marker or a compacted record: never delivered
        book.claimed("p0", offset)
    assert book.done("p0", 10) == 12
    assert book.done("p0", 12) == 13


def test_partitions_are_independent() -> None:
    book: OffsetBook[str] = OffsetBook()
    book.claimed("p0", 0)
    book.claimed("p1", 0)
    book.claimed("p1", 1)
    assert book.done("p1", 1) is None
    assert book.done("p0", 0) == 1
    assert book.commit_points() == {"p0": 1, "p1": 0}


def test_a_revoked_partition_never_moves_the_offset_again() -> None:
    book: OffsetBook[str] = OffsetBook()
    book.claimed("p0", 0)
    book.forget({"p0"})
    assert book.done("p0", 0) is None  # its new owner commits it
    assert book.commit_points() == {}


def test_an_offset_fetched_again_while_in_flight_is_not_handed_out_twice() -> None:
    book: OffsetBook[str] = OffsetBook()
    assert book.claimed("p0", 4)
    assert not book.claimed("p0", 4)
    assert book.done("p0", 4) == 5
    assert book.done("p0", 4) is None  # acknowledged twice: no second commit


def test_a_receipt_names_topic_partition_and_offset() -> None:
    tp, offset = parse_receipt("costmesh.batch.high/3/42")
    assert (tp.topic, tp.partition, offset) == ("costmesh.batch.high", 3, 42)
    assert receipt(tp, offset) == "costmesh.batch.high/3/42"


def test_the_pom_installs_the_version_the_launcher_looks_for() -> None:
    pom = Path(ROOT / "deploy" / "kafka" / "pom.xml").read_text()
    assert f"<kafka.version>{KAFKA_VERSION}</kafka.version>" in pom
