"""Power-of-two chunks of statement arguments (``store/sql_chunks.py``)."""

from __future__ import annotations

from cityos.data.ngsild.store.sql_chunks import placeholders, power_of_two_chunks


def test_chunks_cover_every_item_once_in_order() -> None:
    sizes_seen: set[int] = set()
    for total in range(0, 1100):
        chunks = list(power_of_two_chunks(total, 256))
        covered = [i for start, size in chunks for i in range(start, start + size)]
        assert covered == list(range(total))
        sizes = [size for _, size in chunks]
        assert all(size & (size - 1) == 0 and size <= 256 for size in sizes)
        assert sizes == sorted(sizes, reverse=True)
        sizes_seen.update(sizes)
    assert sizes_seen == {1 << k for k in range(9)}       # nine statement texts at most


def test_a_long_list_is_mostly_full_chunks() -> None:
    assert list(power_of_two_chunks(300, 256)) == [(0, 256), (256, 32), (288, 8), (296, 4)]
    assert [size for _, size in power_of_two_chunks(1000, 256)] == [256, 256, 256, 128, 64, 32, 8]


def test_placeholders_name_one_mark_per_item() -> None:
    assert placeholders(1) == "(?)"
    assert placeholders(3) == "(?, ?, ?)"
