"""Memory Attention Networks (MANs) for skeleton-based action recognition, in Keras 3.

One sub-package per stage; a sub-package imports only from those above it in this list (one exception, made
at call time: a raw format's joints and bones are read from its dataset's description in `preprocessing`):

    formats        raw recordings -> Skeleton, one module and one RawFormat per raw format   numpy, no Keras
    preprocessing  Skeleton -> S x S x 3 image, dataset descriptions, splits, HDF5 files     numpy, no Keras
    network        the TARM and STCM layers, the augmentation layers, build_model            keras, keras.ops
    training       batches, settings, run folders, checkpoints and resumption, devices
    evaluation     scores and reports, fusion, --explain, --stream, the paper's table

`stream.py` and `reproduce.py` here are the `python -m mans.stream` and `python -m mans.reproduce` command lines.

`import mans` is the one import a checkpoint needs: `keras.saving.load_model("best.keras")` then finds the
MANs layers (TARM and the augmentation layers), because they are registered as soon as Keras is imported,
before or after `mans`. `import mans` itself does not import Keras, so preprocessing never pays for a
deep-learning backend; `mans.build_model` is loaded on first use.
"""

import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"

# every module that registers a Keras class
_LAYER_MODULES = ("mans.network.layers", "mans.network.augment", "mans.network.regularise")


def register_layers() -> None:
    """Register every MANs Keras layer with `keras.saving` (imports Keras)."""
    for name in _LAYER_MODULES:
        importlib.import_module(name)


class _RegisterWhenKerasLoads(importlib.abc.MetaPathFinder):
    """Finds nothing itself: when `keras` is first imported, wraps its loader so that the MANs layers are
    registered right after Keras has finished loading, then leaves `sys.meta_path`."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        _remove_hook()
        spec = importlib.util.find_spec("keras")  # by the remaining finders
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisteringLoader(spec.loader)
        return spec


class _RegisteringLoader(importlib.abc.Loader):
    """Keras' own loader, then `register_layers`."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        try:
            self.loader.exec_module(module)
        except BaseException:
            _register_now_or_when_keras_loads()  # Keras failed to load: try again at its next import
            raise
        register_layers()

    def __getattr__(self, name):  # get_resource_reader, is_package, ... of the wrapped loader
        return getattr(self.loader, name)


def _remove_hook() -> None:
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _RegisterWhenKerasLoads)]


def _register_now_or_when_keras_loads() -> None:
    if "keras" in sys.modules:
        register_layers()
    elif not any(isinstance(finder, _RegisterWhenKerasLoads) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterWhenKerasLoads())


def __getattr__(name: str):
    if name == "build_model":
        from mans.network.model import build_model

        return build_model
    raise AttributeError(f"module 'mans' has no attribute {name!r}")


_register_now_or_when_keras_loads()
