"""Shard selections on the command line: '0-9,17' <-> [0..9, 17]."""

from __future__ import annotations

import re
from typing import Iterable


def parse_shards(text: str, num_shards: int) -> list[int]:
    """Parse '0-9,17' into sorted shard indices; every index must be inside the plan."""
    result: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise ValueError(f"--shards: '{part}' is not an index or a range like 3-7")
        low, high = int(match[1]), int(match[2] or match[1])
        if low > high:
            raise ValueError(f"--shards: range '{part}' runs backwards")
        if high >= num_shards:
            raise ValueError(f"--shards: {high} is outside the plan (shards 0-{num_shards - 1})")
        result.update(range(low, high + 1))
    return sorted(result)


def format_shards(indices: Iterable[int]) -> str:
    """[0,1,2,5] -> '0-2,5'."""
    ordered = sorted(set(indices))
    parts, start = [], None
    for position, value in enumerate(ordered):
        if start is None:
            start = value
        if position + 1 == len(ordered) or ordered[position + 1] != value + 1:
            parts.append(str(start) if start == value else f"{start}-{value}")
            start = None
    return ",".join(parts)
