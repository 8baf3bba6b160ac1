"""Start the native stack or a dev server in the background, wait until it answers, stop it.

Shared by the test suite, the benchmark and the load-test report, so both run exactly what users run
(``python -m tools.native_stack``, ``python -m tools.devserver``) and wait for it the same
way: by polling HTTP with a deadline, never by sleeping a fixed time.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gunicorn_conf import SETUPS
from gunicorn_conf.cpus import usable_cpus
from tools.devserver import DEFAULT_PROCESSES as DEV_PROCESSES
from tools.devserver import MODES as DEV_MODES
from tools.native_stack import Ports, gunicorn_command, nginx_command, render_nginx

ROOT = Path(__file__).resolve().parent.parent


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports. All are held open together while they are
    picked: picked one at a time, a port released by one pick can be handed out by the next
    (it happened: two setups of one stack were given the same port)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def free_port() -> int:
    return free_ports(1)[0]


def http_status(url: str, timeout: float = 2, host: str | None = None) -> int | None:
    """The status ``url`` answers (None: no answer), sent with Host ``host`` if given."""
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def boot_configs(log_text: str) -> dict[str, dict[str, Any]]:
    """The one-line JSON configs the Gunicorn setups print at boot, by worker class."""
    configs = {}
    for match in re.finditer(r'(\{"event": "gunicorn_config".*\})\s*$', log_text, re.M):
        config = json.loads(match.group(1))
        configs[config["worker_class"]] = config
    return configs


def gunicorn_slots(config: dict[str, Any]) -> int:
    """Requests a Gunicorn setup serves at once, from the config it printed at boot: workers
    for sync, workers x threads for gthread, workers x worker_connections for gevent."""
    per_worker = {"sync": 1, "gthread": config["threads"], "gevent": config["worker_connections"]}[
        config["worker_class"]
    ]
    return config["workers"] * per_worker


# How many requests each dev-server mode serves at once (None: a new thread per request,
# no limit); the modes themselves are tools/devserver.py's.
DEV_SLOTS: dict[str, int | None] = {"single": 1, "threaded": None, "processes": DEV_PROCESSES}
assert set(DEV_SLOTS) == set(DEV_MODES)
# waitress's worker threads: the requests it serves at once.
WAITRESS_THREADS = 4


@dataclass
class Running:
    """A launched server: where it answers and where its output goes."""

    base_url: str
    log_path: Path
    process: subprocess.Popen
    # The native stack's unlimited load port (same routes as base_url); None elsewhere.
    load_url: str | None = None
    # With TLS: the HTTPS port (base_url then only redirects to it).
    https_url: str | None = None
    # The benchmark's nginx: where it fronts the peers (nginx(peers=...)); None elsewhere.
    peers_url: str | None = None

    @property
    def port(self) -> int:
        """The loopback port base_url answers on."""
        return int(self.base_url.rsplit(":", 1)[1])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def configs(self) -> dict[str, dict[str, Any]]:
        return boot_configs(self.log())

    def url(self, setup: str, path: str) -> str:
        return f"{self.base_url}/{setup}{path}"

    def load(self, setup: str, path: str) -> str:
        """A URL on the load port, for bursts above the public port's rate limit."""
        return f"{self.load_url}/{setup}{path}"


def _wait_ready(running: Running, ready, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if running.process.poll() is not None:
            raise RuntimeError(f"{what} exited early:\n{running.log()[-3000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout} s:\n{running.log()[-3000:]}")
        time.sleep(0.2)


def _stop(process: subprocess.Popen, grace: float) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


@contextmanager
def _serve(
    command: list[str],
    log_path: Path,
    base_url: str,
    ready: Callable[[Running], bool],
    what: str,
    timeout: float,
    grace: float,
    env: dict[str, str] | None = None,
    **urls: str | None,
) -> Iterator[Running]:
    """Start ``command`` (output to ``log_path``), wait until ``ready``, stop it at the end.
    The one way every launcher below runs a server."""
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    running = Running(base_url, log_path, process, **urls)
    try:
        _wait_ready(running, lambda: ready(running), timeout, what)
        yield running
    finally:
        _stop(process, grace)


def _answers(path: str) -> Callable[[Running], bool]:
    return lambda running: http_status(running.base_url + path) == 200


@contextmanager
def native_stack(
    log_path: Path,
    timeout: float = 60,
    env: dict[str, str] | None = None,
    tls_cert_dir: Path | None = None,
    nginx_source: Path | None = None,
    ready_path: str = "/readyz",
    with_services: bool = False,
) -> Iterator[Running]:
    """nginx + the three Gunicorn setups on free loopback ports (tools/native_stack.py).
    ``with_services`` has it start a throwaway PostgreSQL and the delay service too.
    ``env`` adds environment variables (Gunicorn overrides such as GUNICORN_TIMEOUT, or
    WSGI_APP with ``ready_path`` for another app than the demo);
    ``tls_cert_dir`` serves HTTPS as docker-compose.tls.yml does; ``nginx_source`` renders
    another nginx folder than nginx/ (tests switch a protection off in a copy)."""
    http_port, load_port, https_port, *app_ports = free_ports(3 + len(SETUPS))
    command = [
        sys.executable,
        "-m",
        "tools.native_stack",
        "--http-port",
        str(http_port),
        "--load-port",
        str(load_port),
        "--https-port",
        str(https_port),
        "--app-ports",
        *map(str, app_ports),
    ]
    if tls_cert_dir is not None:
        command += ["--tls-cert-dir", str(tls_cert_dir)]
    if nginx_source is not None:
        command += ["--nginx-source", str(nginx_source)]
    if with_services:
        command += ["--with-services", "--delay-port", str(free_port())]

    def ready(running: Running) -> bool:
        return (
            http_status(f"{running.base_url}/healthz") == 200
            and all(http_status(running.load(s, ready_path)) == 200 for s in SETUPS)
            and set(running.configs()) == set(SETUPS)
        )

    # grace: Gunicorn's graceful_timeout is 30 s.
    with _serve(
        command,
        log_path,
        f"http://127.0.0.1:{http_port}",
        ready,
        "the native stack",
        timeout,
        grace=45,
        env=env,
        load_url=f"http://127.0.0.1:{load_port}",
        https_url=f"https://localhost:{https_port}" if tls_cert_dir else None,
    ) as running:
        yield running


@contextmanager
def dev_server(mode: str, log_path: Path, timeout: float = 30) -> Iterator[Running]:
    """Flask's development server in one of its modes (tools/devserver.py)."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "tools.devserver",
        "--mode",
        mode,
        "--port",
        str(port),
        "--processes",
        str(DEV_PROCESSES),
    ]
    with _serve(
        command,
        log_path,
        f"http://127.0.0.1:{port}",
        _answers("/readyz"),
        f"the dev server ({mode})",
        timeout,
        grace=10,
    ) as running:
        yield running


@contextmanager
def gunicorn(
    setup: str,
    log_path: Path,
    timeout: float = 30,
    env: dict[str, str] | None = None,
    app: str | None = None,
    ready_path: str | None = "/readyz",
) -> Iterator[Running]:
    """One Gunicorn setup alone on a free loopback port, no nginx in front. ``app``
    replaces the WSGI app (e.g. harness.raw_wsgi:app for the benchmark's baseline). Ready
    when ``ready_path`` answers 200, or with None, when the app answers at all."""
    port = free_port()
    command = [*gunicorn_command(setup), *([app] if app else [])]
    answers = (
        _answers(ready_path)
        if ready_path
        else lambda running: http_status(running.base_url + "/") is not None
    )
    with _serve(
        command,
        log_path,
        f"http://127.0.0.1:{port}",
        lambda running: answers(running) and setup in running.configs(),
        f"gunicorn {setup}",
        timeout,
        grace=45,
        env={"GUNICORN_BIND": f"127.0.0.1:{port}", "PYTHONUNBUFFERED": "1", **(env or {})},
    ) as running:
        yield running


@contextmanager
def waitress(
    log_path: Path, threads: int = WAITRESS_THREADS, timeout: float = 30
) -> Iterator[Running]:
    """The app under waitress, a pure-Python threaded server a user might pick instead."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "waitress",
        f"--listen=127.0.0.1:{port}",
        f"--threads={threads}",
        "--call",
        "app:create_app",
    ]
    with _serve(
        command,
        log_path,
        f"http://127.0.0.1:{port}",
        _answers("/readyz"),
        "waitress",
        timeout,
        grace=10,
    ) as running:
        yield running


@contextmanager
def nginx(
    app_ports: dict[str, int],
    log_path: Path,
    timeout: float = 15,
    peers: list[Peer] | None = None,
    tweak: Callable[[Path], None] | None = None,
) -> Iterator[Running]:
    """nginx alone (the shipped config, rendered for loopback) in front of Gunicorn setups
    already running on ``app_ports``; its output goes to a file, not through a supervisor.
    With ``peers``, the same nginx also fronts them on one more port (Running.peers_url).
    ``tweak`` may edit the rendered copy (its nginx/ folder) before nginx starts: tests use
    it to shorten a timeout or to switch a protection off."""

    http_port, load_port, https_port, peers_port = free_ports(4)
    ports = Ports(http_port, load_port, https_port, *(app_ports[s] for s in SETUPS))
    run_dir = Path(tempfile.mkdtemp(prefix="nginx-"))
    try:
        conf = render_nginx(run_dir, ports)
        if tweak is not None:
            tweak(conf.parent)
        if peers:
            site = conf.parent / "sites" / "peers.conf"
            site.write_text(peers_site(peers, peers_port))
            site.chmod(0o644)
        with _serve(
            nginx_command(run_dir, conf),
            log_path,
            f"http://127.0.0.1:{http_port}",
            _answers("/healthz"),
            "nginx",
            timeout,
            grace=10,
            load_url=f"http://127.0.0.1:{load_port}",
            peers_url=f"http://127.0.0.1:{peers_port}" if peers else None,
        ) as running:
            yield running
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def worker_processes(count: int) -> Callable[[Path], None]:
    """A ``tweak`` for nginx(): run ``count`` worker processes instead of what the shipped
    nginx/nginx.conf says, for a benchmark that asks how much nginx's own share moves a
    comparison (bench --nginx-workers)."""

    def tweak(conf_dir: Path) -> None:
        main = conf_dir / "nginx.conf"
        text, found = re.subn(
            r"^worker_processes \S+;", f"worker_processes {count};", main.read_text(), flags=re.M
        )
        if found != 1:
            raise RuntimeError(f"no one worker_processes line to replace in {main}")
        main.write_text(text)

    return tweak


# nginx's load port in its container (nginx/sites/stack.conf): no rate limit. The compose
# stack keeps it inside its networks; the benchmark adds this override to reach it from
# the host, published on 127.0.0.1 only.
NGINX_LOAD_PORT = 8081
LOAD_PORT_OVERRIDE = f"""services:
  nginx:
    ports:
      - "127.0.0.1:${{BENCH_LOAD_PORT}}:{NGINX_LOAD_PORT}"
"""


@dataclass
class ComposeRunning:
    """A compose stack started by compose_stack(): where it answers, and its containers."""

    project: str
    base_url: str
    load_url: str
    log_path: Path

    def container_ids(self) -> list[str]:
        return subprocess.run(
            [
                "docker",
                "ps",
                "-q",
                "--no-trunc",
                "--filter",
                f"label=com.docker.compose.project={self.project}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()

    def cpu_seconds(self) -> float:
        """CPU seconds used so far by every container of the stack, from their cgroups (the
        engine's own accounting: processes that already exited count too)."""
        return sum(cgroup_cpu_seconds(container) for container in self.container_ids())

    def nginx_address(self) -> str:
        """nginx's address on its network (edge): where a client on another host reaches it,
        once the engine's NAT has passed it on; the host reaches it directly."""
        (container,) = subprocess.run(
            ["docker", "compose", "-p", self.project, "ps", "-q", "nginx"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        networks = json.loads(
            subprocess.run(
                ["docker", "inspect", "--format", "{{json .NetworkSettings.Networks}}", container],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        return networks[f"{self.project}_edge"]["IPAddress"]

    def port_proxy_pids(self, port: int) -> list[int]:
        """The engine's userland proxies (docker-proxy) for a published ``port``: the
        processes that carry a connection from the host's own loopback to the container.
        None when the engine runs with userland-proxy false (its NAT rules do it)."""
        pids = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                args = cmdline.read_bytes().split(b"\0")
            except OSError:
                continue
            if args and args[0].endswith(b"docker-proxy") and str(port).encode() in args:
                pids.append(int(cmdline.parent.name))
        return pids


def cgroup_cpu_seconds(container_id: str) -> float:
    """A container's CPU time from its cgroup: v1 (cpuacct.usage, ns) or v2 (cpu.stat,
    usage_usec), with Docker's cgroupfs or systemd driver. Where the cgroups are not visible
    (this code itself running in a container, as `make test` does), from the engine's stats
    API; never a silent 0."""
    patterns = [
        f"cpuacct/docker/{container_id}/cpuacct.usage",
        f"cpu,cpuacct/docker/{container_id}/cpuacct.usage",
        f"docker/{container_id}/cpu.stat",
        f"system.slice/docker-{container_id}.scope/cpu.stat",
    ]
    for pattern in patterns:
        path = Path("/sys/fs/cgroup") / pattern
        if path.exists():
            text = path.read_text()
            if path.name == "cpuacct.usage":
                return int(text) / 1e9
            usage = re.search(r"^usage_usec (\d+)$", text, re.M)
            if usage:
                return int(usage.group(1)) / 1e6
    return engine_cpu_seconds(container_id)


def engine_cpu_seconds(container_id: str) -> float:
    """A container's CPU time as the Docker engine accounts it (its stats API, one sample,
    over the engine's unix socket: DOCKER_HOST=unix://... or /var/run/docker.sock)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        raise RuntimeError(f"cannot read container CPU: no cgroup files and DOCKER_HOST={host}")
    connection = http.client.HTTPConnection("docker", timeout=30)
    connection.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.sock.settimeout(30)
    connection.sock.connect(host.removeprefix("unix://"))
    try:
        connection.request("GET", f"/containers/{container_id}/stats?stream=false&one-shot=true")
        response = connection.getresponse()
        stats = json.loads(response.read())
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"engine stats for {container_id}: {response.status} {stats}")
    return int(stats["cpu_stats"]["cpu_usage"]["total_usage"]) / 1e9


@contextmanager
def compose_stack(
    log_path: Path, project: str = "flask-three-ways-bench", timeout: float = 600
) -> Iterator[ComposeRunning]:
    """The compose stack as users run it (docker-compose.yml, images built from PYTHON_IMAGE
    and NGINX_IMAGE), under its own project name and free ports, with nginx's load port
    published on 127.0.0.1 (LOAD_PORT_OVERRIDE). Stopped and removed at the end."""
    if shutil.which("docker") is None:
        raise RuntimeError("docker is not installed: the compose stack needs a Docker engine")
    http_port, load_port, locust_port = free_ports(3)
    scratch = Path(tempfile.mkdtemp(prefix="bench-compose-"))
    override = scratch / "load-port.yml"
    override.write_text(LOAD_PORT_OVERRIDE)
    env = {
        **os.environ,
        "HTTP_PORT": str(http_port),
        "LOCUST_WEB_PORT": str(locust_port),
        "BENCH_LOAD_PORT": str(load_port),
        # A subnet of its own, so it cannot clash with a stack the user has up.
        "APP_SUBNET": os.environ.get("BENCH_APP_SUBNET", "172.31.242.0/24"),
    }
    command = ["docker", "compose", "-p", project, "-f", "docker-compose.yml", "-f", str(override)]

    def compose(*args: str, check: bool = True) -> None:
        with log_path.open("a") as log:
            subprocess.run(
                [*command, *args],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=check,
                timeout=timeout,
            )

    try:
        compose("up", "--build", "--detach", "--wait", "--wait-timeout", str(int(timeout)))
        yield ComposeRunning(
            project, f"http://127.0.0.1:{http_port}", f"http://127.0.0.1:{load_port}", log_path
        )
    finally:
        compose("down", "--volumes", "--remove-orphans", "--timeout", "45", check=False)
        shutil.rmtree(scratch, ignore_errors=True)


# --- Peers behind the same nginx (the benchmark's real competitors) ---------------------

PEERS_DIR = ROOT / "harness" / "peers"
# Threads per worker process of the tuned uWSGI and of granian: as many as a gthread worker
# of ours has (gunicorn_conf/gthread.py), so the three compare slot for slot.
PEER_THREADS = 32


@dataclass(frozen=True)
class Peer:
    """A server nginx fronts for the benchmark: its address and how nginx talks to it."""

    name: str
    port: int
    protocol: str  # "uwsgi" (uwsgi_pass) or "http" (proxy_pass)
    slots: int  # requests it serves at once, at most


def _venv_script(name: str) -> str:
    """A console script of the running interpreter's environment. pyuwsgi's ``uwsgi`` must be
    started from there: it loads the app with the interpreter it finds beside itself."""
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        raise FileNotFoundError(f"{name} is not installed beside {sys.executable}")
    return found


@contextmanager
def uwsgi(
    config: str, log_path: Path, env: dict[str, str] | None = None, timeout: float = 30
) -> Iterator[tuple[Running, Peer]]:
    """The app under uWSGI (the pyuwsgi wheel) with ``config`` (as-shipped or tuned: the
    uwsgi-*.ini files in harness/peers/), speaking the uwsgi protocol on a loopback port: only
    nginx talks to it (nginx(peers=))."""
    ini = PEERS_DIR / f"uwsgi-{config}.ini"
    port = free_port()
    command = [_venv_script("uwsgi"), "--ini", str(ini), "--socket", f"127.0.0.1:{port}"]
    command += ["--module", "app:create_app()"]
    if config == "tuned":
        command += ["--processes", str(usable_cpus())]
    with _serve(
        command,
        log_path,
        f"uwsgi://127.0.0.1:{port}",
        lambda running: "spawned uWSGI worker 1 " in running.log() and _accepts(port),
        f"uWSGI {config}",
        timeout,
        grace=70,  # uWSGI's own "mercy" for graceful shutdown is 60 s
        env=env,
    ) as running:
        text = ini.read_text()
        slots = (
            int(re.search(r"^processes = (\d+)", text, re.M).group(1))  # type: ignore[union-attr]
            if config != "tuned"
            else usable_cpus() * PEER_THREADS
        )
        yield running, Peer(f"uwsgi-{config}", port, "uwsgi", slots)


@contextmanager
def granian(
    log_path: Path, env: dict[str, str] | None = None, timeout: float = 30
) -> Iterator[tuple[Running, Peer]]:
    """The app under granian (Rust HTTP, the WSGI interface): a process per usable CPU with
    PEER_THREADS blocking threads each, Gunicorn's accept queue, no access log (its
    default)."""
    port = free_port()
    workers = usable_cpus()
    command = [_venv_script("granian"), "--interface", "wsgi", "--factory"]
    command += ["--workers", str(workers), "--blocking-threads", str(PEER_THREADS)]
    command += ["--backlog", "2048", "--host", "127.0.0.1", "--port", str(port)]
    command += ["app:create_app"]
    with _serve(
        command,
        log_path,
        f"http://127.0.0.1:{port}",
        _answers("/readyz"),
        "granian",
        timeout,
        grace=30,
        env=env,
    ) as running:
        yield running, Peer("granian", port, "http", workers * PEER_THREADS)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


# The stock uwsgi_params of nginx's packages, which our conf folder does not carry.
_UWSGI_PARAMS = """\
        uwsgi_param QUERY_STRING    $query_string;
        uwsgi_param REQUEST_METHOD  $request_method;
        uwsgi_param CONTENT_TYPE    $content_type;
        uwsgi_param CONTENT_LENGTH  $content_length;
        uwsgi_param REQUEST_URI     $request_uri;
        uwsgi_param PATH_INFO       $document_uri;
        uwsgi_param DOCUMENT_ROOT   $document_root;
        uwsgi_param SERVER_PROTOCOL $server_protocol;
        uwsgi_param REQUEST_SCHEME  $scheme;
        uwsgi_param HTTPS           $https if_not_empty;
        uwsgi_param REMOTE_ADDR     $remote_addr;
        uwsgi_param REMOTE_PORT     $remote_port;
        uwsgi_param SERVER_PORT     $server_port;
        uwsgi_param SERVER_NAME     $server_name;"""


def peers_site(peers: list[Peer], listen_port: int) -> str:
    """An extra nginx site for the benchmark: each peer under /<name>/ on its own loopback
    port, next to the shipped sites in the same nginx (same http-level log, request id,
    buffers). HTTP peers get our proxy snippet, as our setups do; uwsgi peers the stock
    uwsgi_params."""
    blocks, locations = [], []
    for peer in peers:
        upstream = "peer_" + re.sub(r"\W", "_", peer.name)
        if peer.protocol == "http":
            keepalive = "include snippets/upstream/keepalive.conf;"
            location = (
                f"    location /{peer.name}/ {{ proxy_pass http://{upstream}/; "
                "include snippets/location/proxy.conf; }"
            )
        else:
            keepalive = ""
            location = (
                f"    location /{peer.name}/ {{\n"
                f"        rewrite ^/{peer.name}(/.*)$ $1 break;\n"
                f"{_UWSGI_PARAMS}\n"
                f"        uwsgi_pass {upstream};\n"
                "    }"
            )
        blocks.append(f"upstream {upstream} {{ server 127.0.0.1:{peer.port}; {keepalive} }}")
        locations.append(location)
    return "\n".join(
        [
            "# Written by harness/launch.py for the benchmark only: the peers it compares.",
            *blocks,
            "server {",
            f"    listen 127.0.0.1:{listen_port};",
            *locations,
            "}",
            "",
        ]
    )
