"""Run the stack without Docker: nginx and the three Gunicorn setups on loopback ports.

    python -m tools.native_stack            # nginx on 127.0.0.1:$HTTP_PORT (default 8080)
    python -m tools.native_stack --with-services   # and a PostgreSQL and the delay service

Honcho (a Procfile runner) supervises the processes (four, five with the delay service): it
prefixes and interleaves their output, stops all of them when one dies, and forwards Ctrl-C /
SIGTERM to each.

The apps query the database at ``DATABASE_URL`` and call the service at ``UPSTREAM_URL`` when
they are set (docs/database.md). ``--with-services`` starts what is not set: a throwaway
PostgreSQL on loopback (harness/postgres.py: Debian's ``postgresql`` package, removed on exit)
and the delay service (delay/) as a fifth process.

The nginx config is the shipped one (nginx/), rendered into a scratch folder with exactly
three changes, all below in ``render_nginx``: listen on loopback at the chosen ports (public
and load), point the upstreams at loopback ports, and serve the static page from the copy.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from gunicorn_conf import SETUPS

ROOT = Path(__file__).resolve().parent.parent
NGINX_SOURCE = ROOT / "nginx"
# Where the image keeps the config (nginx/Dockerfile) and where docker-compose.tls.yml mounts
# the certificate; the native copy replaces these paths.
CONTAINER_CONF_DIR = "/etc/nginx/stack"
CONTAINER_CERT_DIR = "/etc/nginx/certs"
# The app's port inside the compose network (gunicorn_conf/base.py's default bind).
CONTAINER_APP_PORT = 8000


@dataclass(frozen=True)
class Ports:
    http: int = 8080  # public, rate-limited (nginx/sites/stack.conf)
    load: int = 8081  # the same routes without the limit, for load generators
    https: int = 8443  # with TLS only (nginx/sites-tls)
    sync: int = 8001
    gthread: int = 8002
    gevent: int = 8003
    delay: int = 8004  # the delay service, with --with-services

    def app(self, setup: str) -> int:
        return getattr(self, setup)


def render_nginx(
    run_dir: Path,
    ports: Ports,
    tls_cert_dir: Path | None = None,
    source: Path = NGINX_SOURCE,
) -> Path:
    """Copy nginx/ (or ``source``, a folder laid out like it) into ``run_dir`` with loopback
    addresses; return the main config's path. With ``tls_cert_dir`` (holding tls.crt and
    tls.key), serve the TLS site, as docker-compose.tls.yml does."""
    conf_dir = run_dir / "nginx"
    shutil.copytree(source, conf_dir, ignore=shutil.ignore_patterns("Dockerfile"))
    if tls_cert_dir is not None:
        shutil.rmtree(conf_dir / "sites")
        (conf_dir / "sites-tls").rename(conf_dir / "sites")

    upstreams = conf_dir / "upstreams.conf"
    text, count = re.subn(
        rf"server app-({'|'.join(SETUPS)}):{CONTAINER_APP_PORT}\b",
        lambda m: f"server 127.0.0.1:{ports.app(m.group(1))}",
        upstreams.read_text(),
    )
    if not count or any(f"app-{setup}:" in text for setup in SETUPS):
        raise RuntimeError(f"could not point every upstream in {upstreams} at loopback")
    upstreams.write_text(text)

    for conf in conf_dir.rglob("*.conf"):
        text = re.sub(r"listen 8080\b", f"listen 127.0.0.1:{ports.http}", conf.read_text())
        text = re.sub(r"listen 8081\b", f"listen 127.0.0.1:{ports.load}", text)
        text = re.sub(r"listen 8443\b", f"listen 127.0.0.1:{ports.https}", text)
        text = re.sub(r"default 8443;", f"default {ports.https};", text)  # the redirect target
        text = text.replace(CONTAINER_CERT_DIR, str(tls_cert_dir or CONTAINER_CERT_DIR))
        conf.write_text(text.replace(CONTAINER_CONF_DIR, str(conf_dir)))
    # nginx drops root to an unprivileged user for its workers: they must be able to read
    # the copy and write the temp folders in the prefix.
    for path in [run_dir, *run_dir.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return conf_dir / "nginx.conf"


def nginx_command(run_dir: Path, conf: Path, nginx: str = "nginx") -> list[str]:
    return [nginx, "-e", "stderr", "-p", f"{run_dir}/", "-c", str(conf), "-g", "daemon off;"]


def gunicorn_command(setup: str) -> list[str]:
    """Gunicorn with one setup's config module (gunicorn_conf/), run from the repository's
    root so that both the config package and the app import."""
    return [sys.executable, "-m", "gunicorn", "-c", f"python:gunicorn_conf.{setup}"]


def write_procfile(
    run_dir: Path,
    ports: Ports,
    nginx: str = "nginx",
    tls_cert_dir: Path | None = None,
    nginx_source: Path = NGINX_SOURCE,
    delay: bool = False,
) -> Path:
    conf = render_nginx(run_dir, ports, tls_cert_dir, nginx_source)
    # Per setup: its loopback port, nginx as the one trusted proxy, its own metrics folder.
    lines = [
        f"{setup}: exec env GUNICORN_BIND=127.0.0.1:{ports.app(setup)} APP_TRUSTED_PROXY_HOPS=1 "
        f"PROMETHEUS_MULTIPROC_DIR={run_dir / ('metrics-' + setup)} "
        + shlex.join(gunicorn_command(setup))
        for setup in SETUPS
    ]
    lines.append("nginx: exec " + shlex.join(nginx_command(run_dir, conf, nginx)))
    if delay:
        command = [sys.executable, "-m", "delay", "--host", "127.0.0.1", "--port", str(ports.delay)]
        lines.append("delay: exec " + shlex.join(command))
    procfile = run_dir / "Procfile"
    procfile.write_text("\n".join(lines) + "\n")
    return procfile


def honcho_command(procfile: Path) -> list[str]:
    return [sys.executable, "-m", "honcho", "-f", str(procfile), "-d", str(ROOT), "start"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--http-port",
        type=int,
        default=int(os.environ.get("HTTP_PORT", 8080)),
        help="the public, rate-limited port",
    )
    parser.add_argument(
        "--load-port",
        type=int,
        default=8081,
        help="the same routes without the rate limit, for load generators",
    )
    parser.add_argument(
        "--app-ports",
        type=int,
        nargs=3,
        metavar=("SYNC", "GTHREAD", "GEVENT"),
        default=(8001, 8002, 8003),
    )
    parser.add_argument("--https-port", type=int, default=8443)
    parser.add_argument(
        "--tls-cert-dir",
        type=Path,
        default=None,
        help="serve HTTPS with DIR/tls.crt and DIR/tls.key (make certs)",
    )
    parser.add_argument("--nginx", default="nginx", help="the nginx binary to run")
    parser.add_argument(
        "--with-services",
        action="store_true",
        help="start a throwaway PostgreSQL and the delay service for /api/db and /api/upstream "
        "(unless DATABASE_URL / UPSTREAM_URL are set)",
    )
    parser.add_argument("--delay-port", type=int, default=Ports.delay)
    parser.add_argument(
        "--nginx-source",
        type=Path,
        default=NGINX_SOURCE,
        help="the nginx config folder to render (default: nginx/; tests pass an edited copy)",
    )
    args = parser.parse_args(argv)
    ports = Ports(
        args.http_port, args.load_port, args.https_port, *args.app_ports, delay=args.delay_port
    )

    run_dir = Path(tempfile.mkdtemp(prefix="flask-stack-"))
    try:
        with ExitStack() as services:
            env = dict(os.environ, PYTHONUNBUFFERED="1")
            delay = args.with_services and not env.get("UPSTREAM_URL")
            if delay:
                env["UPSTREAM_URL"] = f"http://127.0.0.1:{ports.delay}"
            if args.with_services and not env.get("DATABASE_URL"):
                # Imported here: only this option needs it (and it imports the launcher).
                from harness.postgres import throwaway_postgres

                env["DATABASE_URL"] = services.enter_context(throwaway_postgres()).url
                print(f"native stack: PostgreSQL at {env['DATABASE_URL']}", flush=True)
            cert_dir = args.tls_cert_dir.resolve() if args.tls_cert_dir else None
            procfile = write_procfile(
                run_dir, ports, args.nginx, cert_dir, args.nginx_source.resolve(), delay
            )
            print(
                f"native stack: http://127.0.0.1:{ports.http}/ (load port {ports.load}; "
                f"scratch: {run_dir})",
                flush=True,
            )
            return supervise(procfile, env)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def supervise(procfile: Path, env: dict[str, str]) -> int:
    """Run the Procfile under honcho until it stops."""
    honcho = subprocess.Popen(honcho_command(procfile), cwd=ROOT, env=env)
    # Ctrl-C reaches honcho directly (same process group); a SIGTERM sent to this
    # launcher alone is passed on, so honcho stops every process gracefully.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: honcho.send_signal(signal.SIGTERM))
    return honcho.wait()


if __name__ == "__main__":
    sys.exit(main())
