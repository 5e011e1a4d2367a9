"""Outbound HTTP to other systems' URLs (webhook receivers; booking-system connectors later),
never into this network.

A URL's spelling says nothing about where it leads: `metadata.google.internal`,
`localhost.localdomain`, `10.0.0.1.nip.io` and `kubernetes.default.svc.cluster.local` are
ordinary DNS names that resolve inside. So every request here:

1. **resolves** the host once, with a `Resolver` (the system's, `resolve`, unless one is passed;
   tests pass their own and never touch the network). An IP literal is not resolved;
2. **checks** every address the name resolved to and refuses the request, before any connection,
   if even one of them is not public (`address_problem`: loopback, private, link-local and cloud
   metadata, unique-local, carrier-grade NAT, unspecified, multicast, reserved, and IPv6 forms
   that carry such an IPv4 address). Refusing on any, rather than skipping to a good one, means
   a name that mixes inside and outside answers never gets a request. `allow_loopback`
   (development and tests) lets loopback addresses through, nothing else;
3. **connects to the checked addresses themselves** (in the resolver's order, the next one if a
   connection fails), never to the name again, while the `Host` header, TLS SNI and certificate
   verification still use the URL's host name. A DNS answer that changes between the check and
   the connection (DNS rebinding) therefore cannot redirect the request.

Redirects are never followed and proxy variables (`HTTPS_PROXY`, ...) are ignored: either would
send the request somewhere unchecked. No Flask here: callers pass their settings.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]  # (host, port) -> IP addresses, preferred first


class OutboundError(Exception):
    """A request that was not made; the message says why, fit for an attempt's log."""


class HostNotResolved(OutboundError):
    pass


class DestinationRefused(OutboundError):
    """The URL leads to an address outbound requests may not go to."""

    def __init__(self, host: str, address: str, problem: str):
        self.host, self.address, self.problem = host, address, problem
        where = f"{address} is" if _is_ip_literal(host) else f"{host} resolves to {address},"
        super().__init__(f"Refused: {where} {problem}; requests go only to public addresses.")


# --- which addresses ---------------------------------------------------------------------------

# Cloud instance metadata and platform endpoints (credentials live there). Most are caught by their
# range anyway; named here so the reason says what they are.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, ...
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure WireServer: a public-looking address only reachable inside Azure
    )
)
PRIVATE_V4 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
SHARED_V4 = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
UNIQUE_LOCAL_V6 = ipaddress.ip_network("fc00::/7")
NAT64_V6 = ipaddress.ip_network("64:ff9b::/96")  # a NAT64 gateway forwards to the IPv4 inside


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries and is delivered to: IPv4-mapped
    (`::ffff:127.0.0.1`), NAT64 (`64:ff9b::a00:1`) or 6to4 (`2002:a00:1::`)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in NAT64_V6:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def address_problem(address: str | IPAddress, allow_loopback: bool = False) -> str | None:
    """Why no request may go to `address` ("a private address", ...), or None for a public one."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    inner = embedded_ipv4(ip)
    if inner is not None:
        return address_problem(inner, allow_loopback)
    if ip.is_loopback:
        return None if allow_loopback else "a loopback address"
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_unspecified:
        return "the unspecified address (this host)"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip in SHARED_V4:
        return "a carrier-grade NAT address"
    if any(ip in network for network in PRIVATE_V4):
        return "a private address"
    if ip in UNIQUE_LOCAL_V6:
        return "a unique-local (private) address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "a site-local (private) address"
    if ip.is_reserved or ip.is_private or not ip.is_global:
        return "a reserved or special-purpose address"
    return None


# --- which URLs may be configured ---------------------------------------------------------------


def is_loopback_host(host: str | None) -> bool:
    """127.0.0.0/8, ::1 or localhost."""
    if not host:
        return False
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(url: str, allow_loopback_http: bool, setting: str) -> str | None:
    """Why `url` may not be configured as another system's address, or None: https only, except
    plain http to a loopback host where `setting` allows it (development and tests)."""
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        return "Credentials in the URL are not supported."
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        if allow_loopback_http:
            return None
        return f"Plain http to a loopback host needs {setting} (development only); use https."
    return "The URL must use https (plain http is allowed only to a loopback host, in development)."


# --- where a URL leads -------------------------------------------------------------------------


def resolve(host: str, port: int) -> list[str]:
    """The system resolver (getaddrinfo, so /etc/hosts too): the host's addresses, preferred first."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Destination:
    """A URL's parts and the checked addresses to connect to."""

    scheme: str
    host: str  # as in the URL (lower case, no brackets): the Host header, SNI and certificate name
    port: int
    target: str  # path and query
    addresses: tuple[str, ...]


def destination(url: str, *, allow_loopback: bool = False, resolver: Resolver | None = None) -> Destination:
    """Parse `url`, resolve its host once and check every address; raise `DestinationRefused`
    if any is not public, `HostNotResolved` if there is none, `OutboundError` for a bad URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise OutboundError(f"Unsupported URL scheme {parts.scheme!r}: only http and https.")
    host = parts.hostname or ""
    if not host:
        raise OutboundError("The URL has no host.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise OutboundError(f"Bad port in the URL: {exc}") from None
    if _is_ip_literal(host):
        addresses: Sequence[str] = [host]
    else:
        try:
            addresses = (resolver or resolve)(host, port)
        except OSError as exc:  # socket.gaierror and friends
            raise HostNotResolved(f"Cannot resolve {host}: {exc.strerror or exc}") from None
        if not addresses:
            raise HostNotResolved(f"Cannot resolve {host}: no address.")
    for address in addresses:
        try:
            problem = address_problem(address, allow_loopback)
        except ValueError:
            raise HostNotResolved(f"Cannot resolve {host}: {address!r} is not an IP address.") from None
        if problem:
            raise DestinationRefused(host, address, problem)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Destination(parts.scheme, host, port, target, tuple(addresses))


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# --- the request -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    headers: Mapping[str, str] = field(default_factory=dict)  # names in lower case
    body: bytes = b""  # up to `max_body_bytes`; empty when the caller reads none


class ResponseTooLarge(OutboundError):
    pass


def request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 5.0,
    allow_loopback: bool = False,
    resolver: Resolver | None = None,
    tls_context: ssl.SSLContext | None = None,
    max_body_bytes: int = 0,
) -> Response:
    """Send one request to a checked public address (see the module's docstring); no redirects.

    `timeout` bounds connecting (all addresses together) and then each read. The response body is
    read only when `max_body_bytes` is set; a longer one raises `ResponseTooLarge`. Refusals raise
    `OutboundError`s; a failure on the wire raises what http.client raises (`OSError`,
    `http.client.HTTPException`), for the caller to describe.
    """
    where = destination(url, allow_loopback=allow_loopback, resolver=resolver)
    connection: _PinnedHTTPConnection
    if where.scheme == "https":
        connection = _PinnedHTTPSConnection(where, timeout, tls_context or ssl.create_default_context())
    else:
        connection = _PinnedHTTPConnection(where, timeout)
    try:
        connection.request(method, where.target, body=body, headers=dict(headers or {}))
        with connection.getresponse() as response:
            data = b""
            if max_body_bytes:
                data = response.read(max_body_bytes + 1)
                if len(data) > max_body_bytes:
                    raise ResponseTooLarge(f"The response body is over {max_body_bytes} bytes.")
            return Response(
                response.status, response.reason, {k.lower(): v for k, v in response.getheaders()}, data
            )
    finally:
        connection.close()


def open_socket(address: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to an IP address. Nothing here resolves a name."""
    ip = ipaddress.ip_address(address)
    sock = socket.socket(socket.AF_INET6 if ip.version == 6 else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((address, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _connect(addresses: Sequence[str], port: int, timeout: float) -> socket.socket:
    """The first of the checked addresses that accepts a connection, within `timeout` in all."""
    deadline = time.monotonic() + timeout
    error: OSError = TimeoutError(f"timed out after {timeout:g} s")
    for address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            sock = open_socket(address, port, remaining)
        except OSError as exc:
            error = exc
            continue
        sock.settimeout(timeout)  # each read
        return sock
    raise error


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the checked addresses; the Host header still names the URL's host."""

    def __init__(self, where: Destination, timeout: float):
        super().__init__(where.host, where.port, timeout=timeout)
        self.addresses = where.addresses
        self.connect_timeout = timeout

    def connect(self) -> None:
        self.sock = _connect(self.addresses, self.port, self.connect_timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as http.client does


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    """The same over TLS: SNI and the certificate check use the URL's host name, not the address."""

    default_port = 443  # left out of the Host header, as http.client's HTTPSConnection does

    def __init__(self, where: Destination, timeout: float, context: ssl.SSLContext):
        super().__init__(where, timeout)
        self.tls_context = context

    def connect(self) -> None:
        super().connect()
        self.sock = self.tls_context.wrap_socket(self.sock, server_hostname=self.host)
