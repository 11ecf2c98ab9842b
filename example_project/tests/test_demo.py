"""``scripts/demo``'s driver and load generator, and the stock configuration it compares with."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import demo
import httpx
import pytest
from e2e import Upstream
from loadgen import run_load

DEMO = Path(demo.__file__)


def demo_env(tmp_path: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE", "ORDERS_STACK"}
    }
    env["DEMO_RUN_DIR"] = str(tmp_path)
    return env


async def test_load_generator_counts_and_measures(upstream: Upstream) -> None:
    def plan(number: int) -> tuple[str, str]:
        return ("GET", "/health") if number % 2 else ("GET", "/nowhere")

    result = await run_load(upstream.url, plan, requests=40, concurrency=4)
    assert result.sent == 40
    assert result.statuses == {200: 20, 404: 20}
    assert (result.ok, result.errors) == (20, 20)
    assert len(result.latencies) == 40
    assert 0 < result.percentile(0.5) <= result.percentile(0.99)
    assert result.requests_per_second > 0


async def test_load_generator_stays_on_this_machine() -> None:
    with pytest.raises(ValueError, match="only ever sent to this machine"):
        await run_load("http://example.com", lambda n: ("GET", "/"), requests=1, concurrency=1)
    with pytest.raises(ValueError, match="at least 1"):
        await run_load("http://127.0.0.1:9", lambda n: ("GET", "/"), requests=0, concurrency=1)


def test_stock_configuration_serves_the_same_app(
    subprocess_env: dict[str, str], upstream: Upstream, tmp_path: Path
) -> None:
    with demo.Processes(subprocess_env, run_dir=tmp_path) as procs:
        site = demo.start_site(procs, "stock")
        assert httpx.get(site.url + "/", timeout=10).json()["stack"] == "stock"
        fetched = httpx.post(site.url + "/orders/fetch/", timeout=30).json()
        assert fetched["created"] == 20
        response = httpx.get(site.url + "/orders/", params={"status": "paid"}, timeout=10)
        assert response.status_code == 200
        assert response.headers["server-timing"].startswith("app;dur=")
        assert len(response.headers["x-request-id"]) == 32
        events = httpx.get(site.url + "/demo/blocking-events/", timeout=10).json()
        assert events == {"running": False, "count": 0, "events": []}
        order = response.json()["results"][0]["id"]
        assert httpx.post(site.url + f"/orders/{order}/ship/", timeout=10).status_code == 200
        assert upstream.api.webhooks == []  # a task in the queue, until a worker runs it
        procs.manage("db_worker", "--batch", "--no-startup-delay")
        [delivery] = upstream.api.wait_for_webhooks(1, timeout=10)
        assert delivery["body"]["order"] == order
        assert procs.stop(site) in (0, -signal.SIGTERM)
        assert procs.servers == []


def test_a_server_that_cannot_start_is_reported(tmp_path: Path) -> None:
    with (
        demo.Processes(demo_env(tmp_path), run_dir=tmp_path) as procs,
        pytest.raises(demo.DemoError, match="did not start") as failure,
    ):
        procs.start_server("broken", "no_such_module:app")
    assert "no_such_module" in str(failure.value)
    assert procs.servers == []


def test_a_failing_command_is_reported(tmp_path: Path) -> None:
    procs = demo.Processes(demo_env(tmp_path), run_dir=tmp_path)
    with pytest.raises(demo.DemoError, match="manage.py no_such_command exited with 1"):
        procs.manage("no_such_command")


def test_the_demo_end_to_end(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(DEMO), "--requests", "80", "--seconds", "3", "--concurrency", "4"],
        env=demo_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for step in (
        "migrate",
        "async_audit                thread hops per request under ASGI, at most: 0 with the "
        "toolkit's middleware, 2 with the sync-only stack",
        "RunPythonAsync migration   0002_seed_statuses seeded 5",
        "async view + httpx",
        "AsyncBaseCommand",
        "async list view",
        "background_receiver",
        "TimeoutMiddleware          a 5 s request was cancelled and answered 504",
        "ConcurrencyLimitMiddleware 40 requests at once, limit 32: ",
        "BlockingDetector           GET /demo/block/ stalled the loop",
        "Server-Timing              GET /health/: loop-lag;dur=",
        "load: toolkit",
        "load: Django",
        "db_worker                  manage.py db_worker (pid ",
        "delivered by db_worker",
        "stopped                    orders service (lifespan shutdown)",
        "stopped                    db_worker (webhooks delivered)",
    ):
        assert step in out, f"{step!r} missing from:\n{out}"
    # How many are shed depends on how many arrive together: not asserted on a loaded machine.
    assert re.search(r"limit 32: \d+ served, \d+ shed with 503", out), out
    assert re.search(r"webhooks delivered +(\d+) of \1 +(\d+) of \2", out), out
    assert re.search(r"blocking events seen +\d+ +n/a \(no detector\)", out), out
    assert (tmp_path / "orders.sqlite3").exists()


def test_serve_keeps_the_servers_until_ctrl_c(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, str(DEMO), "--serve"],
        env=demo_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    serving = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Serving; press Ctrl-C"):
                serving.set()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        assert serving.wait(120), "".join(lines)
        urls = set(re.findall(r"(?:service|API) +(http://127\.0\.0\.1:\d+)", "".join(lines)))
        assert len(urls) == 2, "".join(lines)
        for url in urls:
            assert httpx.get(url + "/", timeout=10).status_code in (200, 404)
        process.send_signal(signal.SIGINT)
        process.wait(60)
    finally:
        if process.poll() is None:  # the test failed: still stop the servers
            process.terminate()
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader.join(10)
        assert process.stderr is not None
        stderr = process.stderr.read()
        process.stdout.close()  # type: ignore[union-attr]
        process.stderr.close()
    assert process.returncode == 0, stderr
    assert "".join(lines).splitlines()[-1].endswith("upstream order API")
    for url in urls:
        with pytest.raises(httpx.TransportError):
            httpx.get(url + "/", timeout=2)
