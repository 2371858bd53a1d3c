"""The contract checks around every plugin call, in process and in a sandbox: time limits, the
shape and range of a sanitizer's output, and error messages that name the plugin and the stage."""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from .api import RELEASE, CellTimeout, NotApplicable, PluginContractError, Sanitized
from .profiling import phase
from .release import check_release, sanitizer_mode


@contextlib.contextmanager
def time_limit(seconds: float | None, what: str) -> Iterator[None]:
    """Interrupt the block with :class:`CellTimeout` after ``seconds``.

    In the main thread of a POSIX process a timer signal interrupts even a plugin that never
    checks its deadline; elsewhere the cooperative deadline of the Context is all there is.
    """
    usable = (seconds is not None and math.isfinite(seconds) and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise CellTimeout(f"{what}: time limit of {seconds:.0f}s exceeded")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_sanitized(images: Any, reference: Any, is_image: bool, source: str,
                    notes: list[str] | None = None) -> Any:
    """A sanitizer's output, validated against the contract and moved to the CPU as float32.
    Another float precision is converted, with a line in ``notes`` that says so."""
    import torch

    if not isinstance(images, torch.Tensor):
        raise PluginContractError(f"{source}: transform must return a tensor, got {type(images).__name__}")
    if images.shape != reference.shape:
        raise PluginContractError(f"{source}: transform changed the shape from "
                                  f"{tuple(reference.shape)} to {tuple(images.shape)}")
    if not images.dtype.is_floating_point:
        raise PluginContractError(f"{source}: transform must return floats, got {images.dtype}")
    if images.device.type == "meta":
        raise PluginContractError(f"{source}: transform returned a tensor on the 'meta' device, "
                                  "which holds no data; return real values (on any device)")
    if images.dtype != torch.float32 and notes is not None:
        note = (f"{source}: transform returned {str(images.dtype).removeprefix('torch.')}; "
                "converted to float32")
        if note not in notes:
            notes.append(note)
    # Any device is accepted; the cache then stores the values compactly (ppbench.pixels).
    images = images.detach().to("cpu", torch.float32)
    if not torch.isfinite(images).all():
        raise PluginContractError(f"{source}: transform returned NaN or inf values")
    if is_image:
        lo, hi = float(images.min()), float(images.max())
        if lo < -1e-4 or hi > 1 + 1e-4:
            raise PluginContractError(f"{source}: transformed images must lie in [0, 1], "
                                      f"found [{lo:.4g}, {hi:.4g}]")
        images = images.clamp_(0.0, 1.0)
    return images


@contextlib.contextmanager
def plugin_stage(source: str, stage: str) -> Iterator[None]:
    """Name the plugin and the stage (fit, transform, run) in whatever the block raises."""
    try:
        yield
    except (PluginContractError, CellTimeout, NotApplicable):
        raise
    except Exception as exc:  # noqa: BLE001 - the plugin's failure, reported as such
        raise PluginContractError(f"{source}: {stage} raised {error_text(exc)}") from exc


def error_text(exc: BaseException) -> str:
    if isinstance(exc, (PluginContractError, CellTimeout, NotApplicable)):
        return str(exc)
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}"


def make_plugin(cls: type, kwargs: dict[str, Any], source: str) -> Any:
    """A configured plugin instance; a constructor that raises is named as such."""
    with plugin_stage(source, "its constructor"):
        return cls(**kwargs)


@dataclass
class FitOutput:
    """A fitted sanitizer, its checked outputs by split (float32 on the CPU), the per-item records
    it made for each split (see :class:`~ppbench.api.Sanitized`), and notes on what the harness
    had to convert."""

    sanitizer: Any
    images: dict[str, Any]
    records: dict[str, dict[str, Any]]
    notes: list[str]
    release: Any = None  # a release-mode sanitizer's checked surrogate set (ppbench.release)


def output_images(out: Any) -> Any:
    """The images of a ``transform`` result, without any records: what an oracle may answer."""
    return out.images if isinstance(out, Sanitized) else out


def check_records(records: Any, n: int, source: str) -> dict[str, Any]:
    """A sanitizer's per-item records, validated and moved to the CPU: a dict of numeric tensors
    named by identifiers, each with one row per item."""
    import torch

    if not isinstance(records, dict):
        raise PluginContractError(f"{source}: Sanitized.records must be a dict of tensors, got "
                                  f"{type(records).__name__}")
    checked = {}
    for name, values in records.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise PluginContractError(f"{source}: record names must be identifiers, got {name!r}")
        if not isinstance(values, torch.Tensor) or values.dtype == torch.bool or values.is_complex():
            raise PluginContractError(f"{source}: record {name} must be an integer or float tensor")
        if values.dim() == 0 or len(values) != n:
            raise PluginContractError(f"{source}: record {name} must have one row per item ({n}), "
                                      f"got shape {tuple(values.shape)}")
        values = values.detach().cpu()
        if values.dtype.is_floating_point and not torch.isfinite(values).all():
            raise PluginContractError(f"{source}: record {name} holds NaN or inf values")
        checked[name] = values.clone()
    return checked


def transform_batched(sanitizer: Any, images: Any, ctx: Any, where: str) -> tuple[Any, dict[str, Any]]:
    """``sanitizer.transform`` over ``images`` batch by batch, without gradients: the outputs and
    the records, each concatenated in the items' order. ``where`` names the plugin and the stage
    in messages, e.g. "sanitizer blur: transform (on the test split)"."""
    import torch

    batch_size = ctx.profile.batch_size * 4
    outputs, records = [], []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            out = sanitizer.transform(batch.to(ctx.device), ctx)
            outputs.append(output_images(out))
            records.append(check_records(out.records, len(batch), where)
                           if isinstance(out, Sanitized) else {})
    if not outputs:
        return images[:0].clone(), {}
    names = set(records[0])
    if any(set(batch_records) != names for batch_records in records):
        raise PluginContractError(f"{where}: recorded other names in other batches")
    if not all(isinstance(out, torch.Tensor) for out in outputs):
        bad = next(out for out in outputs if not isinstance(out, torch.Tensor))
        raise PluginContractError(f"{where}: returned {type(bad).__name__}, not a tensor or a "
                                  "Sanitized")
    concatenated = {name: torch.cat([batch_records[name] for batch_records in records])
                    for name in sorted(names)}
    return torch.cat([out.to(outputs[0].device) for out in outputs]), concatenated


def fit_sanitizer(sanitizer_cls: type, kwargs: dict[str, Any], train: Any, images: dict[str, Any],
                  task: Any, ctx: Any, source: str) -> FitOutput:
    """Fit a sanitizer on ``train`` and transform each named batch of ``images`` (in process or in
    a sandbox alike)."""
    ctx.seed_everything()
    sanitizer = make_plugin(sanitizer_cls, kwargs, source)
    # fit sees the train split only: no attack or test images, no test labels.
    with plugin_stage(source, "fit"), phase("fit"):
        sanitizer = sanitizer.fit(train, task, ctx) or sanitizer
    output = FitOutput(sanitizer, {}, {}, [])
    if sanitizer_mode(sanitizer_cls) == RELEASE:
        # Nothing is transformed: the release is the sanitizer's whole output.
        with plugin_stage(source, "release"), phase("transform"):
            released = sanitizer.release(len(train), ctx)
        output.release = check_release(released, task, train.attributes, train.shape, source)
        images = {}
    for name, batch in images.items():
        stage = f"transform (on the {name} split)"
        with plugin_stage(source, stage), phase("transform"):
            out, records = transform_batched(sanitizer, batch, ctx, f"{source}: {stage}")
        output.images[name] = check_sanitized(out, batch, batch.dim() == 4, source, output.notes)
        output.records[name] = records
    missing = set(sanitizer_cls.capabilities) - {"release"} - set(sanitizer.handles())
    if missing:
        raise PluginContractError(f"{source} declares capabilities {sorted(missing)} but handles() "
                                  "does not provide them")
    return output
