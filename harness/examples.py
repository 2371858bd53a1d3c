"""Example outputs of a benchmark's sanitizers, drawn by ``ppbench publish`` when the spec has an
``[examples]`` table: what a reader would rather look at than read.

- Vector data sets with two features (gaussians2d): one panel per configuration, the raw test
  points faint and the sanitized ones solid, coloured by the sensitive class (Martinsson et al.'s
  Fig. 5). ``points-<dataset>-<task>.png``.
- Image data sets: a strip per task, the first test items raw in the top row and then one row
  per configuration; a sanitizer with the ``generator`` capability gets one more row per class of
  the sensitive attribute, rendered by its generator handle for that replacement value; a
  sanitizer that declares an honest reference (``Sanitizer.honest_reference``) shown beside it
  gets, instead, the amplified difference between its output and the reference's (what a vendor
  adds, invisible at 1×). ``strip-<dataset>-<task>.png``.

Nothing is fitted here: the figures come from the fits the run left in the cache (checksummed, as
the runner reads them) for the spec's first seed. A configuration whose fit is not cached is left
out and named in the returned notes; so is a sealed run, whose data only its salt can draw.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .api import GENERATOR, VECTOR, Context
from .boards.board import board_slug, data_label
from .cache import CorruptEntry, fitted_path, load_dataset, load_fitted
from .honest_reference import reference_config
from .planning import fit_key, group_jobs, plan
from .registry import Registry, get_registry
from .spec import BenchmarkSpec

if TYPE_CHECKING:
    import torch

# Figures drawn before publish() from the cache or the store: publish() clears stale ones.
EXAMPLE_PREFIXES = ("points-", "strip-", "roc-")
DEFAULT_ITEMS = {VECTOR: 1000}  # images: 8


def _selected(params: tuple[tuple[str, Any], ...], where: tuple[tuple[str, Any], ...]) -> bool:
    values = dict(params)
    return all(key in values and values[key] == value for key, value in where)


def draw_examples(spec: BenchmarkSpec, cache_dir: str | Path, out_dir: str | Path, *,
                  registry: Registry | None = None) -> tuple[dict[str, list[tuple[str, str]]], list[str]]:
    """The example figures of ``spec`` from the fits cached under ``cache_dir``; returns, per
    board slug (``<dataset>-<task>``), the (file name, caption) of each figure written, and notes
    on what was left out."""
    if spec.examples_where is None:
        return {}, []
    registry = registry or get_registry()
    out_dir = Path(out_dir)
    written: dict[str, list[tuple[str, str]]] = {}
    notes: list[str] = []
    jobs = [job for job in group_jobs(plan(spec, registry))
            if job.seed == spec.seed and _selected(job.sanitizer.params, spec.examples_where)]
    if not jobs:
        return {}, [f"[examples] where {dict(spec.examples_where)} matches no sanitizer configuration"]
    kind = registry.dataset(spec.dataset).kind
    items = spec.examples_items or DEFAULT_ITEMS.get(kind, 8)
    configs = [dict(config) for config in spec.dataset_configs]
    for task, data_params in ((task, params) for task in spec.tasks for params in spec.dataset_configs):
        task_jobs = [job for job in jobs if job.task.name == task and job.dataset_params == data_params]
        if not task_jobs:
            continue
        first = task_jobs[0]
        splits = load_dataset(registry, first.dataset, first.dataset_params, first.profile, first.seed)
        shown = []
        for job in task_jobs:
            key = fit_key(registry, job.dataset, job.dataset_params, job.task, job.sanitizer, job.seed,
                          job.profile, job.seal, canaries=job.canaries)
            path = fitted_path(Path(cache_dir), job.sanitizer.name, key)
            if not path.exists():
                notes.append(f"{job.label}: no cached fit in {cache_dir} (run the benchmark there first)")
                continue
            try:
                fitted = load_fitted(path, splits)
            except CorruptEntry as corrupt:
                notes.append(f"{job.label}: {corrupt}")
                continue
            shown.append((job, fitted))
        if not shown:
            continue
        data = data_label(dict(data_params), configs)
        slug = board_slug(spec.dataset, task, None, data)
        test = splits.test
        if kind == VECTOR and test.images.dim() == 2 and test.images.shape[1] == 2:
            path = _points_figure(shown, test, first.task.sensitive, items, spec, out_dir / f"points-{slug}.png")
            written[slug] = [(path.name, f"sanitized test points, {slug}")]
        elif test.images.dim() == 4:
            path = _image_strip(shown, splits, first.task.sensitive, items, spec,
                                out_dir / f"strip-{slug}.png", notes, registry)
            written[slug] = [(path.name, f"example outputs, {slug}")]
        else:
            notes.append(f"{slug}: no example figure for items of shape {tuple(test.images.shape[1:])}")
    return written, notes


def _short_labels(shown: list) -> list[str]:
    """Each configuration's name and the parameters that differ among the shown configurations
    of the same sanitizer (a vendor's build lists its honest model's parameters too: those say
    nothing here)."""
    params = [dict(job.sanitizer.params) for job, _ in shown]
    names = [job.sanitizer.name for job, _ in shown]
    labels = []
    for name, p in zip(names, params):
        siblings = [q for other, q in zip(names, params) if other == name]
        varying = sorted(key for key in p if len({repr(q.get(key)) for q in siblings}) > 1)
        inner = ",".join(f"{key}={p[key]}" for key in varying)
        labels.append(f"{name}({inner})" if inner else name)
    return labels


def _canvas(rows: int, columns: int, width: float, height: float) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.subplots(rows, columns, squeeze=False)


def _save(figure: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", metadata={"Software": None})
    return path


def _points_figure(shown: list, test: Any, sensitive: str, items: int, spec: BenchmarkSpec,
                   path: Path) -> Path:
    labels = test.labels[sensitive][:items]
    raw = test.images[:items]
    columns = min(4, len(shown))
    rows = -(-len(shown) // columns)
    figure, axes = _canvas(rows, columns, 3.2 * columns, 3.2 * rows)
    everything = [raw] + [fitted.test.images[:items] for _, fitted in shown]
    low = min(float(points.min()) for points in everything)
    high = max(float(points.max()) for points in everything)
    pad = 0.05 * (high - low)
    titles = _short_labels(shown)
    for index, (job, fitted) in enumerate(shown):
        ax = axes[index // columns][index % columns]
        out = fitted.test.images[:items]
        for value, colour in ((0, "C1"), (1, "C0")):
            chosen = labels == value
            ax.scatter(raw[chosen, 0], raw[chosen, 1], s=3, alpha=0.15, color=colour)
            ax.scatter(out[chosen, 0], out[chosen, 1], s=3, alpha=0.7, color=colour,
                       label=f"{sensitive}={value}")
        ax.set_title(titles[index], fontsize=8)
        ax.set_xlim(low - pad, high + pad)
        ax.set_ylim(low - pad, high + pad)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=6)
    for index in range(len(shown), rows * columns):
        axes[index // columns][index % columns].axis("off")
    axes[0][0].legend(fontsize=6, markerscale=3, loc="upper right")
    common = ", ".join(f"{k}={v}" for k, v in spec.examples_where)
    figure.suptitle(f"{len(labels)} test points: raw (faint) and sanitized (solid), coloured by the "
                    f"true {sensitive}" + (f"; {common}" if common else ""), fontsize=8)
    return _save(figure, path)


def amplified_difference(images: "torch.Tensor", reference: "torch.Tensor") -> tuple["torch.Tensor", float]:
    """``(0.5 + gain·(images − reference), gain)``: mid-grey where the two agree; ``gain``, a
    power of two, maps the 99th percentile of the absolute differences where the two differ to
    about 0.4, so the pattern shows without saturating everywhere (1 when the two are equal)."""
    import math

    import torch

    difference = images.float() - reference.float()
    differing = difference.abs().flatten()
    differing = differing[differing > 0]
    spread = float(torch.quantile(differing, 0.99)) if differing.numel() else 0.0
    gain = 1.0 if spread <= 0 else float(2 ** max(0, math.floor(math.log2(0.4 / spread))))
    return (0.5 + gain * difference).clamp(0.0, 1.0), gain


def nearest_fit_images(released: "torch.Tensor", fit: "torch.Tensor") -> tuple["torch.Tensor", "torch.Tensor"]:
    """For each released image, the fit-split image closest in pixels and the RMS distance
    between them: a generator that memorised its fit split releases near-copies of it."""
    import torch

    flat_fit = fit.flatten(1).float()
    distances = torch.cdist(released.flatten(1).float(), flat_fit)
    nearest = distances.argmin(dim=1)
    rms = distances.gather(1, nearest[:, None]).squeeze(1) / flat_fit.shape[1] ** 0.5
    return fit[nearest], rms


def _image_strip(shown: list, splits: Any, sensitive: str, items: int, spec: BenchmarkSpec,
                 path: Path, notes: list[str], registry: Registry) -> Path:
    import torch

    test = splits.test
    raw = test.images[:items]
    classes = test.attributes[sensitive].classes if sensitive in test.attributes else ()
    rows: list[tuple[str, Any]] = [("raw", raw)]
    by_label = {job.sanitizer.label: (job, fitted) for job, fitted in shown}
    for (job, fitted), title in zip(shown, _short_labels(shown)):
        if fitted.release is not None:
            # A release is not an image-by-image transform of the test items: show what was
            # released, and beside it the fit-split image each sample is closest to.
            released = fitted.release.images[:items]
            rows.append((f"{title}: released", released))
            nearest, rms = nearest_fit_images(released, splits.train.images)
            rows.append((f"  nearest fit image (RMS {float(rms.mean()):.3f})", nearest))
            continue
        rows.append((title, fitted.test.images[:items]))
        sanitizer = fitted.sanitizer
        reference, _ = reference_config(registry, job.sanitizer)
        if reference is not None:
            if reference.label in by_label:
                honest = by_label[reference.label][1].test.images[:items]
                difference, gain = amplified_difference(fitted.test.images[:items], honest)
                rows.append((f"  {title} − {reference.name}, ×{gain:g}", difference))
            else:
                notes.append(f"{job.label}: its honest reference {reference.label} is not shown, so "
                             "the strip has no difference row for it")
            continue  # its renderings are the reference's, with the payload
        if GENERATOR not in getattr(sanitizer, "capabilities", frozenset()) or not classes:
            continue
        try:
            render = sanitizer.handles()[GENERATOR]
            ctx = Context(device="cpu", profile=spec.profile, seed=spec.seed)
            for value, name in enumerate(classes):
                wanted = torch.full((len(raw),), value, dtype=torch.long)
                rows.append((f"  generator, {sensitive}={name}", render(raw.clone(), wanted, ctx)))
        except Exception as exc:  # noqa: BLE001 - a plugin's handle costs its own rows only
            notes.append(f"{job.label}: its generator handle failed ({type(exc).__name__}: {exc})")
    figure, axes = _canvas(len(rows), len(raw), 0.9 * len(raw) + 2.5, 0.95 * len(rows) + 0.3)
    for row, (label, images) in enumerate(rows):
        for column in range(len(raw)):
            ax = axes[row][column]
            if column >= len(images):  # a release smaller than the strip
                ax.axis("off")
                continue
            image = images[column].detach().float().clamp(0, 1).permute(1, 2, 0).numpy()
            ax.imshow(image.squeeze(-1) if image.shape[-1] == 1 else image,
                      cmap="gray" if image.shape[-1] == 1 else None, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if column == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
    released = any(fitted.release is not None for _, fitted in shown)
    figure.suptitle(f"the first {len(raw)} test items: raw, then each configuration's output"
                    + (" (a release-mode sanitizer: its first released images)" if released else ""),
                    fontsize=8)
    return _save(figure, path)
