"""A ``--scheduler`` address that is not a Dask scheduler ends in one line, at once or within its deadline.

Run: ``.venv/bin/pytest tests/test_scheduler_addresses.py`` (seconds each: real sockets on 127.0.0.1
stand in for the services a reader may point ``sweep`` at by mistake). Contract: a malformed address
is bad input (exit 2, naming ``scheduler`` and what is allowed); a port that accepts and never
answers, or answers bytes that are not Dask's, is a refused system action (exit 1, naming the
address), reported within the connect deadline (~10 s), with no traceback and no hang after the line.
"""

import socket
import subprocess
import sys
import threading
import time

import pytest

DEADLINE_S = 60  # generous: the promise is ~10 s (runner.CONNECT_TIMEOUT_S), plus Python's start


def sweep_with_scheduler(address: str, tmp_path) -> tuple[subprocess.CompletedProcess, float]:
    """``python -m vae_utils sweep --scheduler ADDRESS``: the process and how long it took."""
    cmd = [sys.executable, "-m", "vae_utils", "sweep", "--out", str(tmp_path / "s"), "--epochs", "1"]
    t0 = time.monotonic()
    proc = subprocess.run([*cmd, "--scheduler", address], capture_output=True, text=True, timeout=DEADLINE_S * 3)
    return proc, time.monotonic() - t0


def one_line(proc, code: int) -> str:
    """Exit ``code``, exactly one line on stderr (no traceback, no ignored-exception report)."""
    assert proc.returncode == code, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    return lines[0]


@pytest.fixture
def listener():
    """A TCP listener on 127.0.0.1 that accepts and then says ``reply`` (nothing when None)."""
    sockets = []

    def start(reply: bytes | None) -> str:
        server = socket.create_server(("127.0.0.1", 0))
        sockets.append(server)

        def serve():
            while True:
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                sockets.append(conn)
                if reply is not None:
                    conn.sendall(reply)

        threading.Thread(target=serve, daemon=True).start()
        return f"tcp://127.0.0.1:{server.getsockname()[1]}"

    yield start
    for s in sockets:
        s.close()


@pytest.mark.slow
def test_a_port_that_accepts_and_never_answers_is_one_line_within_the_deadline(listener, tmp_path):
    """It used to be silent for over 400 s: Dask's handshake read has no deadline of its own."""
    address = listener(None)
    proc, took = sweep_with_scheduler(address, tmp_path)
    line = one_line(proc, 1)
    assert f"the Dask scheduler at {address} did not answer" in line
    assert took < DEADLINE_S
    assert not (tmp_path / "s").exists()


def test_a_service_answering_other_bytes_is_one_line_naming_the_address(listener, tmp_path):
    """An HTTP server's bytes read as a frame length used to end in ``Unable to allocate 3.07 EiB``."""
    address = listener(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" * 4)
    proc, took = sweep_with_scheduler(address, tmp_path)
    line = one_line(proc, 1)
    assert f"{address} did not answer as a Dask scheduler" in line
    assert took < DEADLINE_S


@pytest.mark.parametrize(
    "address", ["http://127.0.0.1:8786", "", "tcp://", "127.0.0.1:notaport", "tcp://127.0.0.1:99999"]
)
def test_a_malformed_address_is_bad_input_at_once_without_a_hang_after_it(address, tmp_path):
    """The right line used to be followed by a 20 s hang and an ignored-exception traceback."""
    proc, took = sweep_with_scheduler(address, tmp_path)
    line = one_line(proc, 2)
    assert f"scheduler={address!r} is not allowed; allowed: " in line and "tcp://HOST:PORT" in line
    assert took < DEADLINE_S / 3


def test_a_workers_address_is_refused_as_a_worker_and_the_schedulers_is_accepted():
    """The probe asks the server who it is: a worker's port answers Dask, but it is not a scheduler."""
    from distributed import LocalCluster

    from vae_utils.experiments import runner

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None) as c:
        client, owned = runner._connect(c.scheduler_address)
        with client:
            assert owned and client.scheduler.address == c.scheduler_address
        worker = next(iter(c.workers.values())).address
        with pytest.raises(ConnectionError, match=f"{worker} did not answer as a Dask scheduler .it is a Dask worker"):
            runner._connect(worker)
