"""One run per output directory: a lock file that a command holds for its whole life.

Two runs writing into one ``train.output_dir`` (or one eval directory, or one annotation output)
overwrite each other's checkpoints, metrics and predictions. A command that owns a directory takes
:func:`run_lock` on it first: ``fcntl.flock`` on ``<directory>/.videor1.lock``, whose content names
the holder (pid, host, start time, command line). A second run fails at once with
:class:`RunLockError` naming that holder.

The kernel drops a ``flock`` when its process dies, however it dies, so a lock left by a run that
was killed (``kill -9``, OOM killer, a lost node) is free: the next run takes it over and logs
whose it was (and, on the same host, that the pid is gone). A run that ends normally empties the
file. On network filesystems the lock is only as good as their ``flock`` (NFSv4 and Lustre with
``flock`` mounts honour it across hosts).

Under ``torchrun`` only global rank 0 (``RANK``) takes the lock: the other ranks of the same run
write into the same directory by design, and every rank taking it would make rank 1 refuse its own
rank 0. When rank 0 refuses to start, torchrun stops the other ranks (they are waiting for it).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from videor1.utils.logging import get_logger

log = get_logger(__name__)

LOCK_FILE = ".videor1.lock"


class RunLockError(RuntimeError):
    """Another live run holds the directory's lock."""


def _holder_text(holder: dict[str, Any]) -> str:
    if not holder:
        return "an unknown process (the lock file names no holder)"
    started = holder.get("started")
    when = (
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started))
        if isinstance(started, int | float)
        else "?"
    )
    return f"pid {holder.get('pid')} on {holder.get('host')}, started {when} ({holder.get('command', '?')})"


def _read_holder(fd: int) -> dict[str, Any]:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 1 << 16).decode("utf-8", errors="replace").strip()
    if not text:
        return {}
    try:
        holder = json.loads(text)
    except json.JSONDecodeError:
        return {"pid": "?", "host": "?", "command": f"unreadable lock file: {text[:80]!r}"}
    return holder if isinstance(holder, dict) else {}


def _pid_gone(holder: dict[str, Any]) -> bool | None:
    """Whether the holder's pid no longer runs; None when it can't be told (another host)."""
    pid = holder.get("pid")
    if holder.get("host") != socket.gethostname() or not isinstance(pid, int):
        return None
    try:
        os.kill(pid, 0)
    except OSError as e:
        return e.errno == errno.ESRCH
    return False


class RunLock:
    """A held lock; :meth:`release` (or leaving :func:`run_lock`) empties the file and unlocks it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)  # a normal end leaves no holder behind
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


def acquire_run_lock(directory: str | os.PathLike, command: str, *, name: str = LOCK_FILE) -> RunLock:
    """Lock ``directory`` (created if missing) for this process; raises :class:`RunLockError` naming the holder.

    ``command`` is what the lock file says this run is (``"videor1 sft"``); ``name`` the lock file's
    name (an annotation output ``x.json`` uses ``.x.json.lock`` so two outputs can share a folder).
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_holder(fd)
        os.close(fd)
        raise RunLockError(
            f"{root} is in use by another run: {_holder_text(holder)} holds {path}. Wait for it to "
            "finish or stop it, or choose another output directory"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    previous = _read_holder(fd)
    if previous:
        gone = _pid_gone(previous)
        state = {
            True: "whose process is gone",
            False: "whose pid is alive (reused, or this filesystem ignores flock)",
            None: "on another host",
        }
        log.warning(
            "%s: taking over the lock left by a run that ended without releasing it: %s, %s",
            root,
            _holder_text(previous),
            state[gone],
        )
    me = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.time(),
        "command": command,
        "argv": sys.argv,
    }
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, (json.dumps(me) + "\n").encode("utf-8"))
    return RunLock(path, fd)


@contextmanager
def run_lock(
    directory: str | os.PathLike, command: str, *, name: str = LOCK_FILE
) -> Iterator[RunLock | None]:
    """Hold :func:`acquire_run_lock` for the ``with`` block on global rank 0; other torchrun ranks hold nothing."""
    if int(os.environ.get("RANK", "0")) != 0:
        yield None
        return
    lock = acquire_run_lock(directory, command, name=name)
    try:
        yield lock
    finally:
        lock.release()
