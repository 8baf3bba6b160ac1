"""Each real Gunicorn setup answers a small request in one TCP segment: head and body in one
write (gunicorn_conf/one_write.py), where stock Gunicorn sends two.

The count comes from the kernel: the client socket's ``tcpi_data_segs_in`` (struct tcp_info,
Linux 4.6+), the segments that carried data to it. On loopback one write of a few hundred
bytes is one segment, and two writes are two, so the count tells the writes apart without
looking inside the server.
"""

from __future__ import annotations

import socket
import struct

import pytest
from helpers import read_answer

from gunicorn_conf import SETUPS
from harness import launch

# Offset of tcpi_data_segs_in in struct tcp_info (include/uapi/linux/tcp.h).
TCPI_DATA_SEGS_IN = 152


def data_segments_in(sock: socket.socket) -> int:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    assert len(info) >= TCPI_DATA_SEGS_IN + 4, "this kernel's tcp_info has no data_segs_in"
    return struct.unpack_from("I", info, TCPI_DATA_SEGS_IN)[0]


@pytest.fixture(scope="module", params=SETUPS)
def server(request, tmp_path_factory):
    log = tmp_path_factory.mktemp("one-write") / f"{request.param}.log"
    with launch.gunicorn(request.param, log) as running:
        yield running


def test_a_small_answer_arrives_in_one_segment(server):
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        before = data_segments_in(sock)
        sock.sendall(b"GET /api/whoami HTTP/1.1\r\nHost: localhost\r\n\r\n")
        head, body, _ = read_answer(sock)
        segments = data_segments_in(sock) - before
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert segments == 1, (
        f"{len(head) + len(body)} bytes came in {segments} segments: the head and body were "
        "written separately"
    )
