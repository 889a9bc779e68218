"""A trace's assessments as they stand: the server's, with the outbox's writes applied.

Every view of assessments (the Trace tab's list, the review queue's form and earlier feedback,
the table's feedback column) shows `merge(...)` of the last trace info read and the outbox's
items for that trace, so a write is visible at once and a stale read (a cached trace, a trace
revisited in the queue) never hides it. A sent write counts when it finished after the read
(`read_at`): an earlier one is already in what the server answered.

Answering a review question goes through `answer`: one current answer per reviewer per question,
as MLflow's review app keeps it. The reviewer's earlier answer is updated (PATCH) rather than
joined by a second one; `undo` takes a change back."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from traceviewer.core.model import Assessment, TraceInfo
from traceviewer.core.outbox import Item, Outbox, Target
from traceviewer.core.review import assessment_body

if TYPE_CHECKING:
    from traceviewer.core.cancel import CancelToken
    from traceviewer.core.client import RestClient

UNSENT = ("pending", "parked")
EVERY_STATE = ("pending", "parked", "sent")


@dataclass(frozen=True, slots=True)
class Read:
    """A trace info as the server answered it, and when it was asked (epoch seconds)."""

    info: TraceInfo
    read_at: float


def read_info(client: RestClient, trace_id: str, token: CancelToken | None = None) -> Read:
    """Re-read a trace's info (assessments, tags, state) from the server."""
    read_at = time.time()  # before the request: a write finished while it runs may be missing
    return Read(client.get_trace_info(trace_id, token), read_at)


@dataclass(frozen=True, slots=True)
class Current:
    """One assessment once the outbox's writes are applied.

    `assessment` holds the values after queued edits (its id is "" while its create is queued);
    `queued` is the last write on it not yet sent, `create` its create while that is unsent,
    `deleted` says a delete of it waits to be sent."""

    assessment: Assessment
    queued: Item | None = None
    create: Item | None = None
    deleted: bool = False


def pending_items(outbox: Outbox, target: Target, trace_id: str) -> list[Item]:
    """The outbox items `merge` needs for one trace (unsent, and sent ones to date them)."""
    return outbox.items(states=EVERY_STATE, target=target, trace_id=trace_id)


def _from_body(item: Item, assessment_id: str) -> Assessment:
    body = item.payload
    kind = "expectation" if "expectation" in body else "feedback"
    source = body.get("source") or {}
    rationale, overrides = body.get("rationale"), body.get("overrides")
    return Assessment(
        assessment_id=assessment_id, name=str(body.get("assessment_name", "")),
        trace_id=item.trace_id, source_type=str(source.get("source_type", "HUMAN")),
        source_id=str(source.get("source_id", "")), kind=kind,
        value=(body.get(kind) or {}).get("value"),
        rationale=rationale if isinstance(rationale, str) else None,
        metadata=dict(body.get("metadata") or {}),
        create_time_ms=int(item.created * 1000),
        overrides=overrides if isinstance(overrides, str) and overrides else None)


def _edited(assessment: Assessment, fields: Mapping[str, Any]) -> Assessment:
    changes: dict[str, Any] = {}
    for kind in ("feedback", "expectation"):
        if isinstance(fields.get(kind), Mapping):
            changes.update(kind=kind, value=fields[kind].get("value"), error=None)
    if "rationale" in fields:
        changes["rationale"] = fields["rationale"] or None
    if fields.get("assessment_name"):
        changes["name"] = str(fields["assessment_name"])
    return replace(assessment, **changes)


def merge(assessments: Iterable[Assessment], items: Iterable[Item],
          read_at: float = 0.0) -> list[Current]:
    """The assessments read at `read_at` with the outbox's `items` of the same trace applied:
    unsent writes always, sent ones when they finished after the read. Oldest first; queued
    creates last. `read_at` 0 (unknown) applies every sent item not yet visible."""
    items = sorted(items, key=lambda i: i.item_id)
    by_submission = {i.submission_id: i for i in items}
    shown: dict[str, Current] = {
        a.assessment_id: Current(a)
        for a in sorted(assessments, key=lambda a: (a.create_time_ms or 0, a.assessment_id))}
    for item in items:
        if item.state == "discarded":
            continue
        unsent = item.state in UNSENT
        if not unsent and (item.finished or 0.0) < read_at:
            continue  # the read already holds its effect
        if item.op == "create":
            if item.assessment_id and item.assessment_id in shown:
                continue
            key = item.assessment_id or f"queued:{item.submission_id}"
            created = _from_body(item, item.assessment_id or "")
            shown[key] = Current(created, queued=item if unsent else None,
                                 create=item if unsent else None)
            old = shown.get(created.overrides or "")
            if old is not None:
                shown[old.assessment.assessment_id] = replace(
                    old, assessment=replace(old.assessment, valid=False))
            continue
        key = item.assessment_id or ""
        if not key and item.depends_on:
            create = by_submission.get(item.depends_on)
            key = (create.assessment_id if create is not None and create.assessment_id
                   else "") or f"queued:{item.depends_on}"
        current = shown.get(key)
        if current is None:
            continue  # deleted elsewhere, or its create was discarded
        if item.op == "update":
            shown[key] = replace(current, assessment=_edited(current.assessment, item.payload),
                                 queued=item if unsent else current.queued)
        elif unsent:
            shown[key] = replace(current, queued=item, deleted=True)
        else:
            del shown[key]
            old = shown.get(current.assessment.overrides or "")
            if old is not None:  # MLflow makes the overridden one valid again
                shown[old.assessment.assessment_id] = replace(
                    old, assessment=replace(old.assessment, valid=True))
    return list(shown.values())


def merged_info(info: TraceInfo, items: Iterable[Item], read_at: float = 0.0) -> TraceInfo:
    """`info` with its assessments as `merge` sees them (queued deletes left out), for views
    that show a TraceInfo (the table's feedback column)."""
    current = merge(info.assessments, items, read_at)
    return replace(info, assessments=tuple(c.assessment for c in current if not c.deleted))


def own_answer(current: Sequence[Current], reviewer: str, name: str) -> Current | None:
    """The reviewer's current answer to the question `name`: their newest valid HUMAN feedback
    of that name not being deleted; None when they have not answered it."""
    if not reviewer:
        return None
    mine = [c for c in current
            if not c.deleted and c.assessment.valid and c.assessment.name == name
            and c.assessment.kind == "feedback" and c.assessment.source_type == "HUMAN"
            and c.assessment.source_id == reviewer]
    return mine[-1] if mine else None


@dataclass(frozen=True, slots=True)
class Change:
    """One answer as queued: `item` the write (None when the answer already stood);
    `previous` the fields an undo restores (None: the answer was new, undo withdraws it)."""

    item: Item | None
    previous: Mapping[str, Any] | None = None


def answer(outbox: Outbox, target: Target, trace_id: str, current: Sequence[Current],
           reviewer: str, name: str, value: Any, rationale: str | None = None) -> Change:
    """Queue the reviewer's answer to question `name`: a new feedback when they have none, else
    an update of the one they gave (nothing when it already says this). `rationale` None leaves
    an earlier rationale as it is; "" clears it."""
    own = own_answer(current, reviewer, name)
    if own is None:
        body = assessment_body(name, value, reviewer, rationale=rationale or None)
        return Change(outbox.add_create(target, trace_id, body))
    old = own.assessment
    fields: dict[str, Any] = {"feedback": {"value": value}}
    if rationale is not None:
        fields["rationale"] = rationale
    if old.value == value and type(old.value) is type(value) and (
            rationale is None or (old.rationale or "") == rationale):
        return Change(None)
    previous = {"feedback": {"value": old.value}, "rationale": old.rationale or ""}
    if own.create is not None:
        item = outbox.add_update(target, trace_id, fields, after=own.create)
    else:
        item = outbox.add_update(target, trace_id, fields, assessment_id=old.assessment_id)
    return Change(item, previous)


def retract(outbox: Outbox, item: Item) -> Item | None:
    """Undo a queued create: withdraw it if it never left, else queue the delete of what it
    created. Returns the delete item, if one was needed."""
    if outbox.withdraw(item):
        return None
    return outbox.add_delete(item.target, item.trace_id, after=item)


def undo(outbox: Outbox, change: Change) -> None:
    """Take back an `answer`: a new one is withdrawn (or deleted once sent); an update is
    withdrawn while unsent, else the earlier value is written back."""
    item = change.item
    if item is None:
        return
    if change.previous is None:
        retract(outbox, item)
        return
    if outbox.withdraw(item):
        return
    current = outbox.get(item.item_id)
    if current.assessment_id:
        outbox.add_update(item.target, item.trace_id, change.previous,
                          assessment_id=current.assessment_id)
    else:  # still waiting for its create: the reverse waits for it too
        create = next(i for i in outbox.items(states=EVERY_STATE, trace_id=item.trace_id)
                      if i.submission_id == current.depends_on)
        outbox.add_update(item.target, item.trace_id, change.previous, after=create)
