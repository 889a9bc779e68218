"""Cursors: pull one page at a time from a paged source, for lazily loading views.

A view asks for the next page in the background (`next_page`) and, once it has shown it on its
own thread, calls `ack` to move on. Until then the same page is handed out again: a fetch whose
result the view dropped (the user stopped loading, or scrolled on while it ran) loses no rows,
and two fetches never run on one cursor at once. `TokenCursor` follows server page tokens, so a
failed page is simply asked for again. `StreamCursor` pulls pages from an iterator (e.g. the
merged OR-search); after a failure it starts the iterator over, and the view skips the rows it
already has."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from traceviewer.core.cancel import CancelToken

PageFetcher = Callable[[str | None], tuple[list[Any], str | None]]


class _Cursor:
    def __init__(self) -> None:
        self.done = False
        self._lock = threading.Lock()
        # (rows, last page?, page token after it) of the page fetched but not acknowledged.
        self._pending: tuple[list[Any], bool, str | None] | None = None

    def next_page(self, cancel: CancelToken) -> list[Any]:
        with self._lock:
            if self._pending is None:
                cancel.check()
                self._pending = self._pull(cancel)
            return self._pending[0]

    def ack(self) -> None:
        """The page returned last has been shown: move past it."""
        with self._lock:
            if self._pending is not None:
                _rows, self.done, token = self._pending
                self._advance(token)
                self._pending = None

    def _pull(self, cancel: CancelToken) -> tuple[list[Any], bool, str | None]:
        raise NotImplementedError

    def _advance(self, token: str | None) -> None:
        pass


class TokenCursor(_Cursor):
    def __init__(self, fetch: PageFetcher):
        super().__init__()
        self._fetch = fetch
        self._token: str | None = None

    def _pull(self, cancel: CancelToken) -> tuple[list[Any], bool, str | None]:
        rows, token = self._fetch(self._token)
        return rows, token is None or not rows, token

    def _advance(self, token: str | None) -> None:
        self._token = token


class StreamCursor(_Cursor):
    """`start(token)` returns an iterator of pages; with `page_size`, every page but the last
    is that long (as `core.search.iter_traces` yields them), so a short page ends the stream
    without asking for another."""

    def __init__(self, start: Callable[[CancelToken], Iterator[list[Any]]],
                 page_size: int | None = None):
        super().__init__()
        self._start = start
        self._page_size = page_size
        self._pages: Iterator[list[Any]] | None = None

    def _pull(self, cancel: CancelToken) -> tuple[list[Any], bool, str | None]:
        if self._pages is None:
            # The stream outlives the fetch that started it (a cancelled fetch's page is kept
            # for the next one), so it gets a token of its own that is never cancelled.
            self._pages = self._start(CancelToken())
        try:
            rows = next(self._pages)
            return rows, self._page_size is not None and len(rows) < self._page_size, None
        except StopIteration:
            return [], True, None
        except BaseException:
            self._pages = None  # a generator that raised is finished: start over next time
            raise
