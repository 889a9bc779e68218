"""OR in filter strings: groups of AND-ed clauses joined by OR, run as separate server queries.

MLflow's filter language has AND only. The app writes and reads `a AND b OR c`,
`(a AND b) OR (c AND d)` and any nesting of parentheses (turned into groups: OR of ANDs), plus
`IN (…)` / `NOT IN (…)` over fields the server cannot IN-match (tags, metadata, session, user,
trace name, assessments): `user IN ('a', 'b')` is the OR of `user = 'a'` and `user = 'b'`,
`NOT IN` the AND of `!=`. `server_filters` gives the AND-only strings whose union is the filter;
`core.search.iter_traces` runs and merges them (ordered, each trace once, lazily)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from traceviewer.core import filters as flt
from traceviewer.core.errors import BadFilter
from traceviewer.core.filters import LIST_OPS, Clause, FieldSpec, ValueKind

Groups = list[list[Clause]]

_TEXT_KINDS = (ValueKind.TEXT, ValueKind.CHOICE, ValueKind.ASSESSMENT)
# One server query per AND-only alternative, each paged within the host's request budget
# (core.pacing: 20 searches/s on Databricks): more than this is refused rather than slow.
MAX_QUERIES = 24


def expands_in(spec: FieldSpec, op: str) -> bool:
    """True if `op` (IN / NOT IN) on this field is written for the app only: the server has no
    IN there, so it becomes OR-ed `=` (or AND-ed `!=`) server clauses."""
    return op in LIST_OPS and op not in spec.ops and _can_expand(spec)


def _can_expand(spec: FieldSpec) -> bool:
    return spec.kind in _TEXT_KINDS and "=" in spec.ops and "!=" in spec.ops


def ops(spec: FieldSpec) -> tuple[str, ...]:
    """The operators a builder row may offer for a field (the server's, plus expanded IN)."""
    if _can_expand(spec) and "IN" not in spec.ops:
        return (*spec.ops, *LIST_OPS)
    return spec.ops


def render(clause: Clause, now_ms: int | None = None) -> str:
    """One clause as filter text; IN over a field without a server IN is written as IN too."""
    spec = clause.spec
    if not expands_in(spec, clause.op):
        return flt.render(clause, now_ms)
    values = clause.value if isinstance(clause.value, tuple) else ()
    if not values:
        raise BadFilter(f"{clause.op} on {spec.label} needs a list of values.")
    for value in values:  # each value must be writable as the = it expands to
        flt.render(Clause(clause.field, "=", value), now_ms)
    return f"{flt.field_key(clause.field)} {clause.op} ({', '.join(map(repr, values))})"


def _build_and(group: Sequence[Clause], now_ms: int | None) -> str:
    return " AND ".join(render(c, now_ms) for c in group)


def build(groups: Sequence[Sequence[Clause]], now_ms: int | None = None) -> str:
    """The filter string of groups OR-ed ('' when any group is empty: it matches everything).
    One group is written as plain AND; with several, groups of two or more are parenthesised."""
    if not groups or any(not g for g in groups):
        return ""
    if len(groups) == 1:
        return _build_and(groups[0], now_ms)
    return " OR ".join(f"({_build_and(g, now_ms)})" if len(g) > 1 else _build_and(g, now_ms)
                       for g in groups)


class _GroupParser(flt._Parser):  # the clause grammar is shared, not copied
    """The clause grammar of `core.filters` with OR, parentheses and expanded IN on top."""

    def parse_groups(self) -> Groups:
        if self.tok.kind == "end":
            return []
        groups = self.disjunction()
        if self.tok.kind != "end":
            if self.tok.text == ")":
                raise self.fail("This ) closes no (")
            raise self.fail(f"Expected AND or OR between conditions, found {flt._show(self.tok)}")
        return groups

    def disjunction(self) -> Groups:
        groups = self.conjunction()
        while self.word() == "OR":
            self.take()
            groups = groups + self.conjunction()
        return groups

    def conjunction(self) -> Groups:
        groups = self.term()
        while self.word() == "AND":
            self.take()
            if self.tok.kind == "end":  # a trailing AND is tolerated, as the server does
                break
            right = self.term()
            groups = [a + b for a in groups for b in right]
        return groups

    def term(self) -> Groups:
        if self.tok.kind == "punct" and self.tok.text == "(":
            opening = self.take()
            if self.tok.text == ")":
                raise self.fail("Empty parentheses: put conditions inside")
            groups = self.disjunction()
            if not (self.tok.kind == "punct" and self.tok.text == ")"):
                raise self.fail(f"Expected ) to close the ( at character {opening.pos + 1}, "
                                f"found {flt._show(self.tok)}")
            self.take()
            return groups
        return [[self.clause()]]

    def clause(self) -> Clause:
        tok = self.tok
        if self.word() == "NOT":
            raise self.fail("MLflow filters have no NOT: use !=, NOT IN or IS NULL instead")
        if self.word() in ("AND", "OR"):
            raise self.fail(f"Expected a condition before {tok.text}")
        field = self.identifier()
        op_tok = self.tok
        op = self.operator()
        spec = flt.split_field(field)[0]
        allowed = ops(spec)
        if op not in allowed:
            raise self.fail(f"{spec.label} does not support {op}; use one of: "
                            + ", ".join(allowed), op_tok)
        return Clause(field, op, self.value(spec, op))


def parse(text: str) -> Groups:
    """Groups (OR of AND-ed clauses) of a filter string with AND, OR and parentheses; nested
    parentheses are multiplied out: `(a OR b) AND c` is `(a AND c) OR (b AND c)`. [] for a
    blank string. Raises BadFilter with the 0-based `position` of the problem."""
    return _GroupParser(text).parse_groups()


def _alternatives(clause: Clause) -> list[list[Clause]]:
    """Server clauses for one clause: IN without a server IN -> one alternative per value."""
    if not expands_in(clause.spec, clause.op):
        return [[clause]]
    values = clause.value if isinstance(clause.value, tuple) else ()
    if clause.op == "IN":
        return [[Clause(clause.field, "=", v)] for v in values]
    return [[Clause(clause.field, "!=", v) for v in values]]


def server_filters(groups: Sequence[Sequence[Clause]], now_ms: int | None = None) -> list[str]:
    """The AND-only server filter strings whose union is the filter, first group's first, each
    once ([''] for no groups: every trace)."""
    if not groups or any(not g for g in groups):
        return [""]
    strings: list[str] = []
    for group in groups:
        for combo in itertools.product(*(_alternatives(c) for c in group)):
            strings += flt.alternatives([c for part in combo for c in part], now_ms)
    return list(dict.fromkeys(strings))


def joined(first: Sequence[Clause], rest: Sequence[Sequence[Clause]]) -> list[list[Clause]]:
    """The AND groups of a filter kept as its first group and the groups OR-ed with it
    ([] for every trace)."""
    return ([list(first)] if first or rest else []) + [list(g) for g in rest]


def cost(groups: Sequence[Sequence[Clause]], now_ms: int | None = None) -> int:
    """How many server queries the filter takes."""
    return len(server_filters(groups, now_ms))


def checked_server_filters(groups: Sequence[Sequence[Clause]],
                           now_ms: int | None = None) -> list[str]:
    """`server_filters`, or BadFilter when they are more than MAX_QUERIES."""
    strings = server_filters(groups, now_ms)
    if len(strings) > MAX_QUERIES:
        raise BadFilter(
            f"This filter needs {len(strings)} server queries (MLflow has no OR, so every "
            f"alternative is a query of its own, and session/user look in tags and metadata); "
            f"at most {MAX_QUERIES} are run. Use fewer OR branches or IN values, or a LIKE "
            "pattern that covers several values.")
    return strings


def cost_text(groups: Sequence[Sequence[Clause]], now_ms: int | None = None) -> str:
    """What the UI says about a filter's cost: '' for one query."""
    try:
        n = cost(groups, now_ms)
    except BadFilter:
        return ""
    if n <= 1:
        return ""
    if n > MAX_QUERIES:
        return f"{n} server queries: too many (at most {MAX_QUERIES})"
    return f"{n} server queries, merged"
