"""Fetching a video from a URL without letting the URL reach inside the network (SSRF).

For the first request and for every redirect: http or https only, no credentials in the URL, the
host resolved and *every* address checked (private, loopback, link-local, multicast, reserved,
unspecified and the cloud metadata addresses are refused), then the connection is made to that
checked address (TLS still verifies the host name), so a second DNS answer cannot swap it.
The response must be 200 with a video/* content type, and the body is cut off, and refused, past
the size limit. Timeouts bound each connect and read. Local tests may allow loopback, only
through an explicit flag.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from .errors import ReelscopeError

MAX_REDIRECTS = 5
CHUNK = 1 << 20
METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class FetchRefused(ReelscopeError):
    """The URL, an address it resolves to, or the response is refused; the message says why."""


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    content_type: str
    chunks: Iterator[bytes]


def check_address(address: str, allow_loopback: bool = False) -> None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
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


def open_video(url: str, max_bytes: int, timeout_s: float = 20.0, allow_loopback: bool = False) -> Fetched:
    """Follow the URL (redirects checked hop by hop) to a video response; stream its body."""
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise FetchRefused(f"{url[:200]}: only http and https URLs are fetched")
        if not parts.hostname:
            raise FetchRefused(f"{url[:200]}: no host")
        if parts.username or parts.password:
            raise FetchRefused(f"{parts.hostname}: credentials in the URL are refused")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = _checked_address(parts.hostname, port, allow_loopback)
        connection = (_PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP)(
            parts.hostname, address, port=port, timeout=timeout_s)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request("GET", path, headers={"User-Agent": "reelscope-ingest", "Accept": "video/*"})
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as err:
            connection.close()
            raise FetchRefused(f"{parts.hostname}: {err}") from None
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
        return Fetched(url, content_type, _body(response, connection, max_bytes, parts.hostname))
    raise FetchRefused(f"more than {MAX_REDIRECTS} redirects")


def _body(response, connection, max_bytes: int, host: str) -> Iterator[bytes]:
    received = 0
    try:
        while chunk := response.read(CHUNK):
            received += len(chunk)
            if received > max_bytes:
                raise FetchRefused(f"{host}: the body passed the limit of {max_bytes} bytes")
            yield chunk
    finally:
        connection.close()

