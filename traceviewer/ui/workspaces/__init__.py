"""Workspaces: the manager dialog, its form and the first-run screen."""
