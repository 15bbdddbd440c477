"""mans/__init__.py: `import mans` is the one import a checkpoint needs, in either order with Keras, and it
loads no deep-learning backend for preprocessing."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
BACKENDS = ("keras", "tensorflow", "jax", "torch")

LOAD = """
import sys
{imports}
x = np.load(sys.argv[1])
np.save(sys.argv[3], keras.saving.load_model(sys.argv[2]).predict(x, verbose=0))
"""


def _python(script: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, cwd=REPO)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny MANs with TARM and every augmentation layer (mirror included), saved as best.keras."""
    import keras

    from mans.network.model import build_model
    from mans.preprocessing import preprocess

    folder = tmp_path_factory.mktemp("checkpoint")
    strengths = {"rotation": 30.0, "scale": 0.1, "jitter": 0.005, "time_warp": 0.3, "mirror": 0.5}
    model = build_model(8, size=50, gru_units=4, augmentation=strengths, augmentation_seed=1,
                        mirror_columns=preprocess.mirror_columns(preprocess.NTU_LAYOUT, 50))
    assert {"RandomMirror", "TARM"} <= {type(layer).__name__ for layer in model.layers}
    x = np.random.default_rng(0).normal(size=(2, 50, 50, 3)).astype(np.float32)
    np.save(folder / "x.npy", x)
    model.save(folder / "best.keras")
    return folder, keras.ops.convert_to_numpy(model.predict(x, verbose=0))


ORDERS = {"mans-first": "import mans\nimport keras\nimport numpy as np",
          "keras-first": "import keras\nimport numpy as np\nimport mans"}


@pytest.mark.parametrize("imports", ORDERS.values(), ids=ORDERS.keys())
def test_one_import_loads_a_checkpoint_with_tarm_and_augmentation(checkpoint, imports, tmp_path):
    folder, expected = checkpoint
    out = tmp_path / "out.npy"
    result = _python(LOAD.format(imports=imports), str(folder / "x.npy"), str(folder / "best.keras"), str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_array_equal(np.load(out), expected)


def test_without_mans_the_checkpoint_does_not_load(checkpoint):
    """The registration is what makes the load work (Keras cannot find custom classes by itself)."""
    folder, _ = checkpoint
    result = _python(LOAD.format(imports="import keras\nimport numpy as np"), str(folder / "x.npy"),
                     str(folder / "best.keras"), str(folder / "never.npy"))
    assert result.returncode != 0 and "Could not locate class" in result.stderr


def test_preprocessing_loads_no_deep_learning_backend():
    script = f"""
import importlib.util, sys
import mans, mans.preprocessing.storage, mans.preprocessing.preprocess, mans.preprocessing.synthetic
spec = importlib.util.spec_from_file_location("process_data", {str(REPO / "process_data.py")!r})
spec.loader.exec_module(importlib.util.module_from_spec(spec))
print(sorted(name for name in {BACKENDS!r} if name in sys.modules))
"""
    result = _python(script)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "[]"
