"""bench/lists: the web server it measures, and what it reads from the machine (CPU time, load, the access log).

Used by bench/lists_run.py.
"""

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
HOST = "bench-lists.invalid"


class BenchError(Exception):
    pass


@dataclass(frozen=True)
class GunicornConfig:
    worker_class: str
    workers: int
    threads: int = 1

    @property
    def label(self) -> str:
        if self.worker_class == "sync":
            return f"sync {self.workers}"
        return f"{self.worker_class} {self.workers}x{self.threads}"

    def arguments(self) -> list[str]:
        arguments = ["--workers", str(self.workers)]
        if self.worker_class != "sync":
            arguments += ["--worker-class", self.worker_class, "--threads", str(self.threads)]
        return arguments


def parse_configs(text: str) -> list[GunicornConfig]:
    configs = []
    for item in text.split(","):
        match = re.fullmatch(r"\s*(sync|gthread):(\d+)(?:x(\d+))?\s*", item)
        if not match:
            raise ValueError(f"--gunicorn: {item!r} is not class:workers or class:workersxthreads")
        worker_class, workers, threads = match.group(1), int(match.group(2)), int(match.group(3) or 1)
        if worker_class == "sync" and threads != 1:
            raise ValueError(f"--gunicorn: {item!r}: sync workers have one thread (use gthread)")
        configs.append(GunicornConfig(worker_class, workers, threads))
    return configs


@dataclass
class Server:
    config: GunicornConfig
    process: subprocess.Popen
    log_path: Path
    log: IO[str]
    base_url: str

    def alive(self) -> None:
        if self.process.poll() is not None:
            raise BenchError(f"gunicorn exited with {self.process.returncode}:\n{tail(self.log_path)}")

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self.log.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_gunicorn(config: GunicornConfig, work_dir: Path, port: int) -> Server:
    """gunicorn as docker-compose.yml's `web` runs it (no access log of its own), on a local port."""
    command = [sys.executable, "-m", "gunicorn", "platform_site.wsgi:application", "--bind", f"127.0.0.1:{port}"]
    command += config.arguments()
    # gunicorn's default control socket in ~/.gunicorn would be shared with any other gunicorn on the machine.
    command += ["--no-control-socket"]
    log_path = work_dir / f"gunicorn-{config.label.replace(' ', '-')}.log"
    output = log_path.open("w")
    process = subprocess.Popen(  # noqa: S603 (our interpreter, our arguments)
        command, cwd=ROOT, env=dict(os.environ), stdout=output, stderr=subprocess.STDOUT, start_new_session=True
    )
    server = Server(config, process, log_path, output, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        server.alive()
        with contextlib.suppress(OSError):
            if fetch(server.base_url, "/api/v1/healthcheck", token=None)[0] == 200:
                return server
        time.sleep(0.2)
    server.stop()
    raise BenchError(f"gunicorn did not answer within 60 s:\n{tail(log_path)}")


def tail(path: Path, characters: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-characters:]
    except OSError:
        return ""


def fetch(base_url: str, path: str, *, token: str | None) -> tuple[int, dict[str, str], bytes]:
    headers = {"Host": HOST, "X-Forwarded-Proto": "https", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(base_url + path, headers=headers)  # noqa: S310 (our server)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def cpu_calibration_ms() -> float:
    """The best of three runs of a fixed loop of Python, in ms: how fast this machine's CPU is right now (a VM's
    speed moves with its neighbours; figures from two runs compare only at a similar calibration)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(2_000_000):
            total += i
        best = min(best, (time.perf_counter() - started) * 1000)
    return best


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def access_entries(path: Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    with path.open("rb") as handle:
        handle.seek(offset)
        data = handle.read()
    complete = data[: data.rfind(b"\n") + 1]
    entries = [json.loads(line) for line in complete.splitlines() if line.strip()]
    return entries, offset + len(complete)


def cpu_by_process(*, pgid: int | None = None, pids: set[int] | None = None) -> dict[int, float]:
    """User + system CPU seconds used so far by each process of a process group (gunicorn's master and workers)
    or by each of the given processes (PostgreSQL's backends), as /proc tells; processes gone are left out."""
    ticks = os.sysconf("SC_CLK_TCK")
    used = {}
    paths = [Path(f"/proc/{pid}/stat") for pid in pids] if pids is not None else Path("/proc").glob("[0-9]*/stat")
    for stat in paths:
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()  # from the state on: the name may hold spaces
        if pgid is None or int(fields[2]) == pgid:
            used[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return used


def cpu_since(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two readings: a process started since counts whole, one gone since is lost
    (PostgreSQL closes a connection after DATABASE_CONN_MAX_AGE; its last seconds are not counted)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def settled_size(path: Path, *, quiet: float = 0.3, timeout: float = 10) -> int:
    """The file's size once it has stopped growing for `quiet` seconds (the server has answered everything)."""
    size, since, deadline = -1, time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        now_size = path.stat().st_size if path.exists() else 0
        if now_size != size:
            size, since = now_size, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
        time.sleep(0.05)
    return size
