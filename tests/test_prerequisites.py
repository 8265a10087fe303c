"""A test whose prerequisite (a browser, PostgreSQL, Linux namespaces) is missing fails with a line
naming it, whatever the environment says (``tests/conftest.require``): a skipped test proves nothing."""
import pytest

from conftest import require


@pytest.mark.parametrize("ci", ["true", "false", None])
def test_a_missing_prerequisite_fails_naming_it_and_a_present_one_passes(monkeypatch, ci):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    require(True, "present: nothing happens")
    with pytest.raises(pytest.fail.Exception, match="missing prerequisite: needs a browser"):
        require(False, "needs a browser")
