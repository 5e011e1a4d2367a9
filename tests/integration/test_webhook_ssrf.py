"""Webhook delivery never reaches inside the network, whatever a URL's name resolves to
(api.outbound), and connects to the address it checked. DNS is faked at the system resolver
(`socket.getaddrinfo`); the only connections made are to servers on 127.0.0.1 started here."""

from __future__ import annotations

import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from api import outbound
from api.webhooks.delivery import PassCounts
from tests.helpers import add_treatment, random_slug
from tests.integration.test_webhook_delivery import (
    TIMEOUT,
    QuietServer,
    Receiver,
    _handler,
    deliver,
    deliveries,
    subscribe,
)

PUBLIC_NAME = "hooks.partner.example"


# --- a DNS we control --------------------------------------------------------------------------


@dataclass
class FakeDNS:
    """The system resolver, answering from `names` (a list of answers per name: one per lookup,
    the last repeated). IP literals pass through; any other name fails, and is recorded."""

    names: dict[str, list[list[str]]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    def getaddrinfo(
        self, host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if _is_ip(name):
            return REAL_GETADDRINFO(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)
        if name not in self.names:
            self.unknown.append(name)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        self.lookups.append(name)
        answers = self.names[name]
        answer = answers[min(self.lookups.count(name), len(answers)) - 1]
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, int(port or 0), 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, int(port or 0)))
            for a in answer
        ]


REAL_GETADDRINFO = socket.getaddrinfo


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@pytest.fixture
def dns(monkeypatch) -> Iterator[FakeDNS]:
    fake = FakeDNS()
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    yield fake
    assert fake.unknown == []  # no name ever went to a real resolver


# --- servers on 127.0.0.1 ----------------------------------------------------------------------


@dataclass
class Listener:
    """A bare TCP port on 127.0.0.1 that counts the connections it accepts (and closes them)."""

    port: int = 0
    accepted: int = 0


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.05)
    found = Listener(server.getsockname()[1])
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            found.accepted += 1
            connection.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield found
    stop.set()
    thread.join(TIMEOUT)
    server.close()


@pytest.fixture
def receivers() -> Iterator[Callable[..., tuple[Receiver, int]]]:
    """`receivers(tls=context)` starts a receiver on 127.0.0.1 and gives it with its port."""
    running: list[tuple[QuietServer, threading.Thread]] = []

    def start(tls: ssl.SSLContext | None = None) -> tuple[Receiver, int]:
        receiver = Receiver()
        server = QuietServer(("127.0.0.1", 0), _handler(receiver))
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        running.append((server, thread))
        return receiver, server.server_port

    yield start
    for server, thread in running:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


@pytest.fixture
def loopback(app: Flask) -> Iterator[Callable[[bool], None]]:
    """`loopback(True)` turns WEBHOOKS_ALLOW_LOOPBACK_HTTP on (subscriptions and delivery)."""
    previous = app.config["WEBHOOKS_ALLOW_LOOPBACK_HTTP"]

    def set_flag(on: bool) -> None:
        app.config["WEBHOOKS_ALLOW_LOOPBACK_HTTP"] = on

    yield set_flag
    app.config["WEBHOOKS_ALLOW_LOOPBACK_HTTP"] = previous


def one_attempt(client: Any, admin: dict[str, str], webhook_id: int) -> dict[str, Any]:
    (delivery,) = deliveries(client, admin, webhook_id)
    assert delivery["state"] == "pending"
    (attempt,) = delivery["attempts"]
    return attempt


# --- deliveries to names that resolve inside ---------------------------------------------------


def test_a_name_resolving_to_this_machine_is_refused_and_never_connected_to(
    app, client, admin, dns, listener, loopback
):
    loopback(False)
    dns.names[PUBLIC_NAME] = [["127.0.0.1"]]
    hook = subscribe(client, admin, f"https://{PUBLIC_NAME}:{listener.port}/hooks",
                     event_types=["treatment.created"])  # fmt: skip
    add_treatment(app, random_slug())

    counts = deliver(app)

    assert (counts.delivered, counts.retrying) == (0, 1)
    assert listener.accepted == 0  # before api.outbound, the worker connected here
    attempt = one_attempt(client, admin, hook.id)
    assert attempt["status_code"] is None
    assert attempt["error"] == (
        f"Refused: {PUBLIC_NAME} resolves to 127.0.0.1, a loopback address; "
        "requests go only to public addresses."
    )
    assert dns.lookups == [PUBLIC_NAME]
    assert client.get(f"/v1/webhooks/{hook.id}", headers=admin).get_json()["consecutive_failures"] == 1


INSIDE = {
    "metadata.google.internal": ("169.254.169.254", "a cloud metadata address"),
    "localhost.localdomain": ("127.0.0.1", "a loopback address"),
    "10.0.0.1.nip.io": ("10.0.0.1", "a private address"),
    "kubernetes.default.svc.cluster.local": ("10.96.0.1", "a private address"),
}


@pytest.mark.parametrize("name", INSIDE)
def test_a_delivery_to_a_name_resolving_inside_is_a_failed_attempt_with_the_reason(
    app, client, admin, dns, monkeypatch, name
):
    address, problem = INSIDE[name]
    dns.names[name] = [[address]]
    opened: list[str] = []
    monkeypatch.setattr(outbound, "open_socket", lambda address, *_: opened.append(address))
    hook = subscribe(client, admin, f"https://{name}/computeMetadata/v1/", event_types=["treatment.created"])
    add_treatment(app, random_slug())

    assert deliver(app).retrying == 1

    assert opened == []  # no connection at all
    attempt = one_attempt(client, admin, hook.id)
    assert attempt["status_code"] is None
    reason = f"Refused: {name} resolves to {address}, {problem}; requests go only to public addresses."
    assert attempt["error"] == reason


def test_an_ip_literal_subscribed_in_development_is_refused_once_the_flag_is_off(
    app, client, admin, runner, dns, receivers, loopback
):
    loopback(True)
    receiver, port = receivers()
    hook = subscribe(client, admin, f"http://127.0.0.1:{port}/hooks", event_types=["treatment.created"])
    loopback(False)
    add_treatment(app, random_slug())

    result = runner.invoke(args=["webhooks", "deliver"])  # the worker, as it runs

    assert result.exit_code == 0, result.output
    assert "delivered 0, retrying 1" in result.output
    assert receiver.requests == []
    assert one_attempt(client, admin, hook.id)["error"].startswith("Refused: 127.0.0.1 is a loopback address")
    assert dns.lookups == []  # a literal is not resolved


def test_with_the_flag_on_a_loopback_name_is_delivered_to_the_address_it_resolved_to(
    app, client, admin, dns, receivers, loopback
):
    loopback(True)
    receiver, port = receivers()
    dns.names["localhost"] = [["127.0.0.1"], ["10.0.0.1"]]  # a second lookup would be refused
    hook = subscribe(client, admin, f"http://localhost:{port}/hooks", event_types=["treatment.created"])
    add_treatment(app, random_slug())

    counts = deliver(app)

    assert counts == PassCounts(delivered=1)
    (request,) = receiver.requests
    assert request.headers["Host"] == f"localhost:{port}"
    assert request.verified(hook.secret)["type"] == "treatment.created"
    assert dns.lookups == ["localhost"]


# --- api.outbound on the wire: the checked address, the original name ------------------------


def test_the_request_goes_to_the_checked_address_with_the_original_host_header(dns, receivers):
    receiver, port = receivers()
    # DNS rebinding: the check sees 127.0.0.1 (allowed here); any later lookup would say 10.0.0.1.
    dns.names[PUBLIC_NAME] = [["127.0.0.1"], ["10.0.0.1"]]

    response = outbound.request(
        "POST", f"http://{PUBLIC_NAME}:{port}/in?x=1", body=b'{"a": 1}', allow_loopback=True,
        headers={"Content-Type": "application/json"}, max_body_bytes=100,
    )  # fmt: skip

    assert (response.status, response.body) == (200, b"")
    (request,) = receiver.requests
    assert request.headers["Host"] == f"{PUBLIC_NAME}:{port}"
    assert request.body == b'{"a": 1}'
    assert dns.lookups == [PUBLIC_NAME]  # resolved once: the connection went to that answer

    with pytest.raises(outbound.DestinationRefused, match="10.0.0.1, a private address"):
        outbound.request("POST", f"http://{PUBLIC_NAME}:{port}/in", allow_loopback=True)  # the next lookup
    assert len(receiver.requests) == 1


def test_a_later_checked_address_is_tried_when_the_first_does_not_answer(dns, receivers):
    receiver, port = receivers()
    dns.names[PUBLIC_NAME] = [["127.0.0.2", "127.0.0.1"]]  # nothing listens on 127.0.0.2: refused at once

    response = outbound.request("POST", f"http://{PUBLIC_NAME}:{port}/", body=b"{}", allow_loopback=True)

    assert response.status == 200
    assert len(receiver.requests) == 1
    assert dns.lookups == [PUBLIC_NAME]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for PUBLIC_NAME, made with the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={PUBLIC_NAME}",
         "-addext", f"subjectAltName=DNS:{PUBLIC_NAME}"],
        check=True, capture_output=True, timeout=TIMEOUT,
    )  # fmt: skip
    return cert, key


def test_https_sends_sni_and_verifies_the_certificate_for_the_name_not_the_address(
    dns, receivers, certificate
):
    cert, key = certificate
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    server_names: list[str | None] = []
    server_tls.sni_callback = lambda _sock, name, _context: server_names.append(name)
    receiver, port = receivers(tls=server_tls)
    trusting = ssl.create_default_context(cafile=str(cert))
    dns.names |= {PUBLIC_NAME: [["127.0.0.1"]], "other.partner.example": [["127.0.0.1"]]}

    response = outbound.request(
        "POST", f"https://{PUBLIC_NAME}:{port}/hooks", body=b"{}", allow_loopback=True, tls_context=trusting
    )

    assert response.status == 200
    assert server_names == [PUBLIC_NAME]
    assert receiver.requests[0].headers["Host"] == f"{PUBLIC_NAME}:{port}"

    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        outbound.request(
            "POST", f"https://other.partner.example:{port}/hooks", allow_loopback=True, tls_context=trusting
        )
    assert len(receiver.requests) == 1
