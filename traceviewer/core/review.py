"""Human review: label schemas, label values, assessment bodies and resumable review queues.

A label schema says what a reviewer records for an experiment (name, type, options, required).
Schemas are kept per workspace and experiment in the config dir; without one, the seed's
`response_is_correct` (yes/no plus a comment) applies. Review-queue state (which traces, where the
reviewer is, what was labelled) is saved after every step in the data dir, so a queue resumes
after a restart."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from traceviewer.core import paths
from traceviewer.core.errors import ConfigError, UsageError
from traceviewer.core.fmt import number
from traceviewer.core.model import Assessment
from traceviewer.core.storage import JsonFile

KINDS = ("boolean", "number", "text", "category")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")

Value = bool | int | float | str


def parse_value(text: str) -> Value:
    """`true`/`false` (any case) -> bool, an integer or decimal number -> int/float, else text."""
    stripped = text.strip()
    if stripped.lower() in ("true", "false"):
        return stripped.lower() == "true"
    if _NUMBER.fullmatch(stripped):
        number = float(stripped)
        return int(stripped) if stripped.lstrip("+-").isdigit() else number
    return text


def format_value(value: Any) -> str:
    """A label value as a reviewer reads it: yes/no for booleans, numbers without `.0`."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def glance_value(value: Any) -> str:
    """A feedback value read at a glance: ✓ or ✗ for booleans, numbers with thousands
    separators, categories and text as they are."""
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, int | float):
        return number(value)
    return format_value(value)


FEEDBACK_SEPARATOR = " · "


def _feedback(assessments: Sequence[Assessment]) -> list[Assessment]:
    return [a for a in assessments if a.kind == "feedback" and a.valid]


def _named(a: Assessment) -> str:
    return f"{a.name}: {'error' if a.error else glance_value(a.value)}"


def feedback_glance(assessments: Sequence[Assessment]) -> str:
    """Valid feedback as `name: value` joined by ' · ' (`response_is_correct: ✗`); a failed
    judge's value reads `error`."""
    return FEEDBACK_SEPARATOR.join(_named(a) for a in _feedback(assessments))


def feedback_lines(assessments: Sequence[Assessment]) -> str:
    """Valid feedback one per line, whole: `name: value (by source)`, then the rationale or the
    judge's error."""
    lines = []
    for a in _feedback(assessments):
        line = _named(a)
        if a.source_id:
            line += f" (by {a.source_id})"
        note = a.error or a.rationale
        if note:
            line += f" — {' '.join(note.split())}"
        lines.append(line)
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class LabelSchema:
    """One thing a reviewer records: `boolean` (yes/no), `number`, `text` or one of `options`."""

    name: str
    kind: str = "boolean"
    options: tuple[str, ...] = ()
    required: bool = True
    comment: bool = True  # offer a free-text rationale next to the value
    assessment_kind: str = "feedback"  # or "expectation"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"Label {self.name!r}: type must be one of {', '.join(KINDS)}, "
                              f"not {self.kind!r}.")
        if self.kind == "category" and not self.options:
            raise ConfigError(f"Label {self.name!r} is a category label but lists no options.")

    def coerce(self, value: Value) -> Value:
        """Check (and convert) a value for this label; UsageError says what is accepted."""
        if self.kind == "boolean":
            if isinstance(value, str):
                value = {"y": True, "yes": True, "n": False, "no": False}.get(
                    value.strip().lower(), parse_value(value))
            if not isinstance(value, bool):
                raise UsageError(f"{self.name} takes yes/no (true/false), not {value!r}.")
        elif self.kind == "number":
            if isinstance(value, str):
                value = parse_value(value)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise UsageError(f"{self.name} takes a number, not {value!r}.")
        elif self.kind == "category":
            value = str(value)
            if value not in self.options:
                raise UsageError(f"{self.name} takes one of {', '.join(self.options)}, "
                                 f"not {value!r}.")
        else:
            value = str(value)
        return value

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> LabelSchema:
        """Read a schema as stored in the config file."""
        return cls(name=str(d["name"]), kind=d.get("kind", "boolean"),
                   options=tuple(d.get("options", ())), required=bool(d.get("required", True)),
                   comment=bool(d.get("comment", True)),
                   assessment_kind=d.get("assessment_kind", "feedback"))


# The seed document's `/chat_feedback` label: was the response correct, plus a comment.
DEFAULT_SCHEMAS = (LabelSchema("response_is_correct", "boolean", required=True, comment=True),)


Schemas = dict[str, tuple[LabelSchema, ...]]


def _parse_schemas(data: Any) -> Schemas:
    if not isinstance(data, dict):
        raise ValueError("it is not a map of experiments")
    return {key: tuple(LabelSchema.from_json(d) for d in stored) for key, stored in data.items()}


def _dump_schemas(schemas: Schemas) -> dict[str, Any]:
    return {key: [asdict(s) for s in stored] for key, stored in schemas.items()}


class SchemaStore:
    """Label schemas per workspace and experiment (`review_schemas.json` in the config dir).

    Settings the user made: a damaged file is set aside with a ConfigError (see `storage`)."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else paths.config_dir() / "review_schemas.json"
        self._file = JsonFile(self.path, _parse_schemas, dict, dump=_dump_schemas,
                              what="file of label schemas", regenerable=False)

    @staticmethod
    def _key(workspace: str, experiment_id: str) -> str:
        return f"{workspace}\x1f{experiment_id}"

    def get(self, workspace: str, experiment_id: str) -> tuple[LabelSchema, ...]:
        """The experiment's schemas, or the default `response_is_correct`."""
        return self._file.read().get(self._key(workspace, experiment_id)) or DEFAULT_SCHEMAS

    def set(self, workspace: str, experiment_id: str, schemas: Sequence[LabelSchema]) -> None:
        """Replace the experiment's schemas (an empty list restores the default)."""
        names = [s.name for s in schemas]
        if len(set(names)) != len(names):
            raise ConfigError("Two labels have the same name; label names must be unique.")
        key = self._key(workspace, experiment_id)

        def set_schemas(data: Schemas) -> Schemas:
            if schemas:
                data[key] = tuple(schemas)
            else:
                data.pop(key, None)
            return data

        self._file.update(set_schemas)


def assessment_body(name: str, value: Any, source_id: str, *, rationale: str | None = None,
                    kind: str = "feedback", overrides: str | None = None) -> dict[str, Any]:
    """The REST `assessment` object for a human label (source type HUMAN, `source_id` the
    reviewer)."""
    if not source_id:
        raise UsageError("Labels need a reviewer identity: set the workspace's reviewer "
                         "or pass --source-id.")
    body: dict[str, Any] = {"assessment_name": name,
                            "source": {"source_type": "HUMAN", "source_id": source_id},
                            kind: {"value": value}}
    if rationale:
        body["rationale"] = rationale
    if overrides:
        body["overrides"] = overrides
    return body


@dataclass(frozen=True, slots=True)
class QueueState:
    """Where a reviewer is in a queue of traces; saved after every step."""

    workspace: str
    host: str
    experiment_id: str
    title: str
    trace_ids: tuple[str, ...]
    position: int = 0
    # trace id -> outbox item ids of the labels given in this queue (for undo and progress)
    labelled: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    skipped: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """Stable id of the queue: same workspace, host, experiment and traces, same queue."""
        digest = hashlib.sha256("\x1f".join(
            (self.workspace, self.host, self.experiment_id, *self.trace_ids)).encode())
        return digest.hexdigest()[:20]

    @property
    def current(self) -> str | None:
        """The trace under review, None for an empty queue."""
        return self.trace_ids[self.position] if self.trace_ids else None

    @property
    def done(self) -> int:
        """How many traces have a label or were skipped."""
        return len(set(self.labelled) | set(self.skipped))

    def at(self, position: int) -> QueueState:
        """The same queue at another position (clamped to the queue)."""
        return replace(self, position=max(0, min(position, len(self.trace_ids) - 1)))

    def with_label(self, trace_id: str, item_ids: Sequence[int]) -> QueueState:
        """Record the outbox items of the labels just given for `trace_id`."""
        labelled = {**self.labelled, trace_id: tuple(item_ids)}
        skipped = tuple(t for t in self.skipped if t != trace_id)
        return replace(self, labelled=labelled, skipped=skipped)

    def without_label(self, trace_id: str) -> QueueState:
        """Forget the labels of `trace_id` (after an undo)."""
        return replace(self, labelled={k: v for k, v in self.labelled.items() if k != trace_id})

    def with_skip(self, trace_id: str) -> QueueState:
        """Mark `trace_id` as skipped."""
        if trace_id in self.skipped or trace_id in self.labelled:
            return self
        return replace(self, skipped=(*self.skipped, trace_id))

    def without_skip(self, trace_id: str) -> QueueState:
        """Forget that `trace_id` was skipped (after an undo)."""
        return replace(self, skipped=tuple(t for t in self.skipped if t != trace_id))

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        d = asdict(self)
        d["labelled"] = {k: list(v) for k, v in self.labelled.items()}
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> QueueState:
        """Read the stored form."""
        return cls(workspace=d["workspace"], host=d["host"], experiment_id=d["experiment_id"],
                   title=d.get("title", ""), trace_ids=tuple(d["trace_ids"]),
                   position=int(d.get("position", 0)),
                   labelled={k: tuple(v) for k, v in d.get("labelled", {}).items()},
                   skipped=tuple(d.get("skipped", ())))


def _dump_queue(state: QueueState | None) -> dict[str, Any]:
    if state is None:
        raise ValueError("no review queue to save")
    return state.to_json()


class QueueStore:
    """Saved review queues, one JSON file each under `<data dir>/review-queues`.

    Progress the app fills in again: a damaged queue file is set aside and that queue starts
    afresh (see `storage`)."""

    def __init__(self, directory: Path | None = None):
        self.directory = Path(directory) if directory else paths.data_dir() / "review-queues"

    def _file(self, path: Path) -> JsonFile[QueueState | None]:
        return JsonFile(path, QueueState.from_json, lambda: None, dump=_dump_queue,
                        what="saved review queue", regenerable=True)

    def save(self, state: QueueState) -> None:
        """Store `state` atomically (called after every reviewer step)."""
        self._file(self.directory / f"{state.key}.json").write(state)

    def load(self, key: str) -> QueueState | None:
        """A saved queue by key, None if there is none."""
        return self._file(self.directory / f"{key}.json").read()

    def resume(self, state: QueueState) -> QueueState:
        """The saved progress of the same queue if there is one, else `state` itself."""
        return self.load(state.key) or state

    def list(self) -> list[QueueState]:
        """Every saved queue, most recently saved first."""
        if not self.directory.is_dir():
            return []
        files = sorted(self.directory.glob("*.json"), key=lambda p: p.stat().st_mtime,
                       reverse=True)
        return [state for p in files if (state := self._file(p).read()) is not None]
