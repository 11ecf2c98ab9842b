"""``manage.py async_audit``: the project's async map and the thread hops each request path costs.

Text for a person, ``--json`` for tools (the document is versioned, see the docs' audit page), and
``--fail-on-hops N`` to fail a CI job when a request path costs more than ``N`` hops.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_async_toolkit import workers
from django_async_toolkit.audit import (
    INTERFACE_NAMES,
    MiddlewareReport,
    PathHops,
    ProjectAudit,
    audit_project,
)
from django_async_toolkit.conf import conf

LABELS = {"asgi": "ASGI", "wsgi": "WSGI"}


def _hop_limit(value: str) -> int:
    try:
        limit = int(value)
    except ValueError:
        limit = -1
    if limit < 0:
        raise ValueError(value)
    return limit


_hop_limit.__name__ = "number of hops (an integer of at least 0)"


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        (indent + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))).rstrip()
        for row in rows
    ]


def _middleware_cell(report: MiddlewareReport, interface: str) -> str:
    layer = report.layers[interface]
    mark = "" if layer.inspected else "*"
    return f"{layer.mode:<5} {layer.hops}{mark}"


def render_text(audit: ProjectAudit, interfaces: Sequence[str]) -> str:
    """The report a person reads: middleware, views, signals, then the worst request paths."""
    lines = [
        *_served_section(audit),
        *_workers_section(),
        *_middleware_section(audit),
        "",
        *_views_section(audit),
        "",
        *_signals_section(audit),
        "",
        *_worst_paths(audit, interfaces),
    ]
    return "\n".join(lines) + "\n"


def _served_section(audit: ProjectAudit) -> list[str]:
    served = " and ".join(LABELS[name] for name in audit.interfaces.names)
    if not (audit.interfaces.asgi or audit.interfaces.explicit):
        served += ", not known to be served by ASGI"
    return [
        f"Served by {served} ({audit.interfaces.source}).",
        "A hop is one thread switch on a request: a sync_to_async or async_to_sync call.",
        "",
    ]


def workers_document() -> dict[str, Any]:
    """The worker pool's size (``None``: Django's thread per request) and this process's figures
    (``None`` until its pool started: a server's pool lives in the server's process)."""
    stats = workers.pool_stats()
    return {"size": conf.SYNC_WORKERS, "stats": None if stats is None else asdict(stats)}


def _workers_section() -> list[str]:
    document = workers_document()
    if document["size"] is None:
        return ["Sync work: a thread per request (ASYNC_TOOLKIT_SYNC_WORKERS = None).", ""]
    line = f"Sync work: a pool of {document['size']} reused worker threads"
    stats = document["stats"]
    if stats is None:
        line += " (not started in this process)."
    else:
        line += ", now " + ", ".join(f"{key} {value}" for key, value in stats.items()) + "."
    return [line, ""]


def _middleware_section(audit: ProjectAudit) -> list[str]:
    lines = ["Middleware, outermost first (mode Django runs it in, hops per request):"]
    if not audit.middleware:
        return [*lines, "  (none)"]
    rows = [["", "kind", "ASGI", "WSGI"]]
    for report in audit.middleware:
        if report.used:
            cells = [_middleware_cell(report, name) for name in INTERFACE_NAMES]
        else:
            cells = ["not used (MiddlewareNotUsed)", ""]
        rows.append([report.path, report.kind, *cells])
    rows.append(["chain", "", *[f"{'':<5} {audit.chains[name].hops}" for name in INTERFACE_NAMES]])
    lines += _table(rows)
    extras = ", ".join(
        f"{LABELS[name]} +{audit.chains[name].template_response_hops}" for name in INTERFACE_NAMES
    )
    errors = ", ".join(
        f"{LABELS[name]} +{audit.chains[name].exception_hops}" for name in INTERFACE_NAMES
    )
    lines.append(f"  On a template response: {extras}.")
    lines.append(f"  When a view raises and a process_exception answers: {errors}.")
    if any(not layer.inspected for r in audit.middleware for layer in r.layers.values()):
        lines.append("  * has a __call__ of its own: hops inside it are not counted.")
    return lines


def _views_section(audit: ProjectAudit) -> list[str]:
    lines = ["Views (hops per request through the chain and the view):"]
    if not audit.views:
        return [*lines, "  (no URL pattern)"]
    rows = [["", "", "", "ASGI", "WSGI"]]
    for view in audit.views:
        hops = view.as_dict(audit.chains)["hops"]
        kind = "async" if view.is_async else "sync"
        rows.append(["/" + view.route, kind, view.view, str(hops["asgi"]), str(hops["wsgi"])])
    return lines + _table(rows)


def _signals_section(audit: ProjectAudit) -> list[str]:
    lines = ["Signals (connected receivers):"]
    for signal in audit.signals:
        lines.append(f"  {signal.signal}")
        for receiver in signal.receivers:
            kind = ("async" if receiver.is_async else "sync") + (
                ", background" if receiver.background else ""
            )
            sender = f"  (sender: {receiver.sender})" if receiver.sender else ""
            lines.append(f"    {kind:<17} {receiver.receiver}{sender}")
    if not audit.signals:
        lines.append("  (none)")
    return lines


def _worst_paths(audit: ProjectAudit, interfaces: Sequence[str]) -> list[str]:
    lines = []
    for name in interfaces:
        worst = max(audit.paths([name]), key=lambda path: path.hops)
        lines.append(f"Most hops on a request path under {LABELS[name]}: {_describe(worst)}.")
    return lines


def _describe(path: PathHops) -> str:
    where = f" for /{path.route} ({path.view})" if path.route is not None else " (the chain)"
    return f"{path.hops}{where}"


#: How many of the paths over the limit the error names; the report (or --json) has them all.
WORST_SHOWN = 5


def _over_message(over: Sequence[PathHops], limit: int) -> str:
    """One line: how many paths cost more than ``limit``, the worst few, a count of the rest."""
    worst = sorted(over, key=lambda path: -path.hops)  # stable: same-cost paths in URLconf order
    count = f"{len(over)} request path{'s' if len(over) != 1 else ''}"
    listed = "; ".join(f"{LABELS[p.interface]} {_describe(p)}" for p in worst[:WORST_SHOWN])
    message = f"{count} cost more than {limit} hop{'s' if limit != 1 else ''}"
    if len(worst) <= WORST_SHOWN:
        return f"{message}: {listed}."
    rest = len(worst) - WORST_SHOWN
    return (
        f"{message}; the worst {WORST_SHOWN}: {listed}; and {rest} more "
        f"(the report above, or --json, lists every path)."
    )


class Command(BaseCommand):
    help = (
        "Show which middleware, views and signal receivers run sync or async, and the thread "
        "hops (sync_to_async/async_to_sync switches) each request path costs under ASGI and WSGI."
    )
    # The audit is itself the check of what it reports; it must also run on a project that
    # has check warnings (W001 is what it explains).
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print the audit as a versioned JSON document, for tools.",
        )
        parser.add_argument(
            "--fail-on-hops",
            type=_hop_limit,
            metavar="N",
            help="Fail (exit status 1) when a request path costs more than N hops.",
        )
        parser.add_argument(
            "--interface",
            choices=[*INTERFACE_NAMES, "both"],
            help=(
                "The interface(s) --fail-on-hops and the summary hold to. Default: how the "
                "project is served (ASYNC_TOOLKIT_INTERFACE, or inferred from the settings)."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            audit = audit_project()
        except ImproperlyConfigured as exc:
            raise CommandError(f"The project cannot be audited: {exc}") from exc
        choice = options["interface"]
        if choice is None:
            interfaces = audit.interfaces.names
        elif choice == "both":
            interfaces = INTERFACE_NAMES
        else:
            interfaces = (choice,)
        limit = options["fail_on_hops"]

        if options["json"]:
            document = audit.as_dict()
            document["sync_workers"] = workers_document()
            if limit is not None:
                document["fail_on_hops"] = {
                    "limit": limit,
                    "interfaces": list(interfaces),
                    "over": [
                        {"interface": p.interface, "route": p.route, "hops": p.hops}
                        for p in self._over(audit, interfaces, limit)
                    ],
                }
            self.stdout.write(json.dumps(document, indent=2))
        else:
            self.stdout.write(render_text(audit, interfaces), ending="")

        if limit is None:
            return
        over = self._over(audit, interfaces, limit)
        if over:
            raise CommandError(_over_message(over, limit))

    @staticmethod
    def _over(audit: ProjectAudit, interfaces: Sequence[str], limit: int) -> list[PathHops]:
        return [path for path in audit.paths(interfaces) if path.hops > limit]
