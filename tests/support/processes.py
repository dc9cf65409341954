"""Processes as /proc shows them: alive or not, and whose children they are."""

from __future__ import annotations

from pathlib import Path


def alive(pid: int) -> bool:
    """The process runs (a killed one nobody has reaped yet counts as gone: an orphan waits
    for init, which here takes a second or two, and holds nothing any more)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def children_of(*parents: int) -> list[int]:
    """The processes whose parent is one of `parents`, as /proc lists them now."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if ppid in parents:
            children.append(int(stat.parent.name))
    return children
