"""Puts the user project's ``conf/`` on Hydra's config search path, after lossexp's own.

Hydra discovers this plugin in every process that composes a config (the CLI's pre-check, the
app, sweep workers), so ``model=my_net`` finds ``<project>/conf/model/my_net.yaml`` everywhere.
Appended, not prepended: lossexp's own configs keep their names (a clash is refused by
:func:`lossexp.project.check_names`).
"""
from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class LossexpProjectSearchPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        try:
            from lossexp import project
        except ImportError:  # a stale copy of this plugin beside a lossexp without projects: add nothing
            return
        found = project.current()
        if found is not None and found.conf_dir is not None:
            search_path.append(provider="lossexp-project", path=f"file://{found.conf_dir}")
