"""``python -m benchmarks [--quick] [--only SUITE ...] [--out DIR]``.

Prints a table of ratios (subject vs what a user would otherwise use), and writes ``results.json``
(every round's raw figure, the medians, the machine and versions) and ``ratios.png`` to ``--out``.
Never part of the test suite's pass/fail: a missed target is reported ("BELOW TARGET"), not raised.
``--quick`` runs every suite with tiny sizes, only to prove the benchmarks still run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _setup_django(db_dir: Path) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    os.environ["BENCH_DB"] = str(db_dir / "bench.sqlite3")
    import django

    django.setup()
    from django.core.management import call_command

    from benchmarks.models import Row

    call_command("migrate", run_syncdb=True, verbosity=0)
    if not Row.objects.exists():
        Row.objects.create(name="benchmark row")
    from django.db import connections

    connections.close_all()


def _environment() -> dict[str, str]:
    import asgiref
    import django

    versions = {
        "python": platform.python_version(),
        "django": django.get_version(),
        "asgiref": asgiref.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
    }
    import importlib.util

    import uvicorn

    parser = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    versions["uvicorn"] = f"{uvicorn.__version__} ({parser}, {loop})"
    return versions


def main(argv: list[str] | None = None) -> int:
    from benchmarks.report import ratio_text, verdict_text
    from benchmarks.suites import FULL, QUICK, SUITES

    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: prove the suites run")
    parser.add_argument("--only", nargs="+", choices=sorted(SUITES), help="run these suites")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="where results go")
    args = parser.parse_args(argv)

    config = QUICK if args.quick else FULL
    args.out.mkdir(parents=True, exist_ok=True)
    names = args.only or list(SUITES)
    with tempfile.TemporaryDirectory() as db_dir:
        _setup_django(Path(db_dir))
        env = _environment()
        print("django-async-toolkit benchmarks: " + ", ".join(f"{k} {v}" for k, v in env.items()))
        results = []
        for name in names:
            started = time.perf_counter()
            print(f"- {name} ...", flush=True)
            results += SUITES[name](config)
            print(f"  done in {time.perf_counter() - started:.1f} s", flush=True)

    width = max(len(r.name) for r in results)
    print()
    print(
        f"{'benchmark'.ljust(width)}  {'ratio':>7}  target        verdict       "
        "subject vs baseline (medians)"
    )
    for r in results:
        sub, base = r.median(r.subject), r.median(r.baseline)
        row = r.as_dict()
        print(
            f"{r.name.ljust(width)}  {ratio_text(row):>7}  {r.target or '-':12}  "
            f"{verdict_text(row):12}  "
            f"{r.subject}: {sub:,.4g} vs {r.baseline}: {base:,.4g} {r.unit}"
        )
        if "difference_ms" in r.extra:
            print(f"{''.ljust(width)}  difference: {r.extra['difference_ms']:+.1f} ms")
    payload = {
        "environment": env,
        "quick": args.quick,
        "rounds": config.rounds,
        "micro_rounds": config.micro_rounds,
        "command_runs": config.command_runs,
        "results": [r.as_dict() for r in results],
    }
    (args.out / "results.json").write_text(json.dumps(payload, indent=2) + "\n")
    from benchmarks.chart import render

    (args.out / "ratios.png").write_bytes(render([payload]))
    print(f"\nwrote {args.out / 'results.json'} and {args.out / 'ratios.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
