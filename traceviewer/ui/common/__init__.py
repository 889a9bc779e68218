"""Pieces every feature uses: the background-task runner, the error banner, plain-text
helpers, the lazily paged table model and the palette."""
