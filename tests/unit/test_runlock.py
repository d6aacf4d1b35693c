"""One run per directory: a second process is refused naming the holder; a killed holder's lock is taken
over; training stops on SIGTERM / Ctrl-C with one line naming the checkpoint a resume continues from."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from videor1.utils.runlock import LOCK_FILE, RunLockError, acquire_run_lock, run_lock

HOLD = textwrap.dedent(
    """
    import sys, time
    from videor1.utils.runlock import acquire_run_lock
    lock = acquire_run_lock(sys.argv[1], "videor1 sft")
    print("locked", flush=True)
    time.sleep(120)
    """
)


def hold_lock(directory: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(directory)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_run_is_refused_naming_the_holder_and_a_killed_ones_lock_is_taken_over(tmp_path, caplog):
    run = tmp_path / "run"
    holder = hold_lock(run)
    try:
        with pytest.raises(RunLockError) as e:
            acquire_run_lock(run, "videor1 sft")
        message = str(e.value)
        assert f"pid {holder.pid} on {socket.gethostname()}, started 20" in message
        assert "(videor1 sft)" in message and str(run / LOCK_FILE) in message
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    lock = acquire_run_lock(run, "videor1 rl")  # the kernel dropped the dead process's flock
    assert (
        f"taking over the lock left by a run that ended without releasing it: pid {holder.pid}" in caplog.text
    )
    assert "whose process is gone" in caplog.text
    lock.release()
    assert (run / LOCK_FILE).read_text() == ""  # a normal end leaves no holder
    caplog.clear()
    with run_lock(run, "videor1 sft"):
        pass
    assert "taking over" not in caplog.text


def test_only_global_rank_0_takes_the_lock(tmp_path, monkeypatch):
    run = tmp_path / "run"
    with run_lock(run, "videor1 sft") as lock:
        assert lock is not None
        monkeypatch.setenv("RANK", "1")
        with run_lock(run, "videor1 sft") as other:  # the same run's rank 1 writes here by design
            assert other is None
        monkeypatch.setenv("RANK", "0")
        with pytest.raises(RunLockError):
            acquire_run_lock(run, "videor1 sft")


def test_sft_into_a_directory_in_use_exits_2_naming_the_holder(tmp_path, capsys):
    from videor1.cli import main

    run = tmp_path / "run"
    config = tmp_path / "sft.yaml"
    config.write_text(f"train:\n  max_steps: 1\n  output_dir: {run}\n")
    holder = hold_lock(run)
    try:
        assert main(["sft", "--config", str(config)]) == 2
    finally:
        holder.kill()
        holder.wait(timeout=30)
    errors = [line for line in capsys.readouterr().err.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "run directory in use" in errors[0] and f"pid {holder.pid}" in errors[0]


# A training command whose train() has written step 3 and is still running when the signal comes.
# Ctrl-C is restored first: a process started from a shell's background job inherits SIGINT ignored
# (POSIX), and Python then installs no KeyboardInterrupt handler, so the test would depend on how the
# suite was launched.
TRAINING = textwrap.dedent(
    """
    import signal, sys, time, types
    from pathlib import Path
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def train(cfg, **kwargs):
        step = Path(cfg.train.output_dir) / "checkpoints" / "step-00000003"
        step.mkdir(parents=True)
        (step / "trainer_state.json").write_text("{}")
        print("training", flush=True)
        time.sleep(120)

    sys.modules["videor1.train.sft"] = types.SimpleNamespace(train=train)  # no torch import to wait for
    from videor1.cli import main
    sys.exit(main(["sft", "--config", sys.argv[1]]))
    """
)


@pytest.mark.parametrize(
    ("sig", "status", "first"),
    [(signal.SIGTERM, 143, "terminated (SIGTERM)"), (signal.SIGINT, 130, "interrupted")],
)
def test_a_signal_stops_training_with_one_line_naming_the_last_checkpoint(tmp_path, sig, status, first):
    run = tmp_path / "run"
    config = tmp_path / "sft.yaml"
    config.write_text(f"train:\n  max_steps: 10\n  output_dir: {run}\n")
    proc = subprocess.Popen(
        [sys.executable, "-c", TRAINING, str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "training"
    time.sleep(0.2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert f"{first}: the last checkpoint is {run / 'checkpoints' / 'step-00000003'}" in lines[0]
    assert "`videor1 sft --resume auto` (same config) continues from it" in lines[0]
    assert (run / LOCK_FILE).read_text() == ""  # the lock was released on the way out


def test_two_annotation_outputs_in_one_folder_lock_separately(tmp_path):
    with run_lock(tmp_path, "videor1 annotate", name=".a.json.lock"):
        with run_lock(tmp_path, "videor1 annotate", name=".b.json.lock") as other:
            assert other is not None
        with pytest.raises(RunLockError, match=r"\.a\.json\.lock"):
            acquire_run_lock(tmp_path, "videor1 annotate", name=".a.json.lock")
