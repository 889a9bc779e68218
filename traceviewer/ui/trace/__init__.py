"""The trace detail view: header, span tree, timeline and span inspector."""
