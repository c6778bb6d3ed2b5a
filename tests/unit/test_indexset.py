"""IndexSet: task indices as intervals, in Kubernetes' compressed text form."""

from __future__ import annotations

import pytest

from corral.indexset import IndexFormatError, IndexSet


def test_parse_merges_and_formats_in_kubernetes_form() -> None:
    s = IndexSet.parse("7,1,3-5,6")
    assert s.format() == "1,3-7"
    assert len(s) == 6 and 4 in s and 2 not in s and 8 not in s
    assert IndexSet.parse("").format() == "" and not IndexSet.parse(" ")


@pytest.mark.parametrize("text", ["a", "3-1", "-1", "1-", "1-2-3"])
def test_bad_text_is_refused(text: str) -> None:
    with pytest.raises(IndexFormatError):
        IndexSet.parse(text)


def test_set_algebra_matches_python_sets() -> None:
    a, b = IndexSet.parse("0-9,20-29"), IndexSet.parse("5-24")
    assert set(a - b) == set(range(5)) | set(range(25, 30))
    assert set(a | b) == set(range(30))
    assert set(a & b) == set(range(5, 10)) | set(range(20, 25))
    c = a.copy()
    c.discard(3)
    c.add(15)
    assert c.format() == "0-2,4-9,15,20-29" and a.format() == "0-9,20-29"


def test_take_first_and_last_split_without_loss() -> None:
    s = IndexSet.parse("0-4,10-14")
    head = s.take_first(7)
    tail = s.take_last(2)
    assert (head.format(), s.format(), tail.format()) == ("0-4,10-11", "12", "13-14")
    assert IndexSet.span(0, 100_000).format() == "0-99999"
