"""Browsing an experiment: the experiments list, the trace table, its filter builder and the
export of a result."""
