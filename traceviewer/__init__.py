"""Trace Viewer: a fast native desktop viewer for MLflow traces."""

import sys

__version__ = "0.1.0"

# httpx imports its command-line client (rich, click, pygments: about 0.1 s) whenever those are
# installed; Trace Viewer never runs it, so that import is skipped (httpx then leaves it out).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
