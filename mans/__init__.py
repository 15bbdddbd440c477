"""Memory Attention Networks (MANs) for skeleton-based action recognition, in Keras 3.

Layers, lowest first (a module imports only from its own layer or those above it in this list):
    skeleton_io, denoise, utkinect, msr_action3d, preprocess, splits, datasets,
    synthetic, storage, recordings, cli                             numpy / h5py / pandas only, no Keras
    layers, augment, model                                          keras, keras.ops
    data, train_config, runfolder, checkpoints, distribution,
    callbacks, training, evaluation, explain, stream                the run-level logic (stream imports
                                                                    Keras only to classify, not to print frames)

`import mans` does not import Keras: `mans.build_model` is loaded on first use, so preprocessing
never pays for a deep-learning backend.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "build_model":
        from mans.model import build_model

        return build_model
    raise AttributeError(f"module 'mans' has no attribute {name!r}")
