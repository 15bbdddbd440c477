"""See what the model sees: one picture per raw recording (`evaluate.py CKPT --explain FILE... --out DIR`).

Each picture (`<recording>.png`) shows, for one recording preprocessed exactly as the checkpoint's training
data was:
    top row      the skeleton at a few frames, drawn with the dataset's bones from the normalised joints (x
                 across, z along the spine; the actor's right side in red), the joints whose occlusion costs
                 the explained class most ringed and named;
    attention    the TARM attention weight of every image row (one per frame) for x, y and z
                 (`mans.network.model.frame_attention`) on its whole 0-1 scale, with its spread over the frames beside
                 the spread freshly initialised copies of the network have on the same recording: frames are
                 named "most" and "least" attended only where the trained spread is the larger;
    importance   the drop of the explained class's probability when each time step is hidden
                 (`mans.evaluation.importance`, occlusion: forward passes only), padding rows shaded;
    bottom       the input image with the time x joint occlusion map over it, the per-joint drops, and the
                 top-5 actions with their probabilities.
Beside it `<recording>.json` holds the numbers drawn (attention, per-frame, per-joint and time x joint
importance). With `gif=True` also `<recording>.gif`: the skeleton frame by frame beside the attention curve
(matplotlib's animation with the Pillow writer). A checkpoint trained with --no-tarm has no attention: its
pictures say so in one line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import sys
import textwrap
from collections.abc import Iterator, Sequence

import keras
import numpy as np
from tqdm import tqdm

from mans import formats
from mans.evaluation import importance
from mans.evaluation.score import TARM_LAYERS, Predictor, load_predictor
from mans.preprocessing import datasets, preprocess
from mans.training.data import UsageError

TOP = 5  # actions listed in a picture
SKELETON_PANELS = 5  # frames drawn in the top row
GIF_FPS = 8
BODY_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:purple")
CHANNEL_COLOURS = {"x": "tab:red", "y": "tab:green", "z": "tab:blue"}
NO_ATTENTION = "no attention to show: this checkpoint has no TARM (trained with --no-tarm)"
TOP_JOINTS = 3  # joints ringed on the skeletons
JOINT_BARS = 8  # joints listed in the per-joint panel
RIGHT_COLOUR = "tab:red"
METHOD = ("occlusion: the drop of the class probability when a window of time steps is paused (the straight line "
          "between its neighbours), a joint is held still at its mean, or a joint is paused in one time block")


@dataclasses.dataclass(frozen=True)
class Explanation:
    """What one picture shows; every array is what is drawn.

    image: (S, S, 3) the model's input. stcm_input: (S, S, 3) what the STCM sees (the TARM output; the input
    itself without TARM). attention: (3, S) frame weights for x, y, z, or None without TARM. sources: (S,)
    the sequence row each image row holds, -1 for padding. rows: T, the sequence rows (the recording's frames
    in faithful mode, those with a kept body in denoised mode). shown: the image rows drawn as skeletons.
    most, least: the most and least attended real rows (mean over x, y, z), None without TARM.
    top: [(class index, name, probability)], best first. skeleton_image: (S, S, 3) the joint positions the
    skeletons are drawn from (the image itself for a joint checkpoint; bone and motion images are not
    positions). initial_spread: the largest spread (max - min over the real rows) of the mean attention that
    FRESH_COPIES freshly initialised copies of the network give the same image, None without TARM. importance: the
    occlusion importance for the explained class. preprocessing: the checkpoint's. joint_names: of one body.
    """

    name: str
    source: str
    dataset: str
    mode: str
    recorded_frames: int
    rows: int
    image: np.ndarray
    stcm_input: np.ndarray
    attention: np.ndarray | None
    sources: np.ndarray
    shown: tuple[int, ...]
    most: int | None
    least: int | None
    top: list[tuple[int, str, float]]
    layout: preprocess.JointLayout
    bones: tuple[tuple[int, int], ...]
    skeleton_image: np.ndarray | None = None
    initial_spread: float | None = None
    importance: importance.Importance | None = None
    preprocessing: preprocess.Preprocessing = preprocess.DEMO
    joint_names: tuple[str, ...] = ()

    @property
    def real_rows(self) -> np.ndarray:
        return np.flatnonzero(self.sources >= 0)

    @property
    def positions(self) -> np.ndarray:
        """The image the skeletons are drawn from."""
        return self.image if self.skeleton_image is None else self.skeleton_image

    @property
    def attention_spread(self) -> float | None:
        """max - min over the real rows of the attention averaged over x, y, z; None without TARM."""
        if self.attention is None:
            return None
        return float(np.ptp(self.attention.mean(0)[self.real_rows]))

    @property
    def attention_distinct(self) -> bool:
        """Whether the trained attention varies over the frames more than at initialisation (so that "most" and
        "least" attended mean something)."""
        spread = self.attention_spread
        return spread is not None and self.initial_spread is not None and spread > self.initial_spread

    def column_name(self, column: int) -> str:
        """A joint column of the layout in words: "right hand" (one body) or "body 2 right hand"."""
        body, joint = divmod(int(column), self.layout.num_joints)
        name = self.joint_names[joint] if joint < len(self.joint_names) else f"joint {joint + 1}"
        return name if self.layout.max_bodies == 1 else f"body {body + 1} {name}"


def inspector(model: keras.Model) -> keras.Model:
    """A model sharing `model`'s weights that returns, in one compiled pass over (B, S, S, 3) images:
    the predictions (B, classes), what the STCM sees (B, S, S, 3), and, with TARM, the frame attention
    (B, 3, S), the values `mans.network.model.frame_attention` computes eagerly (about 30 times slower on the CPU)."""
    names = {layer.name for layer in model.layers}
    if not set(TARM_LAYERS) <= names:
        return keras.Model(model.input, [model.output, model.input])  # no TARM: the STCM sees the input
    weights = [_attention_twin(model.get_layer(name))(model.get_layer(name).input, return_attention=True)[1]
               for name in TARM_LAYERS]  # 3 x (B, T)
    attention = keras.layers.Concatenate(axis=1)([keras.ops.expand_dims(w, 1) for w in weights])  # (B, 3, T)
    return keras.Model(model.input, [model.output, model.get_layer("tarm_stack").output, attention])


def _attention_twin(tarm: keras.layers.Layer) -> keras.layers.Layer:
    """A copy of a TARM layer with its weights, first called with return_attention=True: Keras' functional
    graph checks a layer's output count against its first call, in which the model's own TARM returned one."""
    twin = type(tarm).from_config({**tarm.get_config(), "name": f"{tarm.name}_attention"})
    twin.build(tarm.input.shape)
    twin.set_weights(tarm.get_weights())
    return twin


def _shown_rows(real: np.ndarray, attention: np.ndarray | None) -> tuple[tuple[int, ...], int | None, int | None]:
    """The image rows to draw: first, last, most and least attended real rows, then evenly spaced ones."""
    if attention is None:
        most = least = None
        chosen = {int(real[0]), int(real[-1])}
    else:
        mean = attention.mean(0)[real]  # (real rows,) mean over x y z
        most, least = int(real[np.argmax(mean)]), int(real[np.argmin(mean)])
        chosen = {int(real[0]), int(real[-1]), most, least}
    for row in real[np.linspace(0, len(real) - 1, SKELETON_PANELS).astype(int)]:
        if len(chosen) >= min(SKELETON_PANELS, len(real)):
            break
        chosen.add(int(row))
    return tuple(sorted(chosen)), most, least


FRESH_COPIES = 3  # freshly initialised networks whose largest attention spread is the yardstick


def fresh_inspector(model: keras.Model) -> list[keras.Model]:
    """`inspector`s of FRESH_COPIES copies of `model` with newly initialised weights: the attention networks have
    before training; the largest spread among them is the yardstick of the trained attention's spread."""
    return [inspector(keras.models.clone_model(model)) for _ in range(FRESH_COPIES)]


def explain_recording(
    predictor: Predictor,
    recording: formats.Recording,
    source: str = "",
    probe: keras.Model | None = None,
    *,
    fresh: list[keras.Model] | None = None,
    target: int | None = None,
    window: int | None = None,
) -> Explanation:
    """Preprocess one recording as the training data was, run the model, and gather what a picture shows.

    probe: `inspector(predictor.model)`, built once for many recordings (built here when None). fresh:
    `fresh_inspector(predictor.model)` likewise. target: the class whose importance is measured (default: the
    predicted one). window: the time steps hidden together (`mans.evaluation.importance.default_window` by default).
    """
    rows = predictor.rows(recording.skeleton, source or recording.name)
    times = preprocess.row_times(recording.skeleton, predictor.preprocessing)
    positions = preprocess.image_from_rows(rows, predictor.size, predictor.preprocessing.frames, times)
    image = predictor.image_of_rows(recording.skeleton, rows)
    outputs = (probe or inspector(predictor.model)).predict_on_batch(image[None])  # batch of 1
    scores, seen = np.asarray(outputs[0][0], np.float32), np.asarray(outputs[1][0], np.float32)
    attention = np.asarray(outputs[2][0], np.float64) if len(outputs) > 2 else None  # (3, S)
    sources = preprocess.fixed_length_sources(len(rows), predictor.size, predictor.preprocessing.frames, times)
    real = np.flatnonzero(sources >= 0)
    shown, most, least = _shown_rows(real, attention)
    initial = None
    if attention is not None:
        spreads = [np.ptp(np.asarray(copy.predict_on_batch(image[None])[2][0], np.float64).mean(0)[real])
                   for copy in fresh or fresh_inspector(predictor.model)]
        initial = float(max(spreads))
    layout = recording.layout
    offset = (predictor.size - layout.columns) // 2
    occlusion = importance.occlusion_importance(
        predictor.scores, image, real, np.arange(offset, offset + layout.columns), target=target, window=window,
        joints_per_body=layout.num_joints)
    return Explanation(
        name=recording.name,
        source=source or recording.name,
        dataset=predictor.dataset,
        mode=predictor.preprocessing.mode,
        recorded_frames=recording.skeleton.num_frames,
        rows=len(rows),
        image=image,
        stcm_input=seen,
        attention=attention,
        sources=sources,
        shown=shown,
        most=most,
        least=least,
        top=predictor.top(scores, TOP),
        layout=recording.layout,
        bones=recording.bones,
        skeleton_image=positions,
        initial_spread=initial,
        importance=occlusion,
        preprocessing=predictor.preprocessing,
        joint_names=_joint_names(predictor.dataset),
    )


def _joint_names(dataset: str) -> tuple[str, ...]:
    try:
        return datasets.get_dataset(dataset).joint_names
    except ValueError:
        return ()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def body_joints(image: np.ndarray, row: int, layout: preprocess.JointLayout) -> list[np.ndarray]:
    """The (J, 3) joints of each body present in one image row (columns centred in S as step 6 puts them)."""
    return [body for _, body in _numbered_bodies(image, row, layout)]  # an absent body is a zero block


def _numbered_bodies(image: np.ndarray, row: int, layout: preprocess.JointLayout) -> list[tuple[int, np.ndarray]]:
    """(body number, (J, 3) joints) of each body present in one image row."""
    columns = preprocess.fixed_length_sources(layout.columns, image.shape[1])
    first = int(np.flatnonzero(columns == 0)[0])
    joints = image[row, first : first + layout.columns].reshape(layout.max_bodies, layout.num_joints, 3)
    return [(number, body) for number, body in enumerate(joints) if np.any(body)]


def _skeleton_limits(expl: Explanation, rows: Sequence[int]) -> tuple[tuple[float, float], tuple[float, float]]:
    points = [body for row in rows for body in body_joints(expl.positions, row, expl.layout)]
    if not points:
        return (-1.0, 1.0), (-1.0, 1.0)
    xz = np.concatenate(points)[:, [0, 2]]
    low, high = xz.min(0), xz.max(0)
    centre, half = (low + high) / 2, max(float((high - low).max()) / 2 * 1.15, 0.1)
    return (centre[0] - half, centre[0] + half), (centre[1] - half, centre[1] + half)


def _right_joints(layout: preprocess.JointLayout) -> list[int]:
    """The joints of the actor's right side: the second of each (left, right) mirror pair."""
    return [right for _, right in layout.mirror]


def _draw_skeleton(ax, expl: Explanation, row: int, limits, bone_alpha: float = 1.0,
                   marked: Sequence[int] = ()) -> list:
    """Bones and joints of every body in `row`, front view (x across, z along the spine), the actor's right
    side in red and the `marked` joint columns ringed; returns the bone lines."""
    lines = []
    right = _right_joints(expl.layout)
    for k, (number, body) in enumerate(_numbered_bodies(expl.positions, row, expl.layout)):
        colour = BODY_COLOURS[k % len(BODY_COLOURS)]
        for a, b in expl.bones:
            side = RIGHT_COLOUR if a in right and b in right else colour
            (line,) = ax.plot(body[[a, b], 0], body[[a, b], 2], color=side, lw=2, alpha=bone_alpha)
            lines.append(line)
        ax.scatter(body[:, 0], body[:, 2], s=6, color=colour, zorder=3)
        ax.scatter(body[right, 0], body[right, 2], s=6, color=RIGHT_COLOUR, zorder=3)
        rings = [c % expl.layout.num_joints for c in marked if c // expl.layout.num_joints == number]
        ax.scatter(body[rings, 0], body[rings, 2], s=120, facecolors="none", edgecolors="k", lw=1.5, zorder=4)
    ax.set_xlim(*limits[0])
    ax.set_ylim(*limits[1])
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    return lines


def _frame_label(expl: Explanation, row: int) -> str:
    return f"frame {int(expl.sources[row])}" if expl.mode == "faithful" else f"kept frame {int(expl.sources[row])}"


def _rgb(image: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Each channel scaled to [0, 1] over the real rows, for display as red, green, blue."""
    values = image[real] if len(real) else image
    low, high = values.min((0, 1)), values.max((0, 1))
    return np.clip((image - low) / np.where(high > low, high - low, 1.0), 0.0, 1.0)


def _time_caption(expl: Explanation, size: int) -> str:
    kept = "frames" if expl.mode == "faithful" else f"frames with a kept body (of {expl.recorded_frames})"
    if expl.rows > size:
        return f"{expl.rows} {kept} sampled to {size} rows"
    if (expl.sources >= 0).all():  # --frames resample: interpolated onto every row, no padding
        return f"{expl.rows} {kept} resampled onto {size} rows"
    before = int(np.argmax(expl.sources >= 0))
    after = size - expl.rows - before
    return f"{expl.rows} {kept}, padded with {before} rows before and {after} after"


def _shade_padding(ax, sources: np.ndarray) -> None:
    padding = np.flatnonzero(sources < 0)
    if not len(padding):
        return
    for part in np.split(padding, np.flatnonzero(np.diff(padding) > 1) + 1):
        ax.axvspan(part[0] - 0.5, part[-1] + 0.5, color="0.85", zorder=0)
        ax.text((part[0] + part[-1]) / 2, 0.97, "padding", ha="center", va="top", color="0.35", fontsize=7,
                rotation=90 if len(part) < 8 else 0, transform=ax.get_xaxis_transform(), zorder=1)


def _draw_attention(ax, expl: Explanation, legend: bool = True) -> list:
    """The attention curves of x, y, z over the image rows on the whole 0-1 scale, padding shaded, the spread
    beside that of freshly initialised networks; returns the three lines."""
    size = len(expl.sources)
    _shade_padding(ax, expl.sources)
    rows = np.arange(size)
    lines = [ax.plot(rows, expl.attention[c], color=CHANNEL_COLOURS[axis], lw=1.5, label=axis)[0]
             for c, axis in enumerate("xyz")]
    if expl.attention_distinct:
        for row, what in ((expl.most, "most"), (expl.least, "least")):
            ax.axvline(row, color="k", ls="--" if what == "most" else ":", lw=1)
            ax.text(row, 1.0, f" {what}", transform=ax.get_xaxis_transform(), va="bottom", fontsize=8)
    ax.text(0.01, 0.06, _spread_note(expl), transform=ax.transAxes, fontsize=8, va="bottom",
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "0.7"})
    ax.set_xlim(-0.5, size - 0.5)
    ax.set_ylim(0, 1)
    ax.set_ylabel("TARM attention")
    ax.tick_params(labelbottom=False)
    if legend:
        ax.legend(loc="upper right", ncol=3, fontsize=8, title="channel", title_fontsize=8)
    return lines


def _spread_note(expl: Explanation) -> str:
    real = expl.attention.mean(0)[expl.real_rows]
    note = f"over the frames: {real.min():.4f} - {real.max():.4f} (spread {np.ptp(real):.4f})"
    if expl.initial_spread is None:
        return note
    verdict = ("larger than" if expl.attention_distinct else "no larger than") + " freshly initialised networks'"
    return f"{note}, {verdict} ({expl.initial_spread:.4f})"


def _draw_frame_importance(ax, expl: Explanation) -> np.ndarray:
    """The drop of the explained class's probability per image row; returns the curve drawn."""
    size = len(expl.sources)
    _shade_padding(ax, expl.sources)
    curve = expl.importance.frames
    ax.axhline(0, color="0.6", lw=0.8)
    ax.plot(np.arange(size), curve, color="k", lw=1.5)
    ax.set_xlim(-0.5, size - 0.5)
    ax.set_ylabel("drop of p(class)", fontsize=9)
    ax.set_xlabel(f"image row = time step ({_time_caption(expl, size)}); hidden {expl.importance.window} at a time")
    return curve


def _draw_map(ax, expl: Explanation) -> np.ndarray:
    """The input image in grey with the time x joint occlusion map over it; returns the map drawn (S, S)."""
    size = len(expl.sources)
    grey = _rgb(expl.image, expl.real_rows).mean(-1)
    ax.imshow(grey, cmap="gray", aspect="auto", interpolation="nearest")
    heat = np.full((size, size), np.nan)
    offset = (size - expl.layout.columns) // 2
    for (first, last), drops in zip(expl.importance.blocks, expl.importance.map, strict=True):
        heat[first : last + 1, offset : offset + expl.layout.columns] = drops
    limit = max(float(np.nanmax(np.abs(heat))) if np.isfinite(heat).any() else 0.0, 1e-6)
    shown = ax.imshow(heat, cmap="RdBu_r", vmin=-limit, vmax=limit, alpha=0.75, aspect="auto",
                      interpolation="nearest")
    colourbar = ax.figure.colorbar(shown, ax=ax, fraction=0.05, pad=0.02)
    colourbar.ax.tick_params(labelsize=7)
    ax.set_title("where it looks: drop of p(class) when\na joint is paused in a time block", fontsize=9)
    ax.set_xlabel("joint column", fontsize=8)
    ax.set_ylabel("image row (time)", fontsize=8)
    ax.tick_params(labelsize=7)
    return heat


def _draw_joint_bars(ax, expl: Explanation) -> np.ndarray:
    """The per-joint drops, largest first, each joint named; returns the drops drawn."""
    columns = expl.importance.top_joints(JOINT_BARS)
    drops = np.array([expl.importance.joints[c] for c in columns])
    positions = np.arange(len(columns))[::-1]
    ax.barh(positions, drops, height=0.6, color=["k" if n < TOP_JOINTS else "0.6" for n in range(len(columns))])
    for y, column in zip(positions, columns, strict=True):
        ax.text(0.01, y + 0.35, expl.column_name(column), fontsize=7, va="bottom", transform=ax.get_yaxis_transform())
    ax.axvline(0, color="0.6", lw=0.8)
    ax.set_yticks([])
    ax.set_ylim(-0.6, len(columns))
    ax.set_xlabel("drop of p(class) when the joint is held still", fontsize=8)
    ax.locator_params(axis="x", nbins=4)
    ax.xaxis.set_major_formatter("{x:.2g}")
    ax.tick_params(labelsize=7)
    ax.set_title(f"joints (the {TOP_JOINTS} ringed above in black)", fontsize=9)
    return drops


def _draw_top(ax, expl: Explanation) -> list:
    """Horizontal bars of the top actions, each named above its bar; returns the bars."""
    count = len(expl.top)
    bars = ax.barh(np.arange(count)[::-1], [p for _, _, p in expl.top], height=0.35, color="tab:blue")
    for bar, (index, name, p) in zip(bars, expl.top, strict=True):
        label = "\n".join(textwrap.wrap(f"{index + 1} {name}  {p:.1%}", 46))  # wrapped, never cut
        ax.text(0.0, bar.get_y() + 0.42, label, fontsize=7, va="bottom")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.5, count - 0.1)
    ax.set_yticks([])
    ax.set_xlabel("probability", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title(f"top-{count} actions", fontsize=10)
    return list(bars)


def draw_explanation(expl: Explanation, path: str | os.PathLike, dpi: int = 80) -> dict[str, np.ndarray]:
    """Write the picture of `expl` to `path` (PNG) and return the values it drew, read back from the figure:
    "attention" (3, S) (absent without TARM), "shown" (the rows drawn as skeletons), "top" (the bar lengths),
    "frame_importance" (S,), "joint_importance" (the bars), "map" (S, S)."""
    plt = _pyplot()
    fig = plt.figure(figsize=(13, 11), dpi=dpi)
    grid = fig.add_gridspec(4, 1, height_ratios=(1.15, 0.75, 0.6, 1.1), hspace=0.45, left=0.06, right=0.98,
                            top=0.91, bottom=0.05)
    top_row = grid[0].subgridspec(1, SKELETON_PANELS, wspace=0.25)
    limits = _skeleton_limits(expl, expl.shown)
    marked = expl.importance.top_joints(TOP_JOINTS) if expl.importance is not None else []
    for k, row in enumerate(expl.shown):
        ax = fig.add_subplot(top_row[0, k])
        _draw_skeleton(ax, expl, row, limits, marked=marked)
        named = expl.attention_distinct
        mark = " (most)" if named and row == expl.most else " (least)" if named and row == expl.least else ""
        weight = f"\nattention {expl.attention[:, row].mean():.3f}{mark}" if expl.attention is not None else ""
        ax.set_title(f"{_frame_label(expl, row)}, row {row}{weight}", fontsize=9)
        if k == 0:
            ax.set_xlabel("red: the actor's right side", fontsize=8, color=RIGHT_COLOUR)
    drawn: dict[str, np.ndarray] = {"shown": np.array(expl.shown)}
    ax = fig.add_subplot(grid[1])
    if expl.attention is None:
        ax.axis("off")
        ax.text(0.5, 0.5, NO_ATTENTION, ha="center", va="center", fontsize=11)
    else:
        lines = _draw_attention(ax, expl)
        drawn["attention"] = np.stack([np.asarray(line.get_ydata(), np.float64) for line in lines])
    if expl.importance is not None:
        drawn["frame_importance"] = _draw_frame_importance(fig.add_subplot(grid[2]), expl)
    bottom = grid[3].subgridspec(1, 3, width_ratios=(1.1, 1, 1.1), wspace=0.35)
    if expl.importance is not None:
        drawn["map"] = _draw_map(fig.add_subplot(bottom[0, 0]), expl)
        drawn["joint_importance"] = _draw_joint_bars(fig.add_subplot(bottom[0, 1]), expl)
    bars = _draw_top(fig.add_subplot(bottom[0, 2]), expl)
    drawn["top"] = np.array([bar.get_width() for bar in bars])
    fig.suptitle(_title(expl), fontsize=11)
    _save_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return drawn


def _title(expl: Explanation) -> str:
    p = expl.preprocessing
    explained = ""
    if expl.importance is not None:
        name = dict((index, name) for index, name, _ in expl.top).get(expl.importance.target,
                                                                        f"class {expl.importance.target + 1}")
        explained = f"; explained: {name} (p = {expl.importance.probability:.1%})"
    return (f"{expl.name}: {expl.dataset} checkpoint, {expl.recorded_frames} recorded frames -> {len(expl.sources)} x "
            f"{len(expl.sources)} image\n{p.mode} preprocessing, frames {p.frames}, signs {p.signs}, centre "
            f"{p.centre}, {p.modality} image{explained}")


def explanation_record(expl: Explanation) -> dict:
    """The numbers a picture draws, as JSON-ready values (`<recording>.json`)."""
    def listed(values: np.ndarray | None) -> list | None:
        return None if values is None else [None if not np.isfinite(v) else round(float(v), 6) for v in values]

    record: dict[str, object] = {
        "name": expl.name, "source": expl.source, "dataset": expl.dataset, **expl.preprocessing.attrs(),
        "top": [{"class": index, "name": name, "probability": round(p, 6)} for index, name, p in expl.top],
        "image_row_sources": expl.sources.tolist(),
        "attention": None if expl.attention is None else {axis: listed(expl.attention[c]) for c, axis in
                                                          enumerate("xyz")},
        "attention_spread": expl.attention_spread, "initial_attention_spread": expl.initial_spread,
        "attention_distinct": expl.attention_distinct,
    }
    occlusion = expl.importance
    if occlusion is not None:
        offset = (len(expl.sources) - expl.layout.columns) // 2
        record["importance"] = {
            "method": METHOD, "class": occlusion.target, "probability": round(occlusion.probability, 6),
            "window": occlusion.window, "forward_passes": occlusion.passes,
            "per_row": listed(occlusion.frames),
            "per_joint": [{"column": offset + c, "joint": expl.column_name(c), "drop": listed([drop])[0]}
                          for c, drop in enumerate(occlusion.joints)],
            "blocks": occlusion.blocks.tolist(),
            "map": [listed(row) for row in occlusion.map],
        }
    return record


def write_record(expl: Explanation, path: str | os.PathLike) -> None:
    """Write `explanation_record` as JSON, atomically."""
    text = json.dumps(explanation_record(expl), indent=1)
    _save_atomic(path, lambda tmp: pathlib.Path(tmp).write_text(text))


def animate_explanation(expl: Explanation, path: str | os.PathLike, dpi: int = 50) -> int:
    """Write an animated GIF: the skeleton row by row (bones darker where attention is higher) beside the
    attention curve with the current row marked. Returns the number of frames written."""
    from matplotlib.animation import PillowWriter

    plt = _pyplot()
    real = expl.real_rows
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.6), dpi=dpi, width_ratios=(1, 1.8))
    limits = _skeleton_limits(expl, real)
    bones = _draw_skeleton(left, expl, int(real[0]), limits)  # artists moved frame after frame
    for collection in list(left.collections):  # the joint dots stay out: the bones carry the motion
        collection.remove()
    mean = None if expl.attention is None else expl.attention.mean(0)
    if mean is None:
        right.axis("off")
        right.text(0.5, 0.5, NO_ATTENTION.replace(": ", ":\n"), ha="center", va="center", fontsize=9)
    else:
        _draw_attention(right, expl, legend=False)
        right.set_xlabel("image row (x red, y green, z blue)")
        marker = right.axvline(real[0], color="k", lw=2)
        low, spread = float(mean[real].min()), max(float(np.ptp(mean[real])), 1e-9)
    fig.suptitle(f"{expl.name}: {expl.top[0][1]} {expl.top[0][2]:.0%}", fontsize=10)
    fig.tight_layout()
    per_body = len(expl.bones)
    writer = PillowWriter(fps=GIF_FPS)

    def write(tmp: pathlib.Path) -> None:
        with writer.saving(fig, tmp, dpi):
            for row in real:
                joints = body_joints(expl.positions, int(row), expl.layout)
                for n, line in enumerate(bones):
                    body = joints[n // per_body] if n // per_body < len(joints) else None
                    a, b = expl.bones[n % per_body]
                    line.set_data(([], []) if body is None else (body[[a, b], 0], body[[a, b], 2]))
                    if mean is not None:
                        line.set_alpha(0.15 + 0.85 * (float(mean[row]) - low) / spread)
                weight = "" if mean is None else f", attention {mean[row]:.2f}"
                left.set_title(f"{_frame_label(expl, int(row))}{weight}", fontsize=9)
                if mean is not None:
                    marker.set_xdata([row, row])
                writer.grab_frame()

    _save_atomic(path, write)
    plt.close(fig)
    return len(real)


def _save_atomic(path: str | os.PathLike, save) -> None:
    """Call save(temporary path) and rename the result to `path`; no half-written file on failure."""
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        save(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@dataclasses.dataclass(frozen=True)
class Explained:
    """One written picture: its recording's file, the files written, the explanation and the drawn values."""

    file: str
    paths: tuple[pathlib.Path, ...]
    explanation: Explanation
    drawn: dict[str, np.ndarray]


def _planned(predictor: Predictor, files: Sequence[str | os.PathLike]) -> list[tuple[str, formats.Recording]]:
    """Every recording of the files, each checked to preprocess, before anything is written."""
    planned = []
    for file in files:
        for recording in predictor.read(file):
            predictor.rows(recording.skeleton, str(file))
            planned.append((str(file), recording))
    return planned


def _outputs(planned, out: pathlib.Path, gif: bool, overwrite: bool) -> list[tuple[pathlib.Path, ...]]:
    suffixes = (".png", ".json", ".gif") if gif else (".png", ".json")
    paths = [tuple(out / f"{recording.name}{suffix}" for suffix in suffixes) for _, recording in planned]
    seen: dict[pathlib.Path, str] = {}
    for (file, _), group in zip(planned, paths, strict=True):
        if group[0] in seen:
            raise UsageError(f"{file} and {seen[group[0]]} both give a recording named {group[0].stem}")
        seen[group[0]] = file
        existing = [p for p in group if p.exists()]
        if existing and not overwrite:
            raise UsageError(f"{existing[0]} exists; pass --overwrite to replace it")
    return paths


def class_index(predictor: Predictor, wanted: str | None) -> int | None:
    """The 0-based class of `wanted` (a class name, or its 1-based number); None for None."""
    if wanted is None:
        return None
    names = list(predictor.class_names)
    if wanted in names:
        return names.index(wanted)
    if wanted.isdigit() and 1 <= int(wanted) <= len(names):
        return int(wanted) - 1
    raise UsageError(f"--explain-class: expected one of the checkpoint's {len(names)} class names or a number "
                     f"1-{len(names)}, found {wanted!r}")


def explain_files(
    checkpoint: str | os.PathLike,
    files: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    data_path: str | os.PathLike | None = None,
    *,
    gif: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    target: str | None = None,
    window: int | None = None,
) -> Iterator[Explained]:
    """Explain every recording of the raw files into `out` (a picture and its numbers each, and a GIF with `gif`).

    target: the class whose importance is measured (a name or a 1-based number; default: each recording's
    predicted class). window: the time steps hidden together (default: a tenth of the recorded rows).
    Every file is read and preprocessed before the first picture is written; an existing picture is an
    error unless `overwrite`. Yields one `Explained` per recording, as each is written.
    """
    predictor = load_predictor(checkpoint, data_path)
    explained = class_index(predictor, target)
    if window is not None and window < 1:
        raise UsageError(f"--importance-window: expected a number of rows >= 1, found {window}")
    planned = _planned(predictor, files)
    out = pathlib.Path(out)
    paths = _outputs(planned, out, gif, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    probe = inspector(predictor.model)
    fresh = fresh_inspector(predictor.model) if predictor.has_tarm else None
    bar = tqdm(total=len(planned), unit="recording", disable=not progress or None, file=sys.stderr)
    try:
        for (file, recording), group in zip(planned, paths, strict=True):
            expl = explain_recording(predictor, recording, file, probe, fresh=fresh, target=explained, window=window)
            drawn = draw_explanation(expl, group[0])
            write_record(expl, group[1])
            if gif:
                animate_explanation(expl, group[2])
            bar.update()
            yield Explained(file, group, expl, drawn)
    finally:
        bar.close()


def explain_summary(results: Sequence[Explained], seconds: float, out: str | os.PathLike) -> str:
    """The one line that ends an --explain run."""
    per = seconds / max(len(results), 1)
    return f"wrote {len(results)} explanation(s) to {out} in {seconds:.1f} s ({per:.2f} s per recording)"
