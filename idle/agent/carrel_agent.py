#!/usr/bin/env python3
"""carrel-agent: tells Carrel how busy this workspace is, so an idle one can be hibernated and a busy one never.

Standard library only; Python 3.7 or newer; Linux. Installed by the workspace's user data as
/usr/local/bin/carrel-agent and run by systemd (carrel-agent.service).

    carrel-agent [run] [--once] [--interval 60] [--config /etc/carrel/agent.conf]
        Every interval, measure and POST one heartbeat to <url>/api/v1/agent/heartbeat with the workspace's
        agent token. Only the latest measurement is ever sent: nothing is queued while the server is away, so
        memory stays flat. Unreachable server, 5xx or 429: exponential backoff with jitter, capped (Retry-After
        is honoured). 401 TOKEN_REVOKED (the workspace was terminated): exit with status 3.
    carrel-agent sample
        Measure once (over one second) and print the heartbeat's JSON; sends nothing.
    carrel-agent keep-alive -- COMMAND [ARG...]
        Run COMMAND; while it runs, the workspace counts as busy and is never hibernated for being idle.
    carrel-agent keep-alive --pid PID
        The same for a process already running.
    carrel-agent keep-alive --list
        The registered processes that are still alive.

Configuration: the file (KEY=VALUE lines: url, token, interval) named by --config or CARREL_AGENT_CONFIG,
else /etc/carrel/agent.conf; CARREL_AGENT_URL and CARREL_AGENT_TOKEN override it. Keep-alive registrations live
in CARREL_AGENT_STATE_DIR (default /var/lib/carrel/keep-alive, a sticky world-writable directory).

What is measured: CPU % of every core (/proc/stat), memory in use % (/proc/meminfo), network bytes/s in + out
on every interface but lo (/proc/net/dev), disk bytes/s read + written on whole disks (/proc/diskstats), GPU %
of every GPU (nvidia-smi, when installed), logged-in sessions (utmp, else `who`), the last keystroke in any of
their terminals (the terminals' access times, as `w` reads them), and whether a registered process is alive.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request

VERSION = "1.0.0"
DEFAULT_CONFIG = "/etc/carrel/agent.conf"
DEFAULT_STATE_DIR = "/var/lib/carrel/keep-alive"
HEARTBEAT_PATH = "/api/v1/agent/heartbeat"
DEFAULT_INTERVAL = 60.0
BACKOFF_BASE = 15.0
BACKOFF_CAP = 900.0  # 15 minutes
RETRY_AFTER_CAP = 3600.0
REQUEST_TIMEOUT = 15.0
EXIT_REVOKED = 3
# What the server accepts (idle/api/agent.py); more is cut here rather than refused there.
MAX_CORES = 1024
MAX_GPUS = 64
MAX_REASONS = 16
MAX_REASON_LENGTH = 200
MAX_REGISTRATIONS = 1000
SECTOR_BYTES = 512  # /proc/diskstats counts 512-byte sectors whatever the device's sector size
UTMP_USER_PROCESS = 7
UTMP_RECORD = struct.Struct("<hxxi32s4s32s256shhiii4i20x")  # glibc's struct utmp on x86_64 and aarch64
UTMP_FILES = ("/run/utmp", "/var/run/utmp")


def log(message: str) -> None:
    sys.stderr.write(f"carrel-agent: {message}\n")
    sys.stderr.flush()


def utc_iso(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)  # noqa: UP017 (Python 3.7+)
    return moment.isoformat().replace("+00:00", "Z")


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()


# --- Readers: each takes the text it parses, so it can be checked without a machine ------------------------


def parse_cpu_times(text: str) -> list[tuple[int, int]]:
    """(busy, total) jiffies per core from /proc/stat, in core order. Busy is all but idle and iowait;
    guest time is already counted in user time, so it is left out of the total."""
    cores = []
    for line in text.splitlines():
        if not line.startswith("cpu") or line.startswith("cpu "):
            continue
        fields = line.split()
        if not fields[0][3:].isdigit():
            continue
        values = [int(value) for value in fields[1:11]]
        values += [0] * (10 - len(values))
        user, nice, system, idle, iowait, irq, softirq, steal = values[:8]
        total = user + nice + system + idle + iowait + irq + softirq + steal
        cores.append((total - idle - iowait, total))
    return cores


def cpu_percent(before: list[tuple[int, int]], after: list[tuple[int, int]]) -> list[float]:
    """Busy % of each core between two readings (a core that went offline or came back reads 0)."""
    result = []
    for index, (busy, total) in enumerate(after[:MAX_CORES]):
        if index >= len(before):
            result.append(0.0)
            continue
        spent, elapsed = busy - before[index][0], total - before[index][1]
        result.append(round(min(100.0, max(0.0, 100.0 * spent / elapsed)), 1) if elapsed > 0 else 0.0)
    return result


def parse_memory_percent(text: str) -> float | None:
    """Memory in use (MemTotal - MemAvailable) as % of MemTotal, from /proc/meminfo."""
    values = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[name.strip()] = int(parts[0])
    total = values.get("MemTotal")
    if not total:
        return None
    available = values.get("MemAvailable")
    if available is None:  # kernels before 3.14
        available = values.get("MemFree", 0) + values.get("Buffers", 0) + values.get("Cached", 0)
    return round(min(100.0, max(0.0, 100.0 * (total - available) / total)), 1)


def parse_network_bytes(text: str) -> int:
    """Bytes received plus sent on every interface but loopback, from /proc/net/dev."""
    total = 0
    for line in text.splitlines():
        name, sep, rest = line.partition(":")
        if not sep or name.strip() == "lo":
            continue
        fields = rest.split()
        if len(fields) >= 9 and fields[0].isdigit() and fields[8].isdigit():
            total += int(fields[0]) + int(fields[8])
    return total


# Without /sys: whole disks by name (sda, vdb, xvda, nvme0n1, mmcblk0), not their partitions (sda1, nvme0n1p1).
_PHYSICAL_DISK = re.compile(r"^((sd|vd|xvd|hd)[a-z]+|nvme\d+n\d+|mmcblk\d+)$")


def is_whole_disk(name: str, sys_block: str = "/sys/block") -> bool:
    """A physical whole disk: listed in /sys/block with a device behind it (partitions are not listed there;
    loop, device-mapper and RAID devices have no `device`, and their I/O is counted on the disks beneath)."""
    if os.path.isdir(sys_block):
        return os.path.exists(os.path.join(sys_block, name.replace("/", "!"), "device"))
    return bool(_PHYSICAL_DISK.match(name))


def parse_disk_bytes(text: str, whole_disk=is_whole_disk) -> int:
    """Bytes read plus written on whole disks, from /proc/diskstats (sectors of 512 bytes)."""
    total = 0
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 10 or not whole_disk(fields[2]):
            continue
        total += (int(fields[5]) + int(fields[9])) * SECTOR_BYTES
    return total


def rate(before: int | None, after: int | None, seconds: float) -> float | None:
    """Per-second rate of a counter; a counter that went backwards (reset, device gone) reads 0."""
    if before is None or after is None or seconds <= 0:
        return None
    return round(max(0, after - before) / seconds, 1)


def gpu_percent() -> list[float]:
    """Utilisation % of every NVIDIA GPU; [] when there is no nvidia-smi (or it does not answer)."""
    command = shutil.which("nvidia-smi")
    if command is None:
        return []
    try:
        done = subprocess.run(  # noqa: S603 (a fixed command, no shell)
            [command, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if done.returncode != 0:
        return []
    return parse_gpu_output(done.stdout.decode(errors="replace"))


def parse_gpu_output(text: str) -> list[float]:
    values = []
    for line in text.splitlines()[:MAX_GPUS]:
        try:
            values.append(min(100.0, max(0.0, float(line.strip()))))
        except ValueError:
            continue  # "[N/A]" on GPUs that do not report utilisation
    return values


def parse_utmp(data: bytes) -> list[tuple[str, int]]:
    """(terminal, pid) of every user session in a utmp file."""
    sessions = []
    size = UTMP_RECORD.size
    for offset in range(0, len(data) - size + 1, size):
        record = UTMP_RECORD.unpack_from(data, offset)
        kind, pid, line = record[0], record[1], record[2]
        if kind == UTMP_USER_PROCESS:
            sessions.append((line.split(b"\0", 1)[0].decode(errors="replace"), pid))
    return sessions


def sessions_now(proc: str = "/proc") -> list[str]:
    """The terminals of the users logged in now (sessions whose process is gone are stale entries)."""
    for path in UTMP_FILES:
        try:
            with open(path, "rb") as handle:
                data = handle.read(4 * 1024 * 1024)
        except OSError:
            continue
        return [line for line, pid in parse_utmp(data) if pid > 0 and os.path.exists(f"{proc}/{pid}")]
    return sessions_from_who()


def sessions_from_who() -> list[str]:
    command = shutil.which("who")
    if command is None:
        return []
    try:
        done = subprocess.run(  # noqa: S603 (a fixed command, no shell)
            [command], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return []
    lines = done.stdout.decode(errors="replace").splitlines()
    return [line.split()[1] for line in lines if len(line.split()) >= 2]


def last_input_at(terminals: list[str]) -> float | None:
    """The newest access time of the sessions' terminals: when someone last typed in one (as `w` reads it)."""
    newest = None
    for terminal in terminals:
        if not terminal or "/" in terminal.replace("pts/", "", 1) or ".." in terminal:
            continue
        try:
            accessed = os.stat(f"/dev/{terminal}").st_atime
        except OSError:
            continue
        newest = accessed if newest is None else max(newest, accessed)
    return newest


# --- Keep-alive registrations ------------------------------------------------------------------------------


def process_start(pid: int, proc: str = "/proc") -> str | None:
    """The process's start time (clock ticks after boot, field 22 of /proc/PID/stat): with the pid, it names
    one process, so a pid reused after the registered process ended is not taken for it."""
    try:
        text = _read(f"{proc}/{pid}/stat")
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


def process_command(pid: int, proc: str = "/proc") -> str:
    try:
        with open(f"{proc}/{pid}/cmdline", "rb") as handle:
            raw = handle.read(4096)
    except OSError:
        return ""
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)


def register(state_dir: str, pid: int, command: str = "", proc: str = "/proc") -> str:
    """Record `pid` as a keep-alive; returns the registration's path."""
    start = process_start(pid, proc)
    if start is None:
        raise ValueError(f"no process {pid}")
    os.makedirs(state_dir, exist_ok=True)
    path = os.path.join(state_dir, f"{pid}-{start}.json")
    record = {"pid": pid, "start": start, "command": (command or process_command(pid, proc))[:MAX_REASON_LENGTH]}
    record["uid"] = os.getuid()
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(record, handle)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)
    return path


def registrations(state_dir: str, proc: str = "/proc", prune: bool = False) -> list[dict]:
    """The registered processes still alive. With `prune`, the registrations of ended ones are removed."""
    alive = []
    try:
        names = sorted(os.listdir(state_dir))[:MAX_REGISTRATIONS]
    except OSError:
        return []
    for name in names:
        if not name.endswith(".json"):
            continue
        path = os.path.join(state_dir, name)
        try:
            with open(path, encoding="utf-8") as handle:
                record = json.loads(handle.read(4096))
            pid, start = int(record["pid"]), str(record["start"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if process_start(pid, proc) == start:
            alive.append({"pid": pid, "command": str(record.get("command", ""))[:MAX_REASON_LENGTH]})
        elif prune:
            with contextlib.suppress(OSError):
                os.unlink(path)
    return alive


def keep_alive(arguments: argparse.Namespace) -> int:
    state_dir = arguments.state_dir
    if arguments.list:
        for entry in registrations(state_dir):
            print(f"{entry['pid']}\t{entry['command']}")
        return 0
    if arguments.pid is not None:
        try:
            path = register(state_dir, arguments.pid)
        except (ValueError, OSError) as error:
            log(f"cannot register {arguments.pid}: {error}")
            return 1
        print(f"process {arguments.pid} keeps this workspace busy while it runs ({path})")
        return 0
    command = arguments.command[1:] if arguments.command[:1] == ["--"] else arguments.command
    if not command:
        log("keep-alive needs a command (keep-alive -- COMMAND ...) or --pid PID")
        return 2
    try:
        child = subprocess.Popen(command)  # noqa: S603 (the user's own command, run as them)
    except OSError as error:
        log(f"cannot run {command[0]}: {error}")
        return 127
    path = None
    try:
        path = register(state_dir, child.pid, " ".join(command))
    except (ValueError, OSError) as error:
        log(f"running {command[0]} without keeping the workspace busy: {error}")

    def forward(signum, frame):
        child.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    try:
        status = child.wait()
        return 128 - status if status < 0 else status  # killed by a signal: 128 + its number, as a shell says
    finally:
        if path is not None:
            with contextlib.suppress(OSError):
                os.unlink(path)


# --- Sampling --------------------------------------------------------------------------------------------


class Reading:
    """The cumulative counters at one moment; two readings make a sample."""

    def __init__(self, proc: str = "/proc") -> None:
        self.at = time.monotonic()
        self.cpu = self._safely(lambda: parse_cpu_times(_read(f"{proc}/stat")), [])
        self.network = self._safely(lambda: parse_network_bytes(_read(f"{proc}/net/dev")), None)
        self.disk = self._safely(lambda: parse_disk_bytes(_read(f"{proc}/diskstats")), None)

    @staticmethod
    def _safely(read, default):
        try:
            return read()
        except (OSError, ValueError, IndexError):
            return default


def sample(before: Reading, after: Reading, state_dir: str, proc: str = "/proc") -> dict:
    """The heartbeat's body: usage between two readings and who and what is on the machine now."""
    seconds = after.at - before.at
    try:
        memory = parse_memory_percent(_read(f"{proc}/meminfo"))
    except OSError:
        memory = None
    terminals = sessions_now(proc)
    typed = last_input_at(terminals)
    jobs = registrations(state_dir, proc, prune=True)
    return {
        "cpu_percent": cpu_percent(before.cpu, after.cpu),
        "memory_percent": memory,
        "network_bytes_per_s": rate(before.network, after.network, seconds),
        "disk_bytes_per_s": rate(before.disk, after.disk, seconds),
        "gpu_percent": gpu_percent(),
        "sessions": len(terminals),
        "last_input_at": utc_iso(typed) if typed is not None else None,
        "busy": bool(jobs),
        "busy_reasons": [f"keep-alive: {job['command'] or job['pid']}"[:MAX_REASON_LENGTH] for job in jobs][
            :MAX_REASONS
        ],
        "agent_version": VERSION,
    }


# --- Talking to Carrel -------------------------------------------------------------------------------------


def read_config(path: str | None) -> dict:
    """url, token and interval from the file, then the environment."""
    path = path or os.environ.get("CARREL_AGENT_CONFIG") or DEFAULT_CONFIG
    config: dict = {}
    try:
        text = _read(path)
    except OSError:
        text = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        config[key.strip().lower()] = value.strip().strip("\"'")
    for key in ("url", "token", "interval"):
        value = os.environ.get(f"CARREL_AGENT_{key.upper()}")
        if value:
            config[key] = value
    return config


class Answer:
    """What one POST came to: sent, stop for good, or try again after `wait` seconds (None: the backoff)."""

    def __init__(self, ok: bool = False, stop: bool = False, wait: float | None = None, note: str = "") -> None:
        self.ok, self.stop, self.wait, self.note = ok, stop, wait, note


def retry_after(headers) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if value is None:
        return None
    try:
        return min(RETRY_AFTER_CAP, max(0.0, float(value)))
    except ValueError:
        return None


def error_code(body: bytes) -> str:
    try:
        return str(json.loads(body.decode("utf-8"))["error"]["code"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return ""


def post(url: str, token: str, body: dict) -> Answer:
    request = urllib.request.Request(  # noqa: S310 (the configured Carrel address)
        url.rstrip("/") + HEARTBEAT_PATH,
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "User-Agent": f"carrel-agent/{VERSION}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:  # noqa: S310
            response.read(65536)
            return Answer(ok=True)
    except urllib.error.HTTPError as error:
        payload = error.read(65536)
        code = error_code(payload)
        if error.code == 401 and code == "TOKEN_REVOKED":
            return Answer(stop=True, note="the agent token was revoked (the workspace is terminating)")
        if error.code in (429, 503) or error.code >= 500:
            return Answer(wait=retry_after(error.headers), note=f"HTTP {error.code} {code}".strip())
        if error.code == 401:  # a token that is not (yet) known: the configuration may be fixed; back off
            return Answer(note=f"HTTP 401 {code}".strip())
        # Refused as invalid (400): this heartbeat is lost, the next one is measured afresh.
        return Answer(ok=True, note=f"HTTP {error.code} {code}: {payload[:300].decode(errors='replace')}")
    except (urllib.error.URLError, OSError, ValueError) as error:
        return Answer(note=f"cannot reach {url}: {getattr(error, 'reason', error)}")


def backoff(failures: int, rng: random.Random = random) -> float:  # type: ignore[assignment]
    """Seconds before the next try after `failures` failures in a row: doubling from BACKOFF_BASE, capped
    at BACKOFF_CAP, with jitter (the upper half of the window) so that many agents do not retry together."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** min(failures - 1, 20)))
    return rng.uniform(ceiling / 2, ceiling)


class Stop(Exception):
    pass


def run(arguments: argparse.Namespace, sleep=time.sleep) -> int:
    config = read_config(arguments.config)
    url, token = config.get("url", ""), config.get("token", "")
    if not url or not token:
        log(f"no url/token in {arguments.config or DEFAULT_CONFIG} (or CARREL_AGENT_URL/CARREL_AGENT_TOKEN)")
        return 2
    try:
        interval = float(arguments.interval or config.get("interval") or DEFAULT_INTERVAL)
    except ValueError:
        interval = DEFAULT_INTERVAL
    interval = max(1.0, interval)
    if not arguments.once:
        try:
            os.makedirs(arguments.state_dir, exist_ok=True)
            if os.geteuid() == 0:
                # Sticky and world-writable, as /tmp: every user may register a job; none may remove another's.
                os.chmod(arguments.state_dir, 0o1777)  # noqa: S103
        except OSError as error:
            log(f"keep-alive directory {arguments.state_dir}: {error}")

    def terminate(signum, frame):
        raise Stop

    signal.signal(signal.SIGTERM, terminate)
    previous = Reading()
    sleep(1.0)  # the first sample spans a second; later ones the whole interval since the last
    failures = 0
    try:
        while True:
            current = Reading()
            answer = post(url, token, sample(previous, current, arguments.state_dir))
            previous = current
            if answer.stop:
                log(answer.note)
                return EXIT_REVOKED
            if answer.note:
                log(answer.note)
            if answer.ok:
                failures = 0
                if arguments.once:
                    return 0
                wait = interval
            else:
                failures += 1
                if arguments.once:
                    return 1
                wait = max(backoff(failures), answer.wait or 0.0)  # never sooner than Retry-After says
                log(f"retrying in {wait:.0f} s")
            sleep(wait)
    except (Stop, KeyboardInterrupt):
        return 0


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="carrel-agent", description="Carrel's workspace agent.")
    parser.add_argument("--version", action="version", version=f"carrel-agent {VERSION}")
    parser.add_argument(
        "--state-dir",
        default=os.environ.get("CARREL_AGENT_STATE_DIR", DEFAULT_STATE_DIR),
        help="where keep-alive registrations live",
    )
    commands = parser.add_subparsers(dest="mode")
    run_parser = commands.add_parser("run", help="send a heartbeat every interval (the default)")
    commands.add_parser("sample", help="print one measurement as JSON")
    keep = commands.add_parser("keep-alive", help="keep the workspace busy while a process runs")
    keep.add_argument("--pid", type=int, help="a running process to register")
    keep.add_argument("--list", action="store_true", help="list the registered processes still running")
    keep.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARG...] to run")
    for each, default in ((parser, None), (run_parser, argparse.SUPPRESS)):
        # The subcommand's copies default to "not given", so `--once run` and `run --once` mean the same.
        each.add_argument("--config", default=default, help=f"configuration file (default {DEFAULT_CONFIG})")
        each.add_argument("--interval", type=float, default=default, help="seconds between heartbeats (60)")
        each.add_argument(
            "--once",
            action="store_true",
            default=False if default is None else default,
            help="send one heartbeat and exit (0: accepted)",
        )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    if arguments.mode == "keep-alive":
        return keep_alive(arguments)
    if arguments.mode == "sample":
        before = Reading()
        time.sleep(1.0)
        print(json.dumps(sample(before, Reading(), arguments.state_dir), indent=2))
        return 0
    return run(arguments)


if __name__ == "__main__":
    sys.exit(main())
