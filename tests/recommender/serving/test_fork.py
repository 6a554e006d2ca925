"""A shop changes what blocks show the Oscar way: a fork (``tests/fork_project``, the README's
"Change what a block shows") adds a placement and replaces a rung, and the shop's real pages
show both. The fork's checks run in their own process, under the fork's settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from recommender.loading import get_class
from recommender.serving import rungs

REPO = Path(__file__).resolve().parents[3]


def test_without_a_fork_the_classes_are_ours():
    assert get_class("recommender_serving.rungs", "Rungs") is rungs.Rungs
    assert get_class("recommender_serving.rungs", "BestSellers") is rungs.BestSellers


def test_a_forked_placement_and_rung_show_on_the_shops_pages(tmp_path):
    env = {**os.environ, "SHOP_VAR_DIR": str(tmp_path)}
    if env.get("DATABASE_URL"):  # a test database of its own: this suite's is in use
        env["DATABASE_URL"] = env["DATABASE_URL"].rsplit("/", 1)[0] + "/fork_project"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--ds=tests.fork_project.settings"]
    proc = subprocess.run(
        [*command, "tests/fork_project/check_fork.py"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "1 passed" in proc.stdout
