"""A metric's history kept in memory as two packed arrays, read as a list of ``(step, value)`` tuples.

The run recorder keeps every point it records for the run's plots and summary. As a list of tuples a
point cost about 120 bytes (a tuple, a float, an int, the list's slot): 0.20 MB an epoch of a
1,250-step epoch's 1,631 points, about 160 MB at 10⁶ steps. Here a point is 16 bytes (an int64 step,
a float64 value), and the readers — ``points[-1][1]``, ``zip(*points)``, ``for step, value in points``
— see the same tuples.
"""
from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import Any, Iterable, Iterator, List, Tuple, Union

Point = Tuple[int, float]


class Points(Sequence):
    """``(step, value)`` points, appended in the order recorded (see the module docstring)."""

    __slots__ = ("_steps", "_values")

    def __init__(self, points: Iterable[Point] = ()) -> None:
        self._steps = array("q")
        self._values = array("d")
        for step, value in points:
            self.append((step, value))

    def append(self, point: Point) -> None:
        self._steps.append(int(point[0]))
        self._values.append(float(point[1]))

    def __setitem__(self, index: int, point: Point) -> None:
        """Replace one point (an epoch's end's value at the step its interval already sampled)."""
        self._steps[index] = int(point[0])
        self._values[index] = float(point[1])

    def __len__(self) -> int:
        return len(self._steps)

    def __getitem__(self, index: Union[int, slice]) -> Any:
        if isinstance(index, slice):
            return list(zip(self._steps[index], self._values[index]))
        return self._steps[index], self._values[index]

    def __iter__(self) -> Iterator[Point]:
        return zip(self._steps, self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (Points, list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"Points({list(self)!r})"

    def as_list(self) -> List[Point]:
        return list(self)
