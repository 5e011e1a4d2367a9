"""Outbound HTTP (api.outbound): which addresses a request may go to, checked after resolving the
name, and the connection made to the checked address. A fake resolver and a fake socket opener:
nothing here touches the network."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from api import outbound
from api.outbound import DestinationRefused, HostNotResolved, OutboundError, address_problem, destination

PUBLIC = "93.184.215.14"  # a public address (nothing connects to it here)


# --- the address rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address, problem",
    [
        ("127.0.0.1", "a loopback address"),
        ("127.200.3.4", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.0.0.5", "a private address"),
        ("172.16.0.1", "a private address"),
        ("172.31.255.255", "a private address"),
        ("192.168.1.1", "a private address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("169.254.170.2", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("168.63.129.16", "a cloud metadata address"),
        ("100.100.100.200", "a cloud metadata address"),
        ("169.254.1.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("fe80::1%eth0", "a link-local address"),
        ("fc00::1", "a unique-local (private) address"),
        ("fd12:3456::1", "a unique-local (private) address"),
        ("fec0::1", "a site-local (private) address"),
        ("100.64.0.1", "a carrier-grade NAT address"),
        ("100.127.255.254", "a carrier-grade NAT address"),
        ("0.0.0.0", "the unspecified address (this host)"),
        ("::", "the unspecified address (this host)"),
        ("224.0.0.1", "a multicast address"),
        ("239.1.2.3", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("240.0.0.1", "a reserved or special-purpose address"),
        ("255.255.255.255", "a reserved or special-purpose address"),
        ("0.1.2.3", "a reserved or special-purpose address"),  # "this network": Linux connects locally
        ("192.0.2.10", "a reserved or special-purpose address"),  # documentation
        ("198.18.0.1", "a reserved or special-purpose address"),  # benchmarking
        ("2001:db8::1", "a reserved or special-purpose address"),  # documentation
        ("::127.0.0.1", "a reserved or special-purpose address"),  # IPv4-compatible (deprecated)
        ("100::1", "a reserved or special-purpose address"),  # discard-only
        # IPv6 forms that deliver to an IPv4 address are judged by that address
        ("::ffff:127.0.0.1", "a loopback address"),
        ("::ffff:10.0.0.5", "a private address"),
        ("::ffff:169.254.169.254", "a cloud metadata address"),
        ("::ffff:100.64.0.1", "a carrier-grade NAT address"),
        ("64:ff9b::a00:1", "a private address"),  # NAT64 of 10.0.0.1
        ("64:ff9b::7f00:1", "a loopback address"),  # NAT64 of 127.0.0.1
        ("2002:a9fe:a9fe::", "a cloud metadata address"),  # 6to4 of 169.254.169.254
        ("2002:c0a8:101::1", "a private address"),  # 6to4 of 192.168.1.1
    ],
)
def test_addresses_inside_are_refused(address, problem):
    assert address_problem(address) == problem


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", PUBLIC, "1.1.1.1", "172.32.0.1", "100.128.0.1", "169.255.0.1", "2606:4700::1111",
     "2001:4860:4860::8888", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"],
)  # fmt: skip
def test_public_addresses_are_allowed(address):
    assert address_problem(address) is None
    assert address_problem(address, allow_loopback=True) is None


@pytest.mark.parametrize("address", ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1", "64:ff9b::7f00:1"])
def test_the_development_flag_allows_loopback(address):
    assert address_problem(address, allow_loopback=True) is None


@pytest.mark.parametrize(
    "address", ["10.0.0.5", "169.254.169.254", "0.0.0.0", "::", "fd00:ec2::254", "fe80::1"]
)
def test_the_development_flag_allows_loopback_only(address):
    assert address_problem(address, allow_loopback=True) is not None


# --- names are resolved, then checked -----------------------------------------------------------


class FakeResolver:
    """Answers from a table (a list of answers per name: one per call, the last repeated), and
    counts the calls. An unknown name fails as the system resolver would."""

    def __init__(self, table: dict[str, list[list[str]]]):
        self.table = table
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append((host, port))
        answers = self.table.get(host)
        if answers is None:
            raise OSError(-2, "Name or service not known")
        return answers[min(len(self.calls), len(answers)) - 1]


INTERNAL_NAMES = {
    "metadata.google.internal": (["169.254.169.254"], "a cloud metadata address"),
    "localhost.localdomain": (["127.0.0.1", "::1"], "a loopback address"),
    "x.nip.io": (["10.0.0.1"], "a private address"),
    "10-0-0-1.sslip.io": (["10.0.0.1"], "a private address"),
    "kubernetes.default.svc.cluster.local": (["10.96.0.1"], "a private address"),
    "db.internal.example.com": (["fd12::5"], "a unique-local (private) address"),
}


@pytest.mark.parametrize("name", INTERNAL_NAMES)
def test_a_name_that_resolves_inside_is_refused(name):
    addresses, problem = INTERNAL_NAMES[name]
    resolver = FakeResolver({name: [addresses]})
    with pytest.raises(DestinationRefused) as refused:
        destination(f"https://{name}:8443/hooks", resolver=resolver)
    assert (refused.value.host, refused.value.address, refused.value.problem) == (name, addresses[0], problem)
    assert str(refused.value) == (
        f"Refused: {name} resolves to {addresses[0]}, {problem}; requests go only to public addresses."
    )
    assert resolver.calls == [(name, 8443)]


def test_a_name_with_any_address_inside_is_refused():
    resolver = FakeResolver({"mixed.example.com": [[PUBLIC, "2606:4700::1111", "10.0.0.7"]]})
    with pytest.raises(DestinationRefused, match="resolves to 10.0.0.7, a private address"):
        destination("https://mixed.example.com/", resolver=resolver)


def test_an_ip_literal_is_checked_without_resolving():
    resolver = FakeResolver({})
    with pytest.raises(DestinationRefused, match=r"^Refused: 10\.0\.0\.5 is a private address"):
        destination("http://10.0.0.5/hooks", resolver=resolver)
    with pytest.raises(DestinationRefused, match=r"^Refused: ::ffff:127\.0\.0\.1 is a loopback address"):
        destination("http://[::ffff:127.0.0.1]:8080/", resolver=resolver)
    assert destination("http://127.0.0.1:9/x", allow_loopback=True, resolver=resolver).addresses == (
        "127.0.0.1",
    )
    assert resolver.calls == []


def test_a_public_name_gives_its_checked_addresses_and_the_url_parts():
    resolver = FakeResolver({"hooks.partner.example": [[PUBLIC, "2606:4700::1111"]]})
    where = destination("https://Hooks.Partner.Example/in/tpa?x=1#frag", resolver=resolver)
    assert where == outbound.Destination(
        "https", "hooks.partner.example", 443, "/in/tpa?x=1", (PUBLIC, "2606:4700::1111")
    )
    assert destination("http://hooks.partner.example", resolver=resolver).port == 80
    assert destination("http://hooks.partner.example", resolver=resolver).target == "/"


def test_a_name_that_does_not_resolve_is_not_a_refusal():
    with pytest.raises(HostNotResolved, match="Cannot resolve nowhere.example: Name or service not known"):
        destination("https://nowhere.example/", resolver=FakeResolver({}))
    with pytest.raises(HostNotResolved, match="no address"):
        destination("https://empty.example/", resolver=FakeResolver({"empty.example": [[]]}))


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "https:///path", "https://example.com:99999/", "file:///etc"]
)
def test_a_url_that_is_not_http_is_refused(url):
    with pytest.raises(OutboundError):
        destination(url, resolver=FakeResolver({}))


# --- the connection goes to the checked address ------------------------------------------------


@pytest.fixture
def sockets(monkeypatch) -> list[tuple[str, int]]:
    """Record every address a connection is opened to, and open none: each is refused."""
    opened: list[tuple[str, int]] = []

    def fake_open(address: str, port: int, timeout: float) -> None:
        opened.append((address, port))
        raise ConnectionRefusedError

    monkeypatch.setattr(outbound, "open_socket", fake_open)
    return opened


def test_the_connection_goes_to_the_address_checked_not_to_a_new_answer(sockets):
    # DNS rebinding: public at the check, inside at a second lookup. There is no second lookup.
    resolver = FakeResolver({"rebind.example": [[PUBLIC], ["169.254.169.254"]]})
    with pytest.raises(ConnectionRefusedError):
        outbound.request("POST", "https://rebind.example/hooks", body=b"{}", resolver=resolver)
    assert resolver.calls == [("rebind.example", 443)]
    assert sockets == [(PUBLIC, 443)]


def test_each_checked_address_is_tried_in_turn(sockets):
    resolver = FakeResolver({"two.example": [[PUBLIC, "2606:4700::1111"]]})
    with pytest.raises(ConnectionRefusedError):
        outbound.request("GET", "http://two.example:8080/", resolver=resolver)
    assert sockets == [(PUBLIC, 8080), ("2606:4700::1111", 8080)]
    assert len(resolver.calls) == 1


@pytest.mark.parametrize("name", INTERNAL_NAMES)
def test_a_refused_request_opens_no_connection(sockets, name):
    resolver = FakeResolver({name: [INTERNAL_NAMES[name][0]]})
    with pytest.raises(DestinationRefused):
        outbound.request("POST", f"https://{name}/", body=b"{}", resolver=resolver)
    assert sockets == []


def test_the_system_resolver_is_the_default(monkeypatch, sockets):
    asked: list[tuple[str, int]] = []

    def system(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return ["10.1.2.3"]

    monkeypatch.setattr(outbound, "resolve", system)
    with pytest.raises(DestinationRefused, match="a private address"):
        outbound.request("POST", "https://x.nip.io/")
    assert asked == [("x.nip.io", 443)]
    assert sockets == []
