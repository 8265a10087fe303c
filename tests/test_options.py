"""Options read from a signature and checked against its hints, one line per mistake."""
from __future__ import annotations

from typing import Annotated, List, Literal, Optional, Sequence, Tuple, Union

import pytest

from lossexp.errors import ConfigError
from lossexp.options import Check, PositiveInt, check, schema


def part(data, units: PositiveInt = 8, layers: Sequence[str] = ("a",), rate: float = 0.5,
         mode: Literal["fast", "slow"] = "fast", name: Optional[str] = None, flag: bool = False,
         target: Union[str, List[str]] = "y", even: Annotated[int, Check("an even integer", lambda v: v % 2 == 0)] = 2,
         anything=None, *, path: str, **kwargs):
    return None


OPTIONS = schema(part, skip=("data",))


def test_schema_lists_keyword_parameters_with_hints_and_defaults():
    assert list(OPTIONS) == ["units", "layers", "rate", "mode", "name", "flag", "target", "even", "anything", "path"]
    assert OPTIONS["path"].required and not OPTIONS["units"].required
    assert OPTIONS["layers"].default == ("a",)


def test_values_are_conformed_to_their_hints():
    checked = check("model", OPTIONS, {"units": 3, "layers": ["x", "y"], "rate": 1, "mode": "slow", "name": None,
                                       "flag": True, "target": ["a", "b"], "even": 4, "anything": {"k": 1},
                                       "path": "p"})
    assert checked["rate"] == 1.0 and isinstance(checked["rate"], float)
    assert checked["layers"] == ["x", "y"] and checked["target"] == ["a", "b"]


@pytest.mark.parametrize("given, message", [
    ({"unitz": 3}, "Unknown key model.unitz: valid keys are anything, even, flag, layers, mode, name, path, rate, "
                   "target, units"),
    ({"units": 0}, "Invalid value for model.units: expected an integer >= 1, got 0"),
    ({"units": 2.5}, "Invalid value for model.units: expected an integer >= 1, got 2.5"),
    ({"units": True}, "Invalid value for model.units: expected an integer >= 1, got True"),
    ({"layers": "a"}, "Invalid value for model.layers: expected list[str], got 'a'"),
    ({"layers": [1]}, "Invalid value for model.layers: expected list[str], got [1]"),
    ({"rate": "fast"}, "Invalid value for model.rate: expected float, got 'fast'"),
    ({"mode": "medium"}, "Invalid value for model.mode: expected one of 'fast', 'slow', got 'medium'"),
    ({"flag": "yes"}, "Invalid value for model.flag: expected bool, got 'yes'"),
    ({"target": 3}, "Invalid value for model.target: expected str or list[str], got 3"),
    ({"even": 3}, "Invalid value for model.even: expected an even integer, got 3"),
    ({}, "Missing value for model.path: model requires path"),
])
def test_each_mistake_is_one_line_naming_the_key(given, message):
    with pytest.raises(ConfigError) as info:
        check("model", OPTIONS, {"path": "p", **given} if "path" not in given and given else given)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_an_option_whose_default_is_none_takes_none_whatever_its_hint():
    """``steps: int = None`` (PEP 484's implicit Optional, common in research code): its YAML's ``steps: null``,
    the default itself, was 'Invalid value for optimizer.steps: expected int, got None'."""
    def builder(steps: int = None, rate: Annotated[float, Check("a number > 0", lambda v: v > 0)] = None,
                units: int = 4):
        return steps, rate, units

    options = schema(builder)
    assert check("optimizer", options, {"steps": None, "rate": None}) == {"steps": None, "rate": None}
    assert check("optimizer", options, {"steps": 3, "rate": 0.5}) == {"steps": 3, "rate": 0.5}
    with pytest.raises(ConfigError, match=r"^Invalid value for optimizer.rate: expected a number > 0 or null, got -1$"):
        check("optimizer", options, {"rate": -1})
    with pytest.raises(ConfigError, match=r"^Invalid value for optimizer.units: expected int, got None$"):
        check("optimizer", options, {"units": None})


def test_a_tuple_of_fixed_length_takes_that_many_each_of_its_own_type():
    """``Tuple[int, int]`` took [1, 2, 3] and [1] alike, and named a wrong element ``list[int]``."""
    def sized(kernel: Tuple[int, int] = (3, 3), pair: Tuple[str, float] = ("a", 1.0), many: Tuple[int, ...] = ()):
        return None

    options = schema(sized)
    assert check("model", options, {"kernel": [5, 7], "pair": ["b", 2], "many": [1, 2, 3]}) == {
        "kernel": [5, 7], "pair": ["b", 2.0], "many": [1, 2, 3]}
    for wrong in ([1, 2, 3], [1], [1, "x"]):
        with pytest.raises(ConfigError, match=r"^Invalid value for model.kernel: expected a list of 2: \[int, int\], "):
            check("model", options, {"kernel": wrong})
