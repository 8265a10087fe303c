"""A test whose prerequisite (a browser, Linux namespaces) is missing skips on a developer's machine
and fails under CI (``CI=true``), where every prerequisite is installed (``tests/conftest.require``)."""
import pytest

from conftest import require


@pytest.mark.parametrize("value, fails", [("true", True), ("TRUE", True), ("1", True), ("false", False), ("", False)])
def test_a_missing_prerequisite_fails_under_ci_and_skips_elsewhere(monkeypatch, value, fails):
    monkeypatch.setenv("CI", value)
    require(True, "present: nothing happens")
    with pytest.raises(pytest.fail.Exception if fails else pytest.skip.Exception, match="needs a browser"):
        require(False, "needs a browser")


def test_without_ci_in_the_environment_it_skips(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require(False, "needs a browser")
