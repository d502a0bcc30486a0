"""The small unit of work done by every process of the process-heavy workload."""

from __future__ import annotations


def task(n: int) -> int:
    """A few hundred bytecodes of arithmetic and branching: a small task."""
    total = 0
    for i in range(50):
        if (i + n) % 3 == 0:
            total += i * n
        elif (i + n) % 3 == 1:
            total -= i
        else:
            total ^= n
    return abs(total)
