"""See what the model sees: one picture per raw recording (`evaluate.py CKPT --explain FILE... --out DIR`).

Each picture (`<recording>.png`) shows, for one recording preprocessed exactly as the checkpoint's training
data was:
    top row      the skeleton at a few frames, drawn with the dataset's bones from the normalised joints the
                 model reads (x across, z along the spine), the most and the least attended frames among them;
    middle       the TARM attention weight of every image row (one per frame) for the x, y and z channels,
                 from `mans.model.frame_attention`, padding rows shaded;
    bottom       the input image and the image the STCM sees (the TARM output: rows = time, columns =
                 joints, x y z as red green blue), and the top-5 actions with their probabilities.
With `gif=True` also `<recording>.gif`: the skeleton frame by frame, its bones shaded by the attention,
beside the attention curve (matplotlib's animation with the Pillow writer). A checkpoint trained with
--no-tarm has no attention: its pictures say so in one line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import sys
from collections.abc import Iterator, Sequence

import keras
import numpy as np
from tqdm import tqdm

from mans import preprocess, recordings
from mans.data import UsageError
from mans.evaluation import TARM_LAYERS, Predictor, load_predictor

TOP = 5  # actions listed in a picture
SKELETON_PANELS = 5  # frames drawn in the top row
GIF_FPS = 8
BODY_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:purple")
CHANNEL_COLOURS = {"x": "tab:red", "y": "tab:green", "z": "tab:blue"}
NO_ATTENTION = "no attention to show: this checkpoint has no TARM (trained with --no-tarm)"


@dataclasses.dataclass(frozen=True)
class Explanation:
    """What one picture shows; every array is what is drawn.

    image: (S, S, 3) the model's input. stcm_input: (S, S, 3) what the STCM sees (the TARM output; the input
    itself without TARM). attention: (3, S) frame weights for x, y, z, or None without TARM. sources: (S,)
    the sequence row each image row holds, -1 for padding. rows: T, the sequence rows (the recording's frames
    in faithful mode, those with a kept body in denoised mode). shown: the image rows drawn as skeletons.
    most, least: the most and least attended real rows (mean over x, y, z), None without TARM.
    top: [(class index, name, probability)], best first.
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

    @property
    def real_rows(self) -> np.ndarray:
        return np.flatnonzero(self.sources >= 0)


def inspector(model: keras.Model) -> keras.Model:
    """A model sharing `model`'s weights that returns, in one compiled pass over (B, S, S, 3) images:
    the predictions (B, classes), what the STCM sees (B, S, S, 3), and, with TARM, the frame attention
    (B, 3, S), the values `mans.model.frame_attention` computes eagerly (about 30 times slower on the CPU)."""
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


def explain_recording(
    predictor: Predictor, recording: recordings.Recording, source: str = "", probe: keras.Model | None = None
) -> Explanation:
    """Preprocess one recording as the training data was, run the model, and gather what a picture shows.

    probe: `inspector(predictor.model)`, built once for many recordings (built here when None).
    """
    rows = predictor.rows(recording.skeleton, source or recording.name)
    times = preprocess.row_times(recording.skeleton, predictor.preprocessing)
    image = preprocess.image_from_rows(rows, predictor.size, predictor.preprocessing.frames, times)
    outputs = (probe or inspector(predictor.model)).predict_on_batch(image[None])  # batch of 1
    scores, seen = np.asarray(outputs[0][0], np.float32), np.asarray(outputs[1][0], np.float32)
    attention = np.asarray(outputs[2][0], np.float64) if len(outputs) > 2 else None  # (3, S)
    sources = preprocess.fixed_length_sources(len(rows), predictor.size, predictor.preprocessing.frames, times)
    shown, most, least = _shown_rows(np.flatnonzero(sources >= 0), attention)
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
    )


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def body_joints(image: np.ndarray, row: int, layout: preprocess.JointLayout) -> list[np.ndarray]:
    """The (J, 3) joints of each body present in one image row (columns centred in S as step 6 puts them)."""
    columns = preprocess.fixed_length_sources(layout.columns, image.shape[1])
    first = int(np.flatnonzero(columns == 0)[0])
    joints = image[row, first : first + layout.columns].reshape(layout.max_bodies, layout.num_joints, 3)
    return [body for body in joints if np.any(body)]  # an absent body is a zero block


def _skeleton_limits(expl: Explanation, rows: Sequence[int]) -> tuple[tuple[float, float], tuple[float, float]]:
    points = [body for row in rows for body in body_joints(expl.image, row, expl.layout)]
    if not points:
        return (-1.0, 1.0), (-1.0, 1.0)
    xz = np.concatenate(points)[:, [0, 2]]
    low, high = xz.min(0), xz.max(0)
    centre, half = (low + high) / 2, max(float((high - low).max()) / 2 * 1.1, 0.1)
    return (centre[0] - half, centre[0] + half), (centre[1] - half, centre[1] + half)


def _draw_skeleton(ax, expl: Explanation, row: int, limits, bone_alpha: float = 1.0) -> list:
    """Bones and joints of every body in `row`, front view (x across, z along the spine); returns the lines."""
    lines = []
    for k, body in enumerate(body_joints(expl.image, row, expl.layout)):
        colour = BODY_COLOURS[k % len(BODY_COLOURS)]
        for a, b in expl.bones:
            (line,) = ax.plot(body[[a, b], 0], body[[a, b], 2], color=colour, lw=2, alpha=bone_alpha)
            lines.append(line)
        ax.scatter(body[:, 0], body[:, 2], s=6, color=colour, zorder=3)
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
    """The attention curves of x, y, z over the image rows, padding shaded; returns the three lines."""
    size = len(expl.sources)
    _shade_padding(ax, expl.sources)
    rows = np.arange(size)
    lines = [ax.plot(rows, expl.attention[c], color=CHANNEL_COLOURS[axis], lw=1.5, label=axis)[0]
             for c, axis in enumerate("xyz")]
    for row, what in ((expl.most, "most"), (expl.least, "least")):
        ax.axvline(row, color="k", ls="--" if what == "most" else ":", lw=1)
        ax.text(row, 1.0, f" {what}", transform=ax.get_xaxis_transform(), va="bottom", fontsize=8)
    ax.set_xlim(-0.5, size - 0.5)
    ax.set_ylabel("TARM attention")
    ax.set_xlabel(f"image row = time step the TARM sees ({_time_caption(expl, size)})")
    if legend:
        ax.legend(loc="upper right", ncol=3, fontsize=8, title="channel", title_fontsize=8)
    return lines


def _draw_top(ax, expl: Explanation) -> list:
    """Horizontal bars of the top actions, each named above its bar; returns the bars."""
    count = len(expl.top)
    bars = ax.barh(np.arange(count)[::-1], [p for _, _, p in expl.top], height=0.35, color="tab:blue")
    for bar, (index, name, p) in zip(bars, expl.top, strict=True):
        ax.text(0.0, bar.get_y() + 0.42, f"{index + 1} {name}"[:40] + f"  {p:.1%}", fontsize=8, va="bottom")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.5, count - 0.1)
    ax.set_yticks([])
    ax.set_xlabel("probability", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title(f"top-{count} actions", fontsize=10)
    return list(bars)


def draw_explanation(expl: Explanation, path: str | os.PathLike, dpi: int = 80) -> dict[str, np.ndarray]:
    """Write the picture of `expl` to `path` (PNG) and return the values it drew, read back from the figure:
    "attention" (3, S) (absent without TARM), "shown" (the rows drawn as skeletons), "top" (the bar lengths)."""
    plt = _pyplot()
    fig = plt.figure(figsize=(12, 8.5), dpi=dpi)
    grid = fig.add_gridspec(3, 1, height_ratios=(1.15, 0.9, 1.0), hspace=0.4, left=0.06, right=0.98, top=0.9,
                            bottom=0.06)
    top_row = grid[0].subgridspec(1, SKELETON_PANELS, wspace=0.25)
    limits = _skeleton_limits(expl, expl.shown)
    for k, row in enumerate(expl.shown):
        ax = fig.add_subplot(top_row[0, k])
        _draw_skeleton(ax, expl, row, limits)
        mark = " (most)" if row == expl.most else " (least)" if row == expl.least else ""
        weight = f"\nattention {expl.attention[:, row].mean():.2f}{mark}" if expl.attention is not None else ""
        ax.set_title(f"{_frame_label(expl, row)}, row {row}{weight}", fontsize=9)
    drawn: dict[str, np.ndarray] = {"shown": np.array(expl.shown)}
    ax = fig.add_subplot(grid[1])
    if expl.attention is None:
        ax.axis("off")
        ax.text(0.5, 0.5, NO_ATTENTION, ha="center", va="center", fontsize=11)
    else:
        lines = _draw_attention(ax, expl)
        drawn["attention"] = np.stack([np.asarray(line.get_ydata(), np.float64) for line in lines])
    bottom = grid[2].subgridspec(1, 3, width_ratios=(1, 1, 1.1), wspace=0.3)
    for column, (image, title) in enumerate(((expl.image, "input image"), (expl.stcm_input, "what the STCM sees"))):
        ax = fig.add_subplot(bottom[0, column])
        ax.imshow(_rgb(image, expl.real_rows), aspect="auto", interpolation="nearest")
        ax.set_title(f"{title} (x y z as R G B)", fontsize=10)
        ax.set_xlabel("joint column", fontsize=8)
        ax.set_ylabel("image row (time)", fontsize=8)
        ax.tick_params(labelsize=7)
    bars = _draw_top(fig.add_subplot(bottom[0, 2]), expl)
    drawn["top"] = np.array([bar.get_width() for bar in bars])
    fig.suptitle(f"{expl.name}: {expl.dataset} checkpoint, {expl.mode} preprocessing, "
                 f"{expl.recorded_frames} recorded frames -> {len(expl.sources)} x {len(expl.sources)} image",
                 fontsize=12)
    _save_atomic(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return drawn


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
                joints = body_joints(expl.image, int(row), expl.layout)
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


def _planned(predictor: Predictor, files: Sequence[str | os.PathLike]) -> list[tuple[str, recordings.Recording]]:
    """Every recording of the files, each checked to preprocess, before anything is written."""
    planned = []
    for file in files:
        for recording in predictor.read(file):
            predictor.rows(recording.skeleton, str(file))
            planned.append((str(file), recording))
    return planned


def _outputs(planned, out: pathlib.Path, gif: bool, overwrite: bool) -> list[tuple[pathlib.Path, ...]]:
    suffixes = (".png", ".gif") if gif else (".png",)
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


def explain_files(
    checkpoint: str | os.PathLike,
    files: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    data_path: str | os.PathLike | None = None,
    *,
    gif: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> Iterator[Explained]:
    """Explain every recording of the raw files into `out` (a picture each, and a GIF with `gif`).

    Every file is read and preprocessed before the first picture is written; an existing picture is an
    error unless `overwrite`. Yields one `Explained` per recording, as each is written.
    """
    predictor = load_predictor(checkpoint, data_path)
    planned = _planned(predictor, files)
    out = pathlib.Path(out)
    paths = _outputs(planned, out, gif, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    probe = inspector(predictor.model)
    bar = tqdm(total=len(planned), unit="recording", disable=not progress or None, file=sys.stderr)
    try:
        for (file, recording), group in zip(planned, paths, strict=True):
            expl = explain_recording(predictor, recording, file, probe)
            drawn = draw_explanation(expl, group[0])
            if gif:
                animate_explanation(expl, group[1])
            bar.update()
            yield Explained(file, group, expl, drawn)
    finally:
        bar.close()


def explain_summary(results: Sequence[Explained], seconds: float, out: str | os.PathLike) -> str:
    """The one line that ends an --explain run."""
    per = seconds / max(len(results), 1)
    return f"wrote {len(results)} explanation(s) to {out} in {seconds:.1f} s ({per:.2f} s per recording)"
