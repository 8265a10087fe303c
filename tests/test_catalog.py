import subprocess
import sys

from lossexp.catalog import component_docstring, render
from lossexp.losses.registry import available


def test_render_lists_every_group_and_component_option():
    text = render()
    for title in ("Models", "Data sets", "Optimizers", "Loss components"):
        assert title in text
    for name in available():
        assert f"  {name} " in text
        assert component_docstring(name), name
    assert "parametrization: softplus" in text and "mode: mean" in text


def test_detail_shows_the_full_docstring():
    text = render("hist_avg")
    assert "Salimans" in text and "previous" in text and "Models" not in text


def test_components_and_help_do_not_import_tensorflow():
    code = (
        "import sys, io, contextlib\n"
        "from lossexp.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['components']) == 0\n"
        "    assert main(['--help']) == 0\n"
        "    assert main(['components', 'coef']) == 0\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'mlflow') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_unknown_detail_exits_2(run_cli):
    result = run_cli("components", "nope")
    assert result.returncode == 2
    assert "valid choices are" in result.stderr
