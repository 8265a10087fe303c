import subprocess
import sys

from lossexp import registry
from lossexp.catalog import describe, render


def test_render_lists_every_group_and_component_option():
    text = render()
    for title in ("Models", "Data sets", "Optimizers", "Loss components", "Weighting methods", "Experiments"):
        assert title in text
    for kind, group in (("model", "model"), ("data", "data"), ("optimizer", "optimizer"), ("loss", "loss"),
                        ("weighting", "weighting")):
        for name in registry.available(kind):
            assert f"  {name} " in text
        for name in registry.shipped(kind):  # not the parts other tests of this worker registered
            assert describe(kind, group, name).summary, f"{group}={name} has no description"
    assert "parametrization: softplus" in text and "mode: mean" in text and "normalization: none" in text


def test_experiments_show_their_example_lines_one_per_line():
    text = render("vae_kl_anneal")
    examples = [line for line in text.splitlines() if line.strip().startswith("$ lossexp")]
    assert examples and all(line.count("lossexp train") == 1 for line in examples)


def test_detail_shows_the_full_docstring():
    text = render("hist_avg")
    assert "Salimans" in text and "previous" in text and "Models" not in text
    assert "Frank–Wolfe" in render("cagrad")  # a weighting method's too ("Unknown name 'cagrad'" before)


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


def test_the_sections_of_every_runs_config_are_listed_with_their_keys_and_comments():
    """``lossexp components task`` (the root config's comment points there) prints the section's keys."""
    from dataclasses import fields

    from lossexp.catalog import render
    from lossexp.config import ObjectiveConfig, TaskConfig

    for name, schema in (("task", TaskConfig), ("objective", ObjectiveConfig)):
        text = render(name)
        assert text.startswith(f"{name} ({name}.KEY=VALUE; in every run's config):\n")
        keys = [line.split(":")[0].strip() for line in text.splitlines()[1:]]
        assert keys == [f.name for f in fields(schema)]
    assert "  split_outputs: false # true (several outputs)" in render("task")
    assert render("trainer").splitlines()[1] == "  epochs: 5"


def test_a_projects_loss_yaml_whose_component_nothing_registers_is_flagged_in_one_line(tmp_path, monkeypatch):
    """It was listed like any component, [project] beside it, and ``loss=orphan`` then failed with "Unknown loss
    component"; a YAML choosing a registered class by ``kind:`` (one of lossexp's, one of a package module's)
    is not flagged, one whose ``kind`` names nothing is."""
    from lossexp.project import ENV

    (tmp_path / "pyproject.toml").write_text('[tool.lossexp]\nmodules = ["mine", "pkg"]\n')
    (tmp_path / "mine.py").write_text('import lossexp\n\n\n@lossexp.register_component("good")\n'
                                      'class Good(lossexp.LossComponent):\n    """term = 0."""\n')
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text('import lossexp\n\n\n@lossexp.register_component("packaged")\n'
                                                  'class Packaged(lossexp.LossComponent):\n    """term = 1."""\n')
    loss = tmp_path / "conf" / "loss"
    loss.mkdir(parents=True)
    for name, body in (("good", "weight: 0.1"), ("packaged", "weight: 0.1"), ("orphan", "weight: 0.1"),
                       ("second", "kind: hist_avg"), ("typo", "kind: goood")):
        (loss / f"{name}.yaml").write_text(f"# {name}\n{name}:\n  {body}\n")
    monkeypatch.setenv(ENV, str(tmp_path))
    lines = render().splitlines()
    flagged = {lines[i - 1].split()[0]: line.strip() for i, line in enumerate(lines) if line.startswith("      ! ")}
    assert flagged == {
        "orphan": '! not registered: no module of the project has @lossexp.register_component("orphan") (its modules: '
                  "mine, pkg), so loss=orphan fails",
        "typo": "! not selectable: kind: goood in conf/loss/typo.yaml names no registered loss component"}
    assert render("orphan").splitlines()[2].startswith("      ! not registered")  # and in its own entry
    # a YAML that does not parse: its options, read line by line, were listed as if it did
    (loss / "packaged.yaml").write_text("packaged:\n  weight: [0.1\n")
    monkeypatch.chdir(tmp_path)
    assert render("packaged").splitlines()[2] == ("      ! not read: conf/loss/packaged.yaml, line 3: expected ',' or "
                                                  "']', but got '<stream end>', so loss=packaged fails until it parses")
    # a module that does not parse: its decorators cannot be read ("not registered" sent the user looking for one)
    (tmp_path / "mine.py").write_text((tmp_path / "mine.py").read_text().replace('"""term = 0."""', "x = (1"))
    assert render("good").splitlines()[2] == ("      ! not read: mine.py:6 does not parse (SyntaxError: '(' was never "
                                              "closed), so loss=good fails until it does")
