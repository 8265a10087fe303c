"""What a sweep asks for: its grid and a job's key, whatever the order and spelling of the overrides."""
from lossexp.sweeps import grid


def test_a_grid_is_its_keys_and_values_in_any_order():
    assert grid.grid(["b=2,1", "a=0.010", "hydra/launcher=joblib", "tracking.uri=x"]) == \
        grid.grid(["a=0.01", "b=1,2"]) == {"a": ("0.01",), "b": ("1", "2")}
    assert grid.job_key(["b=1", "a=[x,y]"]) == grid.job_key(["a=[x, y]", "b=1"])
    assert grid.job_key(["b=1"]) != grid.job_key(["b=2"])
