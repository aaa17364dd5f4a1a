"""The agent's readers (idle/agent/carrel_agent.py): /proc text to numbers, on sample text and on this machine's
own /proc; keep-alive registrations with real processes."""

import os
import signal
import struct
import subprocess
import sys
import time

import pytest

from idle.agent import carrel_agent as agent
from tests.idle.agent_support import AGENT_SCRIPT, PYTHON

PROC_STAT = """cpu  4705 150 1120 16250 520 0 27 0 0 0
cpu0 1000 50 300 8000 100 0 10 0 0 0
cpu1 3705 100 820 8250 420 0 17 0 0 0
intr 114930548 113199788 3 0 5 263 0 4 [... 50 more items]
ctxt 1990473
cpu_guest_is_not_a_core 1 2 3
"""

PROC_STAT_LATER = """cpu  0 0 0 0 0 0 0 0 0 0
cpu0 1001 50 300 8099 100 0 10 0 0 0
cpu1 3785 100 840 8250 420 0 17 0 0 0
"""


def test_it_reads_every_core_and_judges_each_on_its_own():
    before, after = agent.parse_cpu_times(PROC_STAT), agent.parse_cpu_times(PROC_STAT_LATER)
    assert len(before) == 2
    # core 0: 1 busy jiffy of 100; core 1: 100 of 100.
    assert agent.cpu_percent(before, after) == [1.0, 100.0]


def test_guest_time_is_not_counted_twice_and_iowait_is_idle():
    before = agent.parse_cpu_times("cpu0 100 0 0 100 0 0 0 0 0 0\n")
    after = agent.parse_cpu_times("cpu0 150 0 0 100 50 0 0 0 50 0\n")  # 50 of user was guest; 50 iowait
    assert agent.cpu_percent(before, after) == [50.0]


def test_a_core_that_appears_reads_zero_and_the_list_is_capped():
    assert agent.cpu_percent([], [(1, 2)]) == [0.0]
    many = [(0, 0)] * 2000
    assert len(agent.cpu_percent(many, many)) == agent.MAX_CORES


def test_memory_is_what_is_not_available():
    text = "MemTotal:       16000000 kB\nMemFree:         1000000 kB\nMemAvailable:    4000000 kB\n"
    assert agent.parse_memory_percent(text) == 75.0
    assert agent.parse_memory_percent("MemTotal: 100 kB\nMemFree: 50 kB\nBuffers: 10 kB\nCached: 15 kB\n") == 25.0
    assert agent.parse_memory_percent("nothing here") is None


def test_network_counts_both_directions_but_not_loopback():
    text = (
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls\n"
        "    lo: 9999999    100    0    0    0     0          0         0  9999999    100    0    0    0     0\n"
        "  ens5:    1000     10    0    0    0     0          0         0     500      5    0    0    0     0\n"
        "docker0:    200     2    0    0    0     0          0         0     100      1    0    0    0     0\n"
    )
    assert agent.parse_network_bytes(text) == 1800


def test_disk_counts_whole_disks_only():
    text = (
        " 259       0 nvme0n1 100 0 8 0 200 0 16 0 0 0 0\n"
        " 259       1 nvme0n1p1 100 0 8 0 200 0 16 0 0 0 0\n"
        "   7       0 loop0 5 0 1000 0 0 0 0 0 0 0 0\n"
        " 253       0 dm-0 5 0 1000 0 0 0 2000 0 0 0 0\n"
    )
    whole = {"nvme0n1"}
    assert agent.parse_disk_bytes(text, whole_disk=lambda name: name in whole) == (8 + 16) * 512
    # Without /sys, by name.
    assert [
        name
        for name in ("sda", "sda1", "xvdb", "nvme1n1", "nvme1n1p2", "loop3", "dm-1", "md0")
        if agent.is_whole_disk(name, sys_block="/nonexistent")
    ] == ["sda", "xvdb", "nvme1n1"]


def test_rates_never_go_negative():
    assert agent.rate(100, 700, 2.0) == 300.0
    assert agent.rate(700, 100, 2.0) == 0.0  # a counter reset
    assert agent.rate(None, 100, 2.0) is None


def test_gpu_output_is_one_percentage_per_gpu():
    assert agent.parse_gpu_output("80\n3\n[N/A]\n") == [80.0, 3.0]
    assert len(agent.parse_gpu_output("1\n" * 100)) == agent.MAX_GPUS


def test_utmp_records_yield_user_sessions_only():
    def record(kind: int, pid: int, line: bytes) -> bytes:
        return agent.UTMP_RECORD.pack(kind, pid, line, b"ts/0", b"ubuntu", b"198.51.100.7", 0, 0, 0, 0, 0, 0, 0, 0, 0)

    assert agent.UTMP_RECORD.size == 384
    data = record(7, 1234, b"pts/0") + record(8, 99, b"pts/1") + record(2, 0, b"~") + record(7, 42, b"tty1")
    assert agent.parse_utmp(data) == [("pts/0", 1234), ("tty1", 42)]
    assert agent.parse_utmp(data[:-10]) == [("pts/0", 1234)]  # a torn last record is skipped
    assert struct.calcsize("<i") == 4


def test_last_input_reads_terminal_access_times_and_ignores_odd_names(tmp_path):
    assert agent.last_input_at(["../etc/passwd", ":0", "nonexistent9"]) is None
    if os.path.exists("/dev/tty"):
        assert agent.last_input_at(["tty"]) == os.stat("/dev/tty").st_atime


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="needs Linux /proc")
def test_a_busy_process_shows_as_one_busy_core_on_this_machine(tmp_path):
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        before = agent.Reading()
        time.sleep(1.0)
        measured = agent.sample(before, agent.Reading(), str(tmp_path))
    finally:
        spinner.kill()
        spinner.wait()
    assert len(measured["cpu_percent"]) == os.cpu_count()
    assert max(measured["cpu_percent"]) >= 60, measured["cpu_percent"]
    assert 0 < measured["memory_percent"] < 100
    assert measured["network_bytes_per_s"] >= 0 and measured["disk_bytes_per_s"] >= 0
    assert measured["busy"] is False and measured["busy_reasons"] == []
    assert set(measured) == {
        "cpu_percent",
        "memory_percent",
        "network_bytes_per_s",
        "disk_bytes_per_s",
        "gpu_percent",
        "sessions",
        "last_input_at",
        "busy",
        "busy_reasons",
        "agent_version",
    }


def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_keep_alive_runs_a_command_and_keeps_the_workspace_busy_while_it_runs(tmp_path):
    state = tmp_path / "keep-alive"
    job = subprocess.Popen(
        [PYTHON, str(AGENT_SCRIPT), "--state-dir", str(state), "keep-alive", "--", "sleep", "30"],
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(lambda: agent.registrations(str(state)))
        [entry] = agent.registrations(str(state))
        assert entry["command"] == "sleep 30"
        measured = agent.sample(agent.Reading(), agent.Reading(), str(state))
        assert measured["busy"] is True and measured["busy_reasons"] == ["keep-alive: sleep 30"]
        job.send_signal(signal.SIGTERM)  # forwarded to the command
        assert job.wait(timeout=10) == 128 + signal.SIGTERM
    finally:
        if job.poll() is None:
            job.kill()
    assert agent.registrations(str(state)) == [] and list(state.iterdir()) == []


def test_keep_alive_passes_on_the_commands_exit_status(tmp_path):
    done = subprocess.run(
        [PYTHON, str(AGENT_SCRIPT), "--state-dir", str(tmp_path), "keep-alive", "--", "sh", "-c", "exit 7"],
        timeout=30,
    )
    assert done.returncode == 7


def test_keep_alive_registers_a_running_pid_until_it_ends(tmp_path):
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        done = subprocess.run(
            [PYTHON, str(AGENT_SCRIPT), "--state-dir", str(tmp_path), "keep-alive", "--pid", str(sleeper.pid)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        assert [entry["pid"] for entry in agent.registrations(str(tmp_path))] == [sleeper.pid]
        listed = subprocess.run(
            [PYTHON, str(AGENT_SCRIPT), "--state-dir", str(tmp_path), "keep-alive", "--list"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert listed.stdout.startswith(f"{sleeper.pid}\tsleep 30")
    finally:
        sleeper.kill()
        sleeper.wait()
    assert agent.registrations(str(tmp_path), prune=True) == []
    assert list(tmp_path.iterdir()) == []  # the ended process's registration is gone


def test_a_reused_pid_is_not_taken_for_the_registered_process(tmp_path):
    # A registration whose start time does not match the live process with that pid (it ended; the pid was
    # given to another process) does not count.
    (tmp_path / f"{os.getpid()}-1.json").write_text(f'{{"pid": {os.getpid()}, "start": "1", "command": "old"}}')
    (tmp_path / "garbage.json").write_text("{not json")
    assert agent.registrations(str(tmp_path)) == []


def test_keep_alive_refuses_a_pid_that_does_not_exist(tmp_path):
    done = subprocess.run(
        [PYTHON, str(AGENT_SCRIPT), "--state-dir", str(tmp_path), "keep-alive", "--pid", "999999999"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1 and "cannot register" in done.stderr


def test_the_script_needs_nothing_but_the_standard_library():
    source = AGENT_SCRIPT.read_text()
    imported = {
        line.split()[1].split(".")[0]
        for line in source.splitlines()
        if line.startswith(("import ", "from ")) and not line.startswith("from __future__")
    }
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)
    done = subprocess.run([PYTHON, "-I", str(AGENT_SCRIPT), "--version"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and done.stdout.strip() == f"carrel-agent {agent.VERSION}"
