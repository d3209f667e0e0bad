"""What every demo shares: argument conventions, the output folder, figures, tables, bundled images.

Conventions (each demo's ``main(argv)``):

- ``--out DIR`` (default ``out/<demo>``): figures and tables go there;
- ``--smoke``: a seconds-long version on tiny data, used by tests/test_demos_seeds.py;
- ``--seed N``: every random number comes from ``np.random.default_rng(seed)``.

Run a demo as ``python demos/<name>.py``; the demo folder is then on ``sys.path``, so
demos import this module as ``_common``.
"""
from __future__ import annotations

import argparse
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

os.environ.setdefault("MPLBACKEND", "Agg")  # figures go to files; no display needed

__all__ = ["parser", "positive_int", "non_negative_int", "positive_float", "non_negative_float", "existing_file",
           "output_folder", "pyplot", "save_figure", "format_table", "print_table",
           "bundled_image", "timer", "write_text", "fit"]


def _number(kind: type, low: float, strict: bool, what: str) -> Any:
    """An argparse ``type`` that reads a ``kind`` and refuses values below ``low`` (at ``low`` too when
    ``strict``), so that ``--epochs -1`` is a usage error naming the option, not a traceback later."""
    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}; got {text!r}") from None
        if not np.isfinite(value) or value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(f"expected {what}; got {text!r}")
        return value
    convert.__name__ = what  # argparse names the type in some messages
    return convert


positive_int = _number(int, 0, True, "a positive integer")
non_negative_int = _number(int, 0, False, "an integer >= 0")
positive_float = _number(float, 0.0, True, "a number > 0")
non_negative_float = _number(float, 0.0, False, "a number >= 0")


def existing_file(text: str) -> str:
    """An argparse ``type``: the path of a file that exists."""
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"no such file: {text!r}")
    return text


def parser(name: str, description: str) -> argparse.ArgumentParser:
    """An ArgumentParser with the shared options ``--out``, ``--smoke`` and ``--seed``."""
    p = argparse.ArgumentParser(prog=f"python demos/{name}_demo.py", description=description)
    p.add_argument("--out", default=os.path.join("out", name), help="folder for figures and tables "
                   "(default: %(default)s)")
    p.add_argument("--smoke", action="store_true", help="a tiny, seconds-long run (used by the tests)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of every random draw (default: %(default)s)")
    return p


def output_folder(path: str | os.PathLike) -> Path:
    """Create (if needed) and return the output folder."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (imported late: matplotlib is slow to import)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig: Any, folder: Path, name: str) -> Path:
    """Save ``fig`` as ``folder/name`` (PNG, 110 dpi), close it, print and return the path."""
    path = Path(folder) / name
    fig.savefig(path, dpi=110, bbox_inches="tight")
    pyplot().close(fig)
    print(f"wrote {path}")
    return path


def _cell(value: Any, digits: int) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}f}" if np.isfinite(value) else str(value)
    return str(value)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 4) -> str:
    """A Markdown table (readable as plain text), floats with ``digits`` decimals."""
    cells = [[str(h) for h in headers]] + [[_cell(v, digits) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 4,
                title: str | None = None) -> str:
    """Print (and return) ``format_table``, under an optional title."""
    text = format_table(headers, rows, digits)
    print(("\n" + title + "\n" if title else "\n") + text)
    return text


def write_text(folder: Path, name: str, text: str) -> Path:
    path = Path(folder) / name
    path.write_text(text + "\n")
    return path


def bundled_image(name: str, size: tuple[int, int] | None = None, gray: bool = True) -> np.ndarray:
    """A scikit-image sample image (shipped with the package, no download) as float64 in [0, 1].

    ``gray`` converts colour to luminance; ``size`` (h, w) resizes with anti-aliasing.
    Shapes: -> (H, W) when gray, else (H, W) or (H, W, 3) as stored.
    """
    from skimage import color, data, transform, util
    image = util.img_as_float64(getattr(data, name)())
    if gray and image.ndim == 3:
        image = color.rgb2gray(image[..., :3])
    if size is not None:
        image = transform.resize(image, size, anti_aliasing=True)
    return np.clip(image, 0.0, 1.0)


@contextmanager
def timer() -> Iterator[list[float]]:
    """``with timer() as t: ...`` then ``t[0]`` is the elapsed wall time in seconds."""
    box = [0.0]
    start = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = time.perf_counter() - start


def fit(net: Any, loss: Any, inputs: Any, targets: Any, iterations: int, measure: Any = None,
        every: int = 10, orientation: Any = None, batch_size: int | None = None,
        rng: np.random.Generator | None = None, line_search: Any = None) -> dict[str, Any]:
    """Train ``net`` with minieye.train (L-BFGS, full batch, by default) and record curves.

    ``measure(net) -> float`` (e.g. a held-out error) is called at the start and every
    ``every`` iterations. The default line search gives up after 10 trials: max-pool
    switches make the loss piecewise smooth, and a long futile search costs more than
    L-BFGS's restart from steepest descent. Returns {"result", "train": [(iteration, loss)], "measured":
    [(iteration, value)], "seconds"}.
    """
    from minieye import train
    measured: list[tuple[int, float]] = []
    monitors = []
    if measure is not None:
        measured.append((0, float(measure(net))))
        monitors.append(train.Callback(lambda trainer, record: measured.append(
            (record.iteration, float(measure(net)))) and None, every=every))
    problem = train.Problem(net, loss, inputs, targets, batch_size=batch_size, rng=rng)
    trainer = train.Trainer(problem, orientation=orientation or train.LBFGS(),
                            line_search=line_search or train.ArmijoWolfe(max_evaluations=10), monitors=monitors)
    with timer() as t:
        result = trainer.run(max_iterations=iterations)
    if measure is not None and (not measured or measured[-1][0] != result.iterations):
        measured.append((result.iterations, float(measure(net))))
    curve = [(0, result.initial_loss)] + [(r.iteration, r.loss) for r in result.history]
    return {"result": result, "train": curve, "measured": measured, "seconds": t[0]}
