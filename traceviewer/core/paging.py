"""Cursors: pull one page at a time from a paged source, for lazily loading views.

A cursor is advanced by one background task at a time. `TokenCursor` follows server page
tokens and only moves on after a page arrived, so a failed page can simply be asked for again.
`StreamCursor` pulls pages from an iterator (e.g. the merged OR-search); after a failure it
starts the iterator over, and the view drops the rows it already has."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from traceviewer.core.cancel import CancelToken

PageFetcher = Callable[[str | None], tuple[list[Any], str | None]]


class TokenCursor:
    def __init__(self, fetch: PageFetcher):
        self._fetch = fetch
        self._token: str | None = None
        self.done = False

    def next_page(self, cancel: CancelToken) -> list[Any]:
        cancel.check()
        rows, token = self._fetch(self._token)
        self._token = token
        self.done = token is None or not rows
        return rows


class StreamCursor:
    def __init__(self, start: Callable[[CancelToken], Iterator[list[Any]]]):
        self._start = start
        self._pages: Iterator[list[Any]] | None = None
        self.done = False

    def next_page(self, cancel: CancelToken) -> list[Any]:
        if self._pages is None:
            self._pages = self._start(cancel)
        try:
            return next(self._pages)
        except StopIteration:
            self.done = True
            return []
        except BaseException:
            self._pages = None  # a generator that raised is finished: start over next time
            raise
