"""`up --detach` labels the session so it is kept after its end (and pruned later); nothing is
removed by the engine on its own."""

from __future__ import annotations

from claude_docker import runplan
from claude_docker.config.pipeline import load_config
from claude_docker.contract import LABEL_DETACHED, LABEL_SESSION
from claude_docker.session import Session
from tests.fakes.projects import make_project


def test_the_detached_label_marks_only_detached_sessions_without_keep(tmp_path, cd_home):
    config = make_project(tmp_path, owner=None)
    cfg = load_config(str(config)).config
    labels = {
        (detach, keep): runplan.plan(cfg, Session.new(cfg.project_name), "img:tag", detach=detach, keep=keep).labels
        for detach in (False, True) for keep in (False, True)
    }
    assert [key for key, found in labels.items() if found.get(LABEL_DETACHED) == "1"] == [(True, False)]
    assert all(found[LABEL_SESSION] for found in labels.values())
    assert not runplan.plan(cfg, Session.new(cfg.project_name), "img:tag", detach=True).auto_remove
