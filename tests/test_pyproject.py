"""Packaging metadata that installs quietly: setuptools prints deprecation blocks for a license
table, which read as failures in every install log."""

from __future__ import annotations

import re
import tomllib


def test_license_is_an_spdx_expression_string(repo_root):
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())
    assert project["project"]["license"] == "Apache-2.0"
    # PEP 639 strings need setuptools 77 or later in the build environment.
    requires = project["build-system"]["requires"]
    version = next(re.match(r"setuptools>=(\d+)", r) for r in requires if "setuptools" in r)
    assert int(version.group(1)) >= 77


def test_setup_script_shows_pip_progress_instead_of_silence(repo_root):
    setup = (repo_root / "scripts" / "setup").read_text()
    install = next(line for line in setup.splitlines() if '-e ".[$extra]"' in line)
    assert " -q " not in install
    assert "Collecting" in setup  # a line per package pip collects is passed through
