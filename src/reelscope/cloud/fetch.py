"""Fetching a video from a URL without letting the URL reach inside the network (SSRF).

For the first request and for every redirect: http or https only, no credentials in the URL, the
host resolved and *every* address checked (private, loopback, link-local, multicast, reserved,
unspecified and the cloud metadata addresses are refused; an IPv6 address that carries an IPv4
one, as IPv4-mapped, IPv4-compatible, 6to4, NAT64 and Teredo addresses do, is judged by that
IPv4), then the connection is made to that checked address (TLS still verifies the host name), so
a second DNS answer cannot swap it.
The response must be 200 with a video/* content type, and the body is cut off, and refused, past
the size limit. Timeouts bound each connect and read; a peer that trickles bytes resets those, so a
watchdog also cuts the connection past an overall deadline or when the average rate falls under a
minimum (after a grace period): a slow peer cannot hold a worker. Local tests may allow loopback,
only through an explicit flag.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from reelscope.errors import FetchRefused

MAX_REDIRECTS = 5
CHUNK = 1 << 20
METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    content_type: str
    chunks: Iterator[bytes]


NAT64 = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries, which is where its packets end up: IPv4-mapped
    (::ffff:0:0/96), IPv4-compatible (::/96), 6to4 (2002::/16), NAT64 (64:ff9b::/96, and the
    local-use 64:ff9b:1::/48 with RFC 6052's layout for a /48) and Teredo (2001::/32: server and client)."""
    packed = ip.packed
    if ip.ipv4_mapped:
        return [ip.ipv4_mapped]
    if ip.sixtofour:
        return [ip.sixtofour]
    if ip.teredo:
        return list(ip.teredo)
    if ip in NAT64 or (ip in IPV4_COMPATIBLE and int(ip) > 1):  # :: and ::1 are not IPv4
        return [ipaddress.IPv4Address(packed[12:])]
    if ip in NAT64_LOCAL:
        return [ipaddress.IPv4Address(packed[6:8] + packed[9:11])]  # bits 64-71 are the reserved u octet
    return []


def check_address(address: str, allow_loopback: bool = False) -> None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and (inner := embedded_ipv4(ip)):
        for ipv4 in inner:  # judged as the IPv4 address it reaches
            try:
                check_address(str(ipv4), allow_loopback)
            except FetchRefused as err:
                raise FetchRefused(f"{address} embeds {err}") from None
        return
    if ip in METADATA:
        raise FetchRefused(f"{address} is a cloud metadata address")
    if ip.is_loopback:
        if allow_loopback:
            return
        raise FetchRefused(f"{address} is a loopback address")
    for kind in ("unspecified", "link_local", "multicast", "private", "reserved"):  # specific before general
        if getattr(ip, f"is_{kind}"):
            raise FetchRefused(f"{address} is a {kind.replace('_', '-')} address")
    if not ip.is_global:  # shared (100.64/10), documentation and other special ranges
        raise FetchRefused(f"{address} is not a public address")


def _checked_address(host: str, port: int, allow_loopback: bool) -> str:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise FetchRefused(f"{host}: cannot be resolved ({err.strerror})") from None
    addresses = sorted({info[4][0] for info in infos})
    for address in addresses:  # all of them: any one may be what a later connection gets
        check_address(address, allow_loopback)
    return addresses[0]


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, address: str, **kwargs):
        super().__init__(host, **kwargs)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, address: str, **kwargs):
        super().__init__(host, context=ssl.create_default_context(), **kwargs)
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


@dataclass(frozen=True)
class Pace:
    """How long a fetch may take, and how slowly it may go."""

    deadline_s: float = 840.0
    min_bytes_per_s: int = 32 * 1024
    grace_s: float = 30.0  # the rate is judged from this point on (connecting and headers count as 0 bytes)


class Watchdog:
    """Shuts the fetch's current connection down once the deadline passes or the average rate
    falls under the minimum; the read that was waiting then fails, and why is in `reason`."""

    def __init__(self, pace: Pace):
        self.pace, self.started, self.received = pace, time.monotonic(), 0
        self.connection: http.client.HTTPConnection | None = None
        self.reason: str | None = None
        self._done = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        while not self._done.wait(0.5):
            elapsed = time.monotonic() - self.started
            if elapsed > self.pace.deadline_s:
                self.reason = f"not done within the fetch deadline of {self.pace.deadline_s:g} s"
            elif elapsed > self.pace.grace_s and self.received < self.pace.min_bytes_per_s * elapsed:
                self.reason = (f"{self.received / elapsed:.0f} bytes/s on average over {elapsed:.0f} s, under the "
                               f"minimum of {self.pace.min_bytes_per_s}")
            if self.reason:
                sock = self.connection.sock if self.connection else None
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                return

    def check(self, host: str) -> None:
        if self.reason:
            raise FetchRefused(f"{host}: {self.reason} ({self.received} bytes received)")

    def stop(self) -> None:
        self._done.set()


def open_video(url: str, max_bytes: int, timeout_s: float = 20.0, allow_loopback: bool = False,
               pace: Pace = Pace()) -> Fetched:
    """Follow the URL (redirects checked hop by hop) to a video response; stream its body."""
    watchdog = Watchdog(pace)
    try:
        return _open(url, max_bytes, timeout_s, allow_loopback, watchdog)
    except BaseException:
        watchdog.stop()
        raise


def _open(url: str, max_bytes: int, timeout_s: float, allow_loopback: bool, watchdog: Watchdog) -> Fetched:
    for _ in range(MAX_REDIRECTS + 1):
        try:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as err:  # a malformed host or a port out of range, also in a redirect
            raise FetchRefused(f"{url[:200]}: {err}") from None
        if parts.scheme not in ("http", "https"):
            raise FetchRefused(f"{url[:200]}: only http and https URLs are fetched")
        if not parts.hostname:
            raise FetchRefused(f"{url[:200]}: no host")
        if parts.username or parts.password:
            raise FetchRefused(f"{parts.hostname}: credentials in the URL are refused")
        address = _checked_address(parts.hostname, port, allow_loopback)
        connection = (_PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP)(
            parts.hostname, address, port=port, timeout=timeout_s)
        watchdog.connection = connection
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request("GET", path, headers={"User-Agent": "reelscope-ingest", "Accept": "video/*"})
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as err:
            connection.close()
            watchdog.check(parts.hostname)
            raise FetchRefused(f"{parts.hostname}: {err}") from None
        watchdog.check(parts.hostname)  # headers cut short by the watchdog can parse as complete
        if response.status in (301, 302, 303, 307, 308):
            location = response.getheader("Location")
            connection.close()
            if not location:
                raise FetchRefused(f"{parts.hostname}: redirect without a Location")
            url = urljoin(url, location)
            continue
        if response.status != 200:
            connection.close()
            raise FetchRefused(f"{parts.hostname}: HTTP {response.status} {response.reason}")
        content_type = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
        if not content_type.startswith("video/"):
            connection.close()
            raise FetchRefused(f"{parts.hostname}: content type {content_type or 'missing'!r} is not video/*")
        length = response.getheader("Content-Length")
        if length and length.isdigit() and int(length) > max_bytes:
            connection.close()
            raise FetchRefused(f"{parts.hostname}: {length} bytes is over the limit of {max_bytes}")
        return Fetched(url, content_type, _body(response, connection, max_bytes, parts.hostname, watchdog))
    raise FetchRefused(f"more than {MAX_REDIRECTS} redirects")


def _body(response, connection, max_bytes: int, host: str, watchdog: Watchdog) -> Iterator[bytes]:
    try:
        while True:
            try:
                chunk = response.read1(CHUNK)  # what has arrived, so the watchdog's count stays current
            except (OSError, http.client.HTTPException) as err:
                watchdog.check(host)
                raise FetchRefused(f"{host}: {err}") from None
            watchdog.check(host)  # a connection shut by the watchdog can also read as a clean end
            if not chunk:
                if response.length:  # read1 ends quietly where read would raise IncompleteRead
                    raise FetchRefused(f"{host}: the connection closed {response.length} bytes before the end")
                return
            watchdog.received += len(chunk)
            if watchdog.received > max_bytes:
                raise FetchRefused(f"{host}: the body passed the limit of {max_bytes} bytes")
            yield chunk
    finally:
        watchdog.stop()
        connection.close()

