"""The worker: event-driven passes, reconciliation on demand, one connector never delaying another"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from api.connectors.worker import Worker
from tests.connectors.conftest import approved, connect
from tests.fakes.square import fake_square
from tests.helpers import add_treatment, decide


@contextmanager
def worker_running(app, said) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(target=Worker(app, said.append).run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)
        assert not thread.is_alive()


def wait_for(condition, timeout: float) -> float:
    """Seconds until `condition()` held; fails after `timeout`."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "did not happen in time"
        time.sleep(0.01)
    return time.monotonic() - started


def test_a_withdrawal_reaches_square_within_seconds_by_its_event(app, client, admin, reviewer, square, said):
    approved(app, "botox", external_ids={"square": "VAR-BTX"})
    square.add_service("VAR-BTX", "Botox")
    connector = connect(client, admin, square)
    status_url = f"/v1/connectors/{connector['id']}"
    with worker_running(app, said):
        wait_for(lambda: client.get(status_url, headers=admin).get_json()["status"]["last_pass_at"], 10)
        assert square.available("VAR-BTX")
        assert decide(client, reviewer, "botox", "withdrawn").status_code == 201
        took = wait_for(lambda: not square.available("VAR-BTX"), 10)
        assert decide(client, reviewer, "botox", "approved").status_code == 201
        wait_for(lambda: square.available("VAR-BTX"), 10)
    assert took < 10
    assert any("switch off botox (VAR-BTX)" in line for line in said)


def test_a_sync_asked_for_corrects_drift_without_waiting_for_the_timer(app, client, admin, square, said):
    add_treatment(app, "exosomes", "not_approved", external_ids={"square": "VAR-EXO"})
    square.add_service("VAR-EXO", "Exosome facial")
    connector = connect(client, admin, square)
    with worker_running(app, said):
        wait_for(lambda: not square.available("VAR-EXO"), 10)
        square.staff_set("VAR-EXO", True)
        assert client.post(f"/v1/connectors/{connector['id']}/sync", headers=admin).status_code == 202
        wait_for(lambda: not square.available("VAR-EXO"), 10)
    counts = client.get(f"/v1/connectors/{connector['id']}", headers=admin).get_json()["status"]["counts"]
    assert counts["drift_corrected"] == 1


def test_a_hanging_connector_never_delays_another(app, client, admin, reviewer, square, said, monkeypatch):
    monkeypatch.setitem(app.config, "CONNECTORS_TIMEOUT_SECONDS", 1.0)
    monkeypatch.setitem(app.config, "CONNECTORS_MAX_ATTEMPTS", 3)  # so a pass of the other takes 3 s+
    approved(app, "botox", external_ids={"square": "VAR-BTX"})
    square.add_service("VAR-BTX", "Botox")
    with fake_square(stall_seconds=5.0) as stuck:  # every request hangs past the 1 s timeout
        stuck.add_service("VAR-BTX", "Botox")
        connect(client, admin, stuck, name="Square, the other site")
        healthy = connect(client, admin, square)
        with worker_running(app, said):
            wait_for(
                lambda: client.get(f"/v1/connectors/{healthy['id']}", headers=admin).get_json()["status"][
                    "last_pass_at"
                ],
                10,
            )
            decide(client, reviewer, "botox", "withdrawn")
            took = wait_for(lambda: not square.available("VAR-BTX"), 10)
        assert took < 1.5  # not behind the other connector's timeouts
        assert stuck.available("VAR-BTX")  # that one never got through: it is still owed the change


def test_the_sync_command_prints_what_it_changed_and_dry_run_changes_nothing(
    app, client, admin, square, runner
):
    add_treatment(app, "exosomes", "not_approved", external_ids={"square": "VAR-EXO"})
    add_treatment(app, "pdo-threads", "not_approved")
    square.add_service("VAR-EXO", "Exosome facial")
    connect(client, admin, square)
    dry = runner.invoke(args=["connectors", "sync", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would switch off exosomes (VAR-EXO)" in dry.output and "pdo-threads has no mapping" in dry.output
    assert square.available("VAR-EXO") and square.writes() == []
    done = runner.invoke(args=["connectors", "sync"])
    assert done.exit_code == 0 and "switch off exosomes (VAR-EXO)" in done.output
    assert not square.available("VAR-EXO")
    again = runner.invoke(args=["connectors", "sync"])
    assert "switch off" not in again.output


def test_a_pass_waits_for_another_workers_lease(app, client, admin, square, passes):
    from api.connectors import service
    from api.db import utcnow

    connector = connect(client, admin, square)
    with app.app_context():
        from api.db import get_session

        assert service.claim(get_session(), connector["id"], "another-host:1", utcnow())
    assert passes.run(connector["id"], None) is None  # held elsewhere: no pass, no calls
    assert square.requests == []


def test_a_pass_that_breaks_is_retried_and_the_connector_keeps_its_thread(
    app, client, admin, square, said, monkeypatch
):
    from api.connectors import service

    add_treatment(app, "exosomes", "not_approved", external_ids={"square": "VAR-EXO"})
    square.add_service("VAR-EXO", "Exosome facial")
    real, calls = service.run_pass, []

    def breaks_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "run_pass", breaks_once)
    connect(client, admin, square)
    with worker_running(app, said):
        wait_for(lambda: not square.available("VAR-EXO"), 10)  # hidden all the same, on the retry
    assert any("pass failed: RuntimeError: a bug" in line for line in said)
