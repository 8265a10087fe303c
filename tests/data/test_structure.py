"""One array, or a dict or list of arrays: every helper does the same to each array."""
import numpy as np

from lossexp.data.structure import count_rows, describe, input_names, shapes, take_rows


def test_rows_and_shapes_of_one_array_a_dict_and_a_list():
    a, b = np.arange(12).reshape(6, 2), np.zeros((6, 3, 4))
    assert count_rows(a) == count_rows({"a": a, "b": b}) == count_rows([a, b]) == 6
    assert shapes(a) == (2,)
    assert shapes({"a": a, "b": b}) == {"a": (2,), "b": (3, 4)}
    assert shapes([a, b]) == [(2,), (3, 4)]
    rows = take_rows({"a": a, "b": b}, slice(4, None))
    np.testing.assert_array_equal(rows["a"], a[4:])
    assert rows["b"].shape == (2, 3, 4)
    np.testing.assert_array_equal(take_rows([a, b], [0, 5])[0], a[[0, 5]])


def test_messages_name_what_came():
    assert input_names({"tokens": (8,), "age": (1,)}) == "tokens, age"
    assert input_names([(8,), (1,)]) == "2 arrays"
    assert describe({"x": np.zeros(1)}) == "a dict of 'x': ndarray"
    assert describe((1, "a")) == "a tuple of int, str"
