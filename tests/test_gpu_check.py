"""bench/gpu_check.sh: its small CPU mode runs every step (network rates, the NTU-60-sized schedule, a fresh
load and evaluate.py) and ends with its summary line."""

import os
import subprocess


def test_cpu_small_mode_runs_every_step(repo_root, tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow")}
    result = subprocess.run(["bash", "bench/gpu_check.sh", "--cpu-small"], cwd=repo_root, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    log = (tmp_path / "gpu_check.log").read_text()
    expected = ("== 0.", "stand-in model", "== 1.", "resnet", "densenet161", "== 2.", "full run: 1 epochs",
                "50 epochs: estimated", "== 3.", "loaded", "with import mans", "top-1", "== gpu_check done")
    for line in expected:
        assert line in log, f"{line!r} missing from the log:\n{log[-3000:]}"


def test_unknown_option_is_one_line(repo_root):
    result = subprocess.run(["bash", "bench/gpu_check.sh", "--fast"], cwd=repo_root, capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.strip().startswith("error: unknown option --fast")

