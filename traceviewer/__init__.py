"""Trace Viewer: a fast native desktop viewer for MLflow traces."""

__version__ = "0.1.0"
