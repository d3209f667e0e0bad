"""Transposed convolution as a matrix (seed 003, "Deconvolution in Deep Learning").

The article's example: a 4x4 data patch D, a 3x3 mask, no padding, stride 1. Reading D
row by row, the convolution is ``D^T C`` with C the 16x4 matrix whose columns are the
mask placed at the four output positions: ``[12 12 10 17]``. The "deconvolution" of
deep learning maps a 2x2 array E back to 4x4 as ``E C^T``, which is exactly
``F.conv_transpose2d``, the adjoint of ``F.conv2d``. Also checked on a strided,
padded, multi-channel case.

    python demos/conv_matrix_demo.py            # prints C^T, the results, writes out/conv_matrix/
"""
from __future__ import annotations

import sys

import numpy as np

import _common as common
from minieye import functional as F

# The article's data patch and mask (its worked sum: 0*3 + 1*3 + 2*2 + 2*0 + 2*0 + 0*1 + 0*3 + 1*1 + 2*2 = 12).
PATCH = np.array([[3, 3, 2, 1], [0, 0, 1, 3], [3, 1, 2, 2], [2, 0, 0, 2]], dtype=np.float64)
MASK = np.array([[0, 1, 2], [2, 2, 0], [0, 1, 2]], dtype=np.float64)
ARTICLE_RESULT = [12, 12, 10, 17]


def article_example() -> dict[str, np.ndarray]:
    """C, D^T C, and the up-sampling E C^T beside conv_transpose2d for a random E."""
    c = F.conv_matrix(PATCH.shape, MASK)
    d = PATCH.ravel()
    e = np.random.default_rng(0).integers(-3, 4, size=4).astype(np.float64)
    return {"C": c, "DC": d @ c, "conv2d": F.conv2d(PATCH[None, None], MASK[None, None]).ravel(),
            "E": e, "EC^T": e @ c.T, "conv_transpose2d": F.conv_transpose2d(e.reshape(1, 1, 2, 2),
                                                                              MASK[None, None]).ravel()}


def general_case(rng: np.random.Generator) -> float:
    """max |E C^T - conv_transpose2d(E)| with stride 2, padding 1, 2 -> 3 channels."""
    x_shape, w = (2, 7, 6), rng.standard_normal((3, 2, 3, 3))
    c = F.conv_matrix(x_shape, w, stride=2, padding=1)
    x = rng.standard_normal(x_shape)
    y = F.conv2d(x[None], w, stride=2, padding=1)
    forward_gap = np.abs(x.ravel() @ c - y.ravel()).max()
    e = rng.standard_normal(y.shape)
    up = F.conv_transpose2d(e, w, stride=2, padding=1, output_padding=(0, 1))  # back to 7x6
    return max(forward_gap, float(np.abs(e.ravel() @ c.T - up.ravel()).max()))


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = common.parser("conv_matrix", __doc__.splitlines()[0]).parse_args(argv)
    folder = common.output_folder(args.out)
    ex = article_example()
    np.set_printoptions(linewidth=120, suppress=True)
    print("C^T (4 x 16), one row per output position:\n", ex["C"].T.astype(int))
    print("D^T C            =", ex["DC"], " (article:", ARTICLE_RESULT, ")")
    print("F.conv2d(D, mask) =", ex["conv2d"])
    print("E                =", ex["E"])
    print("E C^T            =", ex["EC^T"].reshape(4, 4).tolist())
    up_gap = float(np.abs(ex["EC^T"] - ex["conv_transpose2d"]).max())
    gap = general_case(np.random.default_rng(args.seed))
    rows = [["D^T C == article [12 12 10 17]", bool(np.array_equal(ex["DC"], ARTICLE_RESULT))],
            ["max |D^T C - conv2d|", f'{float(np.abs(ex["DC"] - ex["conv2d"]).max()):.1e}'],
            ["max |E C^T - conv_transpose2d| (article case)", f"{up_gap:.1e}"],
            ["max gap, stride 2, padding 1, 2->3 channels", f"{gap:.1e}"]]
    table = common.print_table(["check", "result"], rows, title="seed 003")
    common.write_text(folder, "table.md", table)
    plt = common.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2), gridspec_kw={"width_ratios": [1, 4, 1]})
    axes[0].imshow(PATCH, cmap="gray")
    axes[0].set_title("D (4x4)")
    axes[1].imshow(ex["C"].T, cmap="viridis")
    axes[1].set_title("C^T (4 x 16): the mask at each output position")
    axes[2].imshow(ex["EC^T"].reshape(4, 4), cmap="gray")
    axes[2].set_title("E C^T (up-sampled)")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    common.save_figure(fig, folder, "conv_matrix.png")
    return {"result": ex["DC"].tolist(), "upsample_gap": up_gap, "general_gap": gap}


if __name__ == "__main__":
    main(sys.argv[1:])
