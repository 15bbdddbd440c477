"""The temporal attention recalibration module (TARM) of MANs as one registered Keras layer.

Xie et al., IJCAI 2018, section 3.1 and the authors' Keras demo (docs/paper.md, "The network"). For one
coordinate channel a (T x J: frames x joint columns):

    h   = Dense(units)(a)                                              (B, T, units)
    m   = Bidirectional(GRU(units, return_sequences), merge="sum")(h)  (B, T, units)
    w   = Dense(T, sigmoid)(Dense(int(T / ratio), relu)(mean_f(h)))    (B, T), one weight per frame
    out = a + Dense(J)(m * w[..., None])                               (B, T, J)

Importing this module registers the layer as "mans>TARM", which `keras.saving.load_model` needs to
read a saved MANs model back.
"""

from __future__ import annotations

import types

import keras
from keras import ops

__all__ = ["TARM"]


@keras.saving.register_keras_serializable(package="mans")
class TARM(keras.layers.Layer):
    """Temporal attention recalibration: a residual BiGRU memory re-weighted frame by frame.

    Args:
        units: int, width of the embedding Dense and of each GRU direction (64 in the demo, 128 in the
            DenseNet-161 variant).
        attention_ratio: int, the attention bottleneck has int(T / attention_ratio) units (alpha = 16).
        dropout: float in [0, 1), GRU input dropout (0.5 in the demo).
        recurrent_dropout: float in [0, 1), GRU recurrent dropout (0.5 in the demo; 0 lets the GRU use
            the fused cuDNN kernel on a GPU together with reset_after=True).
        l2: float >= 0, L2 factor on the GRU input kernels only (1e-4; 0 means no regularizer).
        reset_after: bool, the GRU's reset-gate convention. False is the demo's Keras 2 GRU (one bias
            vector per gate); True is Keras 3's default and cuDNN's.
        identity_start: bool. False: the output Dense starts as Keras' glorot_uniform (the demo). True: it
            starts at zero, so the layer starts as the identity (out = a) and learns its recalibration as a
            residual from there (the zero-initialised last layer of a residual branch, Goyal et al. 2017).
            The network is the same either way; only its starting weights differ.
        frozen_attention: bool. True keeps the two attention Dense layers (squeeze, excite) at their starting
            weights: the authors' demo builds them inside a Lambda that Keras 2 does not track, so they are
            never trained there (docs/paper.md). False (ours) trains them.
        channel: None or int. None: the input is one channel, (B, T, J), and so is the output. An int c:
            the input is the whole skeleton image (B, T, J, C), the layer reads channel c and returns
            (B, T, J, 1), ready to be concatenated with the other channels (no Lambda split needed).
        **kwargs: `keras.layers.Layer` arguments (name, dtype, ...).

    Call:
        inputs: (B, T, J) or (B, T, J, C) float, see `channel`.
        training: bool or None, switches the GRU dropouts.
        return_attention: bool; when True the call returns (outputs, attention), attention (B, T).

    Returns:
        (B, T, J), or (B, T, J, 1) when `channel` is set; with return_attention also (B, T) in (0, 1).

    The widths of the attention Dense layers and of the output Dense are T, int(T / ratio) and J, known
    only from the input shape, so those three sub-layers are created in `build` (as keras-hub's
    TransformerEncoder does for its input-sized layers); the others are created in `__init__`.
    """

    def __init__(
        self,
        units: int,
        attention_ratio: int = 16,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        l2: float = 1e-4,
        reset_after: bool = False,
        channel: int | None = None,
        identity_start: bool = False,
        frozen_attention: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_int("units", units, 1)
        _check_int("attention_ratio", attention_ratio, 1)
        _check_rate("dropout", dropout)
        _check_rate("recurrent_dropout", recurrent_dropout)
        _check_l2(l2)
        for flag, value in (("reset_after", reset_after), ("identity_start", identity_start),
                            ("frozen_attention", frozen_attention)):
            if not isinstance(value, bool):
                raise ValueError(f"`{flag}` must be True or False. Received: {flag}={value!r}")
        if channel is not None:
            _check_int("channel", channel, 0)
        self.units = units
        self.attention_ratio = attention_ratio
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.l2 = float(l2)
        self.reset_after = reset_after
        self.channel = channel
        self.identity_start = identity_start
        self.frozen_attention = frozen_attention

        self.embed = keras.layers.Dense(units, name="embed", dtype=self.dtype_policy)
        gru = keras.layers.GRU(
            units,
            return_sequences=True,
            kernel_initializer="orthogonal",
            recurrent_initializer="orthogonal",
            kernel_regularizer=keras.regularizers.L2(self.l2) if self.l2 > 0 else None,
            dropout=self.dropout,
            recurrent_dropout=self.recurrent_dropout,
            reset_after=reset_after,
            name="gru",
            dtype=self.dtype_policy,
        )
        self.memory = keras.layers.Bidirectional(gru, merge_mode="sum", name="bigru", dtype=self.dtype_policy)
        # Bidirectional rebuilds its two GRUs by serialising `gru`; while a checkpoint loads, Keras records each
        # serialised object under its id(), so a template freed here and allocated at the same address by the next
        # TARM would be handed that TARM's GRUs (an intermittent load failure, about 1 in 60 loads). Holding the
        # template, outside Keras' layer tracking, keeps its address from being reused during the load.
        self._gru_template = types.SimpleNamespace(layer=gru)
        self.squeeze = None
        self.excite = None
        self.project = None

    def _channel_shape(self, input_shape) -> tuple:
        """(B, T, J) of the channel the layer reads, from the shape it is called on."""
        input_shape = tuple(input_shape)
        if self.channel is None:
            if len(input_shape) != 3:
                raise ValueError(
                    f"TARM {self.name!r} with channel=None expects inputs (batch, frames, joints). "
                    f"Received: input_shape={input_shape}"
                )
            return input_shape
        if len(input_shape) != 4 or (input_shape[-1] is not None and self.channel >= input_shape[-1]):
            raise ValueError(
                f"TARM {self.name!r} with channel={self.channel} expects inputs (batch, frames, joints, "
                f"channels) with more than {self.channel} channels. Received: input_shape={input_shape}"
            )
        return input_shape[:3]

    def build(self, input_shape):
        _, frames, joints = self._channel_shape(input_shape)
        if frames is None or joints is None:
            raise ValueError(
                f"TARM needs a fixed number of frames and joints. Received: input_shape={tuple(input_shape)}"
            )
        bottleneck = int(frames / self.attention_ratio)
        if bottleneck < 1:
            raise ValueError(
                f"TARM needs frames >= attention_ratio for a bottleneck of at least one unit. "
                f"Received: frames={frames}, attention_ratio={self.attention_ratio}"
            )
        policy = self.dtype_policy
        self.squeeze = keras.layers.Dense(bottleneck, activation="relu", name="squeeze", dtype=policy)
        self.excite = keras.layers.Dense(frames, activation="sigmoid", name="excite", dtype=policy)
        start = "zeros" if self.identity_start else "glorot_uniform"
        self.project = keras.layers.Dense(joints, kernel_initializer=start, name="project", dtype=policy)
        self.embed.build((None, frames, joints))
        self.memory.build((None, frames, self.units))
        self.squeeze.build((None, frames))
        self.excite.build((None, bottleneck))
        self.project.build((None, frames, self.units))
        self.squeeze.trainable = self.excite.trainable = not self.frozen_attention

    def call(self, inputs, training=None, return_attention=False):
        a = inputs if self.channel is None else inputs[:, :, :, self.channel]  # (B, T, J)
        h = self.embed(a)  # (B, T, units)
        m = self.memory(h, training=training)  # (B, T, units), forward + backward
        w = self.excite(self.squeeze(ops.mean(h, axis=-1)))  # (B, T)
        out = a + self.project(m * ops.expand_dims(w, -1))  # (B, T, J); w broadcast over features
        if self.channel is not None:
            out = ops.expand_dims(out, -1)  # (B, T, J, 1)
        return (out, w) if return_attention else out

    def attention_weights(self, inputs):
        """The per-frame attention weights for a batch (independent of dropout: no training switch).

        Args:
            inputs: (B, T, J) or (B, T, J, C) array, as for `call`.

        Returns:
            (B, T) tensor in (0, 1).
        """
        return self(inputs, training=False, return_attention=True)[1]

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "attention_ratio": self.attention_ratio,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "l2": self.l2,
            "reset_after": self.reset_after,
            "channel": self.channel,
            "identity_start": self.identity_start,
            "frozen_attention": self.frozen_attention,
        }


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}. Received: {name}={value!r}")


def _check_l2(l2: object) -> None:
    if isinstance(l2, bool) or not isinstance(l2, (int, float)) or l2 < 0:
        raise ValueError(f"`l2` must be a number >= 0. Received: l2={l2!r}")


def _check_rate(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"`{name}` must be a number in [0, 1). Received: {name}={value!r}")
