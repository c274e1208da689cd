"""URL fetching against a real HTTP server on 127.0.0.1: what is fetched, what is refused and why."""

from __future__ import annotations

import http.server
import threading
import time

import pytest

from reelscope.cloud.fetch import Pace, check_address, open_video
from reelscope.errors import FetchRefused

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40


class Handler(http.server.BaseHTTPRequestHandler):
    routes = {
        "/video.mp4": (200, {"Content-Type": "video/mp4"}, VIDEO),
        "/page": (200, {"Content-Type": "text/html"}, b"<html></html>"),
        "/declared-big": (200, {"Content-Type": "video/mp4", "Content-Length": "999999999"}, b""),
        "/redirect": (302, {"Location": "/video.mp4"}, b""),
        "/to-metadata": (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b""),
        "/to-private": (301, {"Location": "http://10.1.2.3/video.mp4"}, b""),
        "/to-file": (302, {"Location": "file:///etc/passwd"}, b""),
        "/loop": (302, {"Location": "/loop"}, b""),
        "/missing": (404, {}, b"no"),
    }

    def trickle(self, data: bytes, every_s: float) -> None:
        for byte in data:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(every_s)

    def do_GET(self):
        if self.path.startswith("/trickle-"):  # a slow peer: one byte at a time
            head = b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: 100000\r\n\r\n"
            try:
                if self.path == "/trickle-headers":
                    self.trickle(head, 0.05)
                else:
                    self.wfile.write(head)
                    self.trickle(VIDEO, 0.05)
            except OSError:
                pass  # the fetch hung up: what the test wants
            return
        if self.path == "/truncated":  # declares more than it sends, then closes
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: 5000\r\n\r\n" + VIDEO[:100])
            self.close_connection = True
            return
        status, headers, body = self.routes[self.path]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def fetch(url, max_bytes=10**6) -> bytes:
    return b"".join(open_video(url, max_bytes, timeout_s=5, allow_loopback=True).chunks)


def refusal(url, max_bytes=10**6, allow_loopback=True, pace=Pace()) -> str:
    with pytest.raises(FetchRefused) as caught:
        b"".join(open_video(url, max_bytes, timeout_s=5, allow_loopback=allow_loopback, pace=pace).chunks)
    return str(caught.value)


@pytest.mark.parametrize("path", ["/trickle-body", "/trickle-headers"])
def test_a_slow_peer_is_cut_off_by_the_rate_and_the_deadline(server, path):
    """20 bytes/s: every read finishes well within its 5 s timeout, so only the watchdog ends it."""
    started = time.monotonic()
    message = refusal(server + path, pace=Pace(deadline_s=60, min_bytes_per_s=1000, grace_s=1.5))
    assert 1.5 <= time.monotonic() - started < 4
    assert message.startswith("127.0.0.1: ") and "bytes/s on average over 2 s, under the minimum of 1000" in message
    started = time.monotonic()
    message = refusal(server + path, pace=Pace(deadline_s=1.5, min_bytes_per_s=1, grace_s=10))
    assert 1.5 <= time.monotonic() - started < 4
    assert message.startswith("127.0.0.1: not done within the fetch deadline of 1.5 s (")


def test_a_body_cut_short_is_not_a_video(server):
    assert refusal(server + "/truncated") == "127.0.0.1: the connection closed 4900 bytes before the end"


def test_a_video_and_a_redirect_to_it(server):
    assert fetch(f"{server}/video.mp4") == VIDEO
    assert fetch(f"{server}/redirect") == VIDEO


def test_loopback_needs_the_explicit_flag(server):
    assert refusal(f"{server}/video.mp4", allow_loopback=False) == "127.0.0.1 is a loopback address"
    assert refusal(server.replace("127.0.0.1", "localhost") + "/video.mp4", allow_loopback=False).endswith(
        "is a loopback address")


def test_redirects_are_checked_at_every_hop(server):
    assert refusal(f"{server}/to-metadata") == "169.254.169.254 is a cloud metadata address"
    assert refusal(f"{server}/to-private") == "10.1.2.3 is a private address"
    assert refusal(f"{server}/to-file") == "file:///etc/passwd: only http and https URLs are fetched"
    assert refusal(f"{server}/loop") == "more than 5 redirects"


def test_responses_that_are_not_a_fitting_video(server):
    assert refusal(f"{server}/page") == "127.0.0.1: content type 'text/html' is not video/*"
    assert refusal(f"{server}/declared-big") == "127.0.0.1: 999999999 bytes is over the limit of 1000000"
    assert refusal(f"{server}/video.mp4", max_bytes=1000) == "127.0.0.1: 10252 bytes is over the limit of 1000"
    assert refusal(f"{server}/missing") == "127.0.0.1: HTTP 404 Not Found"


def test_urls_refused_before_any_connection():
    assert refusal("ftp://example.org/a.mp4").endswith("only http and https URLs are fetched")
    assert refusal("http://user:secret@example.org/a.mp4") == "example.org: credentials in the URL are refused"
    assert refusal("http://[::1]:9/a.mp4", allow_loopback=False) == "::1 is a loopback address"
    assert refusal("http://no-such-host.invalid/a.mp4").startswith("no-such-host.invalid: cannot be resolved")


@pytest.mark.parametrize("address, reason", [
    ("10.0.0.8", "private"), ("172.16.4.1", "private"), ("192.168.1.1", "private"), ("169.254.10.1", "link-local"),
    ("fe80::1", "link-local"), ("fc00::5", "private"), ("0.0.0.0", "unspecified"), ("224.0.0.1", "multicast"),
    ("100.64.0.1", "not a public"), ("::ffff:169.254.169.254", "metadata"), ("fd00:ec2::254", "metadata"),
])
def test_address_rules(address, reason):
    with pytest.raises(FetchRefused, match=reason):
        check_address(address)
    check_address("93.184.216.34")  # a public address passes


@pytest.mark.parametrize("address, message", [
    ("2002:7f00:1::", "2002:7f00:1:: embeds 127.0.0.1 is a loopback address"),  # 6to4
    ("2002:a9fe:a9fe::1", "2002:a9fe:a9fe::1 embeds 169.254.169.254 is a cloud metadata address"),
    ("2002:0a00:0001::", "2002:0a00:0001:: embeds 10.0.0.1 is a private address"),
    ("::ffff:127.0.0.1", "::ffff:127.0.0.1 embeds 127.0.0.1 is a loopback address"),  # IPv4-mapped
    ("::127.0.0.1", "::127.0.0.1 embeds 127.0.0.1 is a loopback address"),  # IPv4-compatible
    ("64:ff9b::a9fe:a9fe", "64:ff9b::a9fe:a9fe embeds 169.254.169.254 is a cloud metadata address"),  # NAT64
    ("64:ff9b::192.168.0.1", "64:ff9b::192.168.0.1 embeds 192.168.0.1 is a private address"),
    ("64:ff9b:1:7f00:0:100::", "64:ff9b:1:7f00:0:100:: embeds 127.0.0.1 is a loopback address"),  # NAT64 /48
    # Teredo: server 65.54.227.120, client 127.0.0.1 (stored inverted: 80ff:fffe)
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "2001:0:4136:e378:8000:63bf:80ff:fffe embeds 127.0.0.1 is a loopback"),
])
def test_ipv6_addresses_that_carry_an_ipv4_one_are_judged_by_it(address, message):
    with pytest.raises(FetchRefused) as refused:
        check_address(address)
    assert str(refused.value).startswith(message)
    for public in ("2002:5db8:d822::", "64:ff9b::5db8:d822", "::ffff:93.184.216.34"):  # 93.184.216.34 inside
        check_address(public)
