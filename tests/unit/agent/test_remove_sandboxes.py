"""executors.remove_sandboxes: an Alloc's task sandboxes go, whatever they hold,
and nothing a link in them points at."""

from __future__ import annotations

from pathlib import Path

from corral.agent.runtime.executors import remove_sandboxes


def test_sandboxes_go_empty_or_not_and_links_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "keep").mkdir(parents=True)
    (outside / "keep" / "file").write_text("mine")
    alloc = tmp_path / "sandboxes" / "alloc-uid"
    for n in range(50):
        (alloc / f"task-{n}").mkdir(parents=True)  # a task that wrote nothing
    (alloc / "busy" / "deep").mkdir(parents=True)
    (alloc / "busy" / "deep" / "out.txt").write_text("x")
    (alloc / "a-file").write_text("not a directory")
    (alloc / "link").symlink_to(outside / "keep")
    remove_sandboxes(alloc)
    assert not alloc.exists()
    assert (outside / "keep" / "file").read_text() == "mine"
    remove_sandboxes(alloc)  # gone already: nothing to do
    link = tmp_path / "sandboxes" / "linked"
    link.symlink_to(outside)
    remove_sandboxes(link)  # a link is not a sandboxes directory: left alone
    assert (outside / "keep" / "file").exists() and link.is_symlink()
