"""TLS at the edge: the HTTPS site (nginx/sites-tls) on real nginx, with a certificate made by
the same script users run (tools/make-dev-cert.sh)."""

from __future__ import annotations

import socket
import ssl
import subprocess
from urllib.parse import urlsplit

import pytest
import requests

from harness import launch

ROOT = launch.ROOT


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory):
    certs = tmp_path_factory.mktemp("certs")
    subprocess.run(
        [str(ROOT / "tools" / "make-dev-cert.sh"), str(certs)], check=True, capture_output=True
    )
    with launch.native_stack(
        tmp_path_factory.mktemp("tls") / "stack.log", tls_cert_dir=certs
    ) as stack:
        stack.ca_file = str(certs / "tls.crt")
        yield stack


def handshake(stack, version: ssl.TLSVersion | None = None, sni: str = "localhost"):
    """TLS version and ALPN protocol the server agrees to, or the error it answers with."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(stack.ca_file)
    context.set_alpn_protocols(["h2", "http/1.1"])
    if version is not None:
        # Offer exactly this version; old ones need OpenSSL's security level lowered on the
        # client, so that it is the *server* that refuses them.
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.minimum_version = context.maximum_version = version
    port = urlsplit(stack.https_url).port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=sni) as tls:
            return tls.version(), tls.selected_alpn_protocol()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_tls_1_0_and_1_1_are_refused(tls_stack, version):
    # The client does offer the old version; the *server* answers with a protocol alert.
    with pytest.raises(ssl.SSLError, match="ALERT_PROTOCOL_VERSION"):
        handshake(tls_stack, version)


@pytest.mark.parametrize(
    "version, name", [(ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")]
)
def test_tls_1_2_and_1_3_are_accepted(tls_stack, version, name):
    assert handshake(tls_stack, version)[0] == name


def test_http2_is_offered(tls_stack):
    assert handshake(tls_stack)[1] == "h2"


def test_an_unknown_server_name_gets_no_handshake(tls_stack):
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    port = urlsplit(tls_stack.https_url).port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with pytest.raises(ssl.SSLError):
            context.wrap_socket(raw, server_hostname="evil.example")


def test_plain_http_redirects_to_https_permanently(tls_stack):
    response = requests.get(
        tls_stack.url("sync", "/api/whoami?x=1"),
        allow_redirects=False,
        timeout=5,
        headers={"Host": "localhost"},
    )
    assert response.status_code == 301
    assert response.headers["Location"] == f"{tls_stack.https_url}/sync/api/whoami?x=1"
    # nginx's own liveness still answers over HTTP, for the container healthcheck.
    assert requests.get(f"{tls_stack.base_url}/healthz", timeout=5).status_code == 200


def test_https_answers_carry_hsts(tls_stack):
    response = requests.get(
        f"{tls_stack.https_url}/sync/api/whoami", verify=tls_stack.ca_file, timeout=5
    )
    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"].startswith("max-age=63072000")


@pytest.mark.parametrize("setup", launch.SETUPS)
def test_the_app_sees_https_and_builds_https_urls(tls_stack, setup):
    """The classic bug: request.url is always http:// behind a TLS-terminating proxy."""
    body = requests.get(
        f"{tls_stack.https_url}/{setup}/api/whoami", verify=tls_stack.ca_file, timeout=5
    ).json()
    assert body["scheme"] == "https"
    assert body["url"] == f"{tls_stack.https_url}/{setup}/api/whoami"
