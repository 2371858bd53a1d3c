"""A picture of synthfaces for readers: a grid of faces, one row per identity
(``python -m ppbench.plugins.datasets.synthfaces_grid --grid faces.png``)."""

from __future__ import annotations

from .synthfaces import DEFAULT_PARAMS


def render_grid(path: str, seed: int = 0, n_identities: int = 50, n_rows: int = 8,
                n_columns: int = 10, image_size: int = 64, upscale: int = 2) -> None:
    """Write a PNG: one row for each of the first ``n_rows`` identities of a data set with
    ``n_identities``, columns with varied expressions and attributes."""
    import torch
    from PIL import Image

    from .synthfaces import EXPRESSIONS, _generator, make_identities, sample_factors
    from .synthfaces_render import render_faces

    identities = make_identities(n_identities, seed)
    n_rows = min(n_rows, n_identities)
    generator = _generator(seed, 99)
    # Draws from the data set's own distribution, so that the attributes of each face are as
    # they co-occur in the data; per row, the first draw of each expression in FERG order, then
    # whatever came next.
    factors = sample_factors(200 * n_identities * n_columns, identities, generator)
    picks = []
    for index in range(n_rows):
        mine = torch.nonzero(factors.labels["identity"] == index).flatten()
        chosen = []
        for expression in range(len(EXPRESSIONS)):
            match = mine[factors.labels["expression"][mine] == expression]
            chosen.extend(match[:1].tolist())
        chosen.extend([i for i in mine.tolist() if i not in chosen][: n_columns - len(chosen)])
        picks.extend(chosen[:n_columns])
    images = render_faces(factors.subset(torch.tensor(picks)), identities, image_size, generator)
    rows = images.reshape(n_rows, n_columns, 3, image_size, image_size)
    grid = torch.cat([torch.cat(list(row), dim=2) for row in rows], dim=1)
    pixels = (grid.permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()
    image = Image.fromarray(pixels)
    image = image.resize((image.width * upscale, image.height * upscale), Image.NEAREST)
    # A 256-colour palette keeps the file small (the sensor noise defeats PNG's compression).
    image = image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    image.save(path, optimize=True)


def _main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Render a grid of synthfaces.")
    parser.add_argument("--grid", required=True, help="output PNG path")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--identities", type=int, default=DEFAULT_PARAMS["n_identities"],
                        help="identities in the data set")
    parser.add_argument("--rows", type=int, default=8, help="show the first ROWS identities")
    parser.add_argument("--columns", type=int, default=10)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--upscale", type=int, default=2)
    args = parser.parse_args(argv)
    render_grid(args.grid, seed=args.seed, n_identities=args.identities, n_rows=args.rows,
                n_columns=args.columns, image_size=args.size, upscale=args.upscale)


if __name__ == "__main__":
    _main()
