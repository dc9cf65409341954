"""What went where in a demo run, as `manage.py demo run` prints it: pure, no I/O.

Per queue, `arrived` is counted from what left it: acked by a worker, rejected without
requeue, dead-lettered for expiry or overflow (seen in the `x-death` of messages read from
a dead-letter queue) and what is still ready at the end. It equals `expected` (what the
scenario's `expect` lists say its publishers' messages should reach) when routing went as
the scenario says, after a drain.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from flows.demo.run import RunReport
from flows.demo.scenario import Scenario


@dataclass(frozen=True)
class QueueRow:
    queue: str
    expected: int
    arrived: int
    consumed: int
    redelivered: int
    requeued: int
    rejected: int
    left: int | None
    dead_lettered: Counter[str] = field(default_factory=Counter)  # by reason


def queue_rows(scenario: Scenario, report: RunReport) -> list[QueueRow]:
    deaths: dict[str, Counter[str]] = {q.name: Counter() for q in scenario.queues}
    for counts in report.workers.values():
        for (queue, reason), n in counts.deaths.items():
            deaths.setdefault(queue, Counter())[reason] += n
    rows = []
    for queue in (q.name for q in scenario.queues):
        workers = [c for c in report.workers.values() if c.queue == queue]
        consumed = sum(c.acked for c in workers)
        rejected = sum(c.rejected for c in workers)
        left = report.depths.get(queue)
        # Rejections are counted by the worker that rejected; expiry and overflow only show
        # in the dead letters.
        died_alone = deaths[queue]["expired"] + deaths[queue]["maxlen"]
        rows.append(
            QueueRow(
                queue=queue,
                expected=sum(p.expected.get(queue, 0) for p in report.publishers.values()),
                arrived=consumed + rejected + died_alone + (left or 0),
                consumed=consumed,
                redelivered=sum(c.redelivered for c in workers),
                requeued=sum(c.requeued for c in workers),
                rejected=rejected,
                left=left,
                dead_lettered=deaths[queue],
            )
        )
    return rows


def _table(
    header: Sequence[str], rows: Sequence[Sequence[object]], *, text_columns: int = 1
) -> list[str]:
    """Names left-aligned (the first `text_columns`), numbers right-aligned."""
    cells = [list(header)] + [["-" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        aligned = [
            value.ljust(width) if index < text_columns else value.rjust(width)
            for index, (value, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(aligned).rstrip()

    return [line(row) for row in cells]


def format_report(scenario: Scenario, report: RunReport) -> str:
    lines = [
        f"{scenario.name}: {scenario.title}",
        f"vhost {report.vhost!r}, {report.seconds:.1f} s",
        "",
    ]
    lines += _table(
        ("publisher", "published", "unroutable", "nacked"),
        [(name, c.published, c.returned, c.nacked) for name, c in report.publishers.items()],
    )
    lines.append("")
    rows = queue_rows(scenario, report)
    lines += _table(
        (
            "queue",
            "expected",
            "arrived",
            "consumed",
            "redelivered",
            "requeued",
            "dead-lettered",
            "left",
        ),
        [
            (
                r.queue,
                r.expected,
                r.arrived,
                r.consumed,
                r.redelivered,
                r.requeued,
                sum(r.dead_lettered.values()),
                r.left,
            )
            for r in rows
        ],
    )
    lines.append("")
    lines += _table(
        ("worker", "queue", "deliveries", "acked", "requeued", "rejected", "replied"),
        [
            (name, c.queue, c.deliveries, c.acked, c.requeued, c.rejected, c.replied)
            for name, c in report.workers.items()
        ],
        text_columns=2,
    )
    deaths = [
        f"{r.queue}: " + ", ".join(f"{reason} {n}" for reason, n in sorted(r.dead_lettered.items()))
        for r in rows
        if r.dead_lettered
    ]
    if deaths:
        lines += ["", "dead-lettered (x-death): " + "; ".join(deaths)]
    if report.errors:
        lines += ["", "errors:"] + [f"  {name}: {error}" for name, error in report.errors.items()]
    return "\n".join(lines) + "\n"
