"""The server under test as a child process: the one harness the benchmarks and the tests share.

    with ServerProcess(model_dir=DIR, log_path=LOG, workers=2) as server:  # on a free port
        server.wait_healthy()         # /ping answers 200 and every worker is up
        ...server.base_url...         # on exit: SIGTERM to the process group, then SIGKILL

`ServerProcess(argv=[...], port=P, log_path=LOG)` runs any other server that answers GET /ping
(a stand-in, the benchmark's floor) the same way. Also samples each worker's resident memory
(RSS) with psutil while a run goes on, so a soak can say how much every worker grew, and a fault
run can see a killed worker replaced.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent

SERVE_COMMAND: Final = (sys.executable, "-m", "container", "serve")
"""The server as users start it from a checkout (`container.entrypoint:main`, as in the image)."""

LOG_TAIL_CHARS: Final = 3000

__all__ = [
    "REPO_ROOT",
    "SERVE_COMMAND",
    "RssSample",
    "RssSampler",
    "ServerProcess",
    "free_port",
    "ping",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def ping(port: int, *, timeout: float = 2.0, host: str = "127.0.0.1") -> int | None:
    """GET /ping: the status, or None when no answer came within `timeout` seconds."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", "/ping")
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


class ServerProcess:
    """`SERVE_COMMAND --model-dir DIR --host 127.0.0.1 --port P --workers N` (or `argv`, which
    listens on `port`) in its own process group.

    The process group lets `stop` reach the workers even when the supervisor is killed first, so
    nothing outlives the run. Output goes to `log_path` (read it with `log()`). `env` is added to
    this process's environment, with this checkout first on PYTHONPATH.
    """

    def __init__(
        self,
        *,
        log_path: Path,
        model_dir: Path | None = None,
        workers: int = 1,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
        command: Sequence[str] = SERVE_COMMAND,
        argv: Sequence[str] | None = None,
    ) -> None:
        if argv is None and model_dir is None:
            raise ValueError("give model_dir (the server) or argv (another server)")
        if argv is not None and port is None:
            raise ValueError("argv needs the port it makes the server listen on")
        self.port = free_port() if port is None else port
        self.workers = workers
        self.log_path = log_path
        self.argv = (
            list(argv)
            if argv is not None
            else [
                *command,
                "--model-dir",
                str(model_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                *extra_args,
            ]
        )
        merged = dict(os.environ)
        # The server imports this checkout's packages wherever the caller runs from.
        merged["PYTHONPATH"] = os.pathsep.join(
            part for part in (str(REPO_ROOT), merged.get("PYTHONPATH", "")) if part
        )
        merged.update(env or {})
        merged.setdefault("PYTHONUNBUFFERED", "1")
        self._env = merged
        self._log: IO[bytes] | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self._env,
            start_new_session=True,
        )
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the server has not been started")
        return self.process.pid

    def log(self) -> str:
        """Everything the server wrote to stdout and stderr so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def wait_healthy(self, *, timeout: float = 60.0, poll_s: float = 0.1) -> None:
        """Wait for /ping to answer 200 (and, with several workers, for all of them to be up).

        Raises RuntimeError when the server exits first, TimeoutError after `timeout` seconds;
        both end with the tail of the server's log.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.returncode()
            if code is not None:
                raise RuntimeError(
                    f"the server exited with {code} before /ping answered 200:\n{self._log_tail()}"
                )
            if ping(self.port, timeout=1.0) == 200 and len(self.worker_pids()) >= self.workers:
                return
            time.sleep(poll_s)
        raise TimeoutError(f"/ping did not answer 200 within {timeout:.0f} s:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return self.log()[-LOG_TAIL_CHARS:]
        except OSError:
            return "(no log)"

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: the spawned workers, or the server itself alone."""
        if self.process is None or self.returncode() is not None:
            return []
        if self.workers <= 1:
            return [self.process.pid]
        try:
            children = psutil.Process(self.process.pid).children(recursive=False)
        except psutil.Error:
            return []
        pids = []
        for child in children:
            with contextlib.suppress(psutil.Error):
                cmdline = " ".join(child.cmdline())
                if "multiprocessing" in cmdline and "resource_tracker" not in cmdline:
                    pids.append(child.pid)
        return sorted(pids)

    def signal(self, number: int) -> None:
        """Send a signal to the supervisor (PID 1 in a container)."""
        if self.process is not None and self.returncode() is None:
            os.kill(self.process.pid, number)

    def wait(self, *, timeout: float) -> int:
        if self.process is None:
            raise RuntimeError("the server has not been started")
        return self.process.wait(timeout=timeout)

    def stop(self, *, grace: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL to the whole group after `grace` seconds. Safe to call twice."""
        if self.process is None:
            return None
        code = self.process.poll()
        if code is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                code = self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                code = None
        # Kill whatever is left in the group: workers orphaned by a killed supervisor included.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if code is None:
            code = self.process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@dataclass(frozen=True, kw_only=True)
class RssSample:
    at: float
    """`time.monotonic()` of the sample."""
    pid: int
    rss_bytes: int


class RssSampler:
    """Samples the RSS of the server's workers every `interval` seconds in a background thread."""

    def __init__(self, server: ServerProcess, *, interval: float = 1.0) -> None:
        self.server = server
        self.interval = interval
        self.samples: list[RssSample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def sample_once(self) -> list[RssSample]:
        now = time.monotonic()
        taken = []
        for pid in self.server.worker_pids():
            with contextlib.suppress(psutil.Error):
                taken.append(
                    RssSample(at=now, pid=pid, rss_bytes=psutil.Process(pid).memory_info().rss)
                )
        self.samples.extend(taken)
        return taken

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample_once()

    def __enter__(self) -> RssSampler:
        self.sample_once()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)
        self.sample_once()

    def growth(self, *, settle_until: float, window_s: float) -> dict[int, tuple[int, int]]:
        """Per worker: (median RSS in the first and in the last `window_s` after `settle_until`).

        Medians over windows of samples, not single points, so one page-in does not read as a leak.
        Workers that were not alive for both windows are left out.
        """
        by_pid: dict[int, list[RssSample]] = {}
        for sample in self.samples:
            if sample.at >= settle_until:
                by_pid.setdefault(sample.pid, []).append(sample)
        growth = {}
        for pid, samples in by_pid.items():
            first_end = samples[0].at + window_s
            last_start = samples[-1].at - window_s
            first = sorted(s.rss_bytes for s in samples if s.at <= first_end)
            last = sorted(s.rss_bytes for s in samples if s.at >= last_start)
            if len(samples) >= 2 and first and last:
                growth[pid] = (first[len(first) // 2], last[len(last) // 2])
        return growth
