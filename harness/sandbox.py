"""Plugin calls in a child process that holds only what the call grants (``--isolation process``).

In-process, a plugin shares the harness's memory: a garbage-collector scan, the stack frames or a
module global reach the labelled test split, the raw data and the results store. In a sandbox the
plugin runs in a warm child process (started once, reused by every later call) that receives
copies of the tensors its view grants, through shared memory, and nothing else: not the test
labels, not the data set's splits, not the store's or the cache's paths. The harness scores what
comes back in the parent.

``ctx.shared`` (raw-data models cached across cells) is served by the parent over the same pipe:
the child asks for a cached value, and builds and returns it when there is none, so the cache
folder stays out of the child's reach.

This is a boundary in Python, not in the operating system: the child can still read files the
user can read and open network connections. Untrusted code belongs in a container as well
(CONTRIBUTING, "What the harness enforces").
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Callable

from .api import CellTimeout, Context, NotApplicable, PluginContractError, Profile
from .guards import (error_text, fit_sanitizer, make_plugin, output_images, plugin_stage,
                     time_limit)
from .profiling import clean_phases, clock, current_clock, phase
from .registry import RegistryRecipe

ISOLATION_MODES = ("none", "process")
_START_GRACE = 120.0  # seconds for a fresh child to import torch and the plugins
_KILL_GRACE = 30.0  # beyond the cell's own limit, before the parent kills a child that hangs


@dataclass
class ContextSpec:
    """What a child needs to rebuild the cell's :class:`Context` (no store, no cache path)."""

    device: str
    profile: Profile
    seed: int
    time_limit: float | None
    label: str
    shared_seed: int

    @classmethod
    def of(cls, ctx: Context, shared_seed: int) -> "ContextSpec":
        return cls(str(ctx.device), ctx.profile, ctx.seed, ctx.time_left() if ctx.deadline else None,
                   ctx.label, shared_seed)


@dataclass
class PluginCall:
    """One call: ``stage`` is ``fit`` (fit a sanitizer and transform the attack and test images),
    ``attack``, ``attack-batch`` (``run_batch`` on several cells' views) or ``metric``;
    ``payload`` holds the granted data (copies)."""

    stage: str
    kind: str  # registry kind: sanitizers, attacks, metrics
    name: str
    kwargs: dict[str, Any]
    task: Any
    context: ContextSpec
    source: str  # how messages name the plugin, e.g. "attack linear-probe"
    payload: dict[str, Any] = field(default_factory=dict)


# --- the child -----------------------------------------------------------------------------------


def _child_main(conn: Any, recipe: RegistryRecipe, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    from .registry import registry_for

    registry = registry_for(recipe)
    _leave_the_harness_behind()
    while True:
        try:
            call = conn.recv()
        except EOFError:
            return
        if call is None:
            return
        try:
            with clock() as timed:
                result = _perform(call, registry, conn)
            # Its phases, so that --profile-run splits a sandboxed call as it does one in process.
            conn.send(("ok", result, timed.totals))
            # Nothing of one call may outlive it here: a fit's records must not wait in this
            # process for the attack that runs next.
            del result, call
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
            conn.send(("error", type(exc).__name__, error_text(exc)))


def _leave_the_harness_behind() -> None:
    """Start the plugin in an empty working folder without the harness's settings, so that the
    store and cache paths are not lying around (the run's own folder holds results.db)."""
    import os
    import sys
    import tempfile

    sys.path[:] = [os.path.abspath(entry) if entry else os.getcwd() for entry in sys.path]
    # PWD and OLDPWD would name the run's folder, where results.db usually lies.
    for name in [n for n in os.environ if n.startswith("PPBENCH_") or n in ("PWD", "OLDPWD")]:
        del os.environ[name]
    os.chdir(tempfile.mkdtemp(prefix="ppbench-sandbox-"))
    os.environ["PWD"] = os.getcwd()


def _shared_proxy(conn: Any) -> Callable[[str, Callable[[], Any], dict[str, Any]], Any]:
    def shared(name: str, build: Callable[[], Any], key: dict[str, Any]) -> Any:
        conn.send(("shared-get", name, key))
        found, value = conn.recv()
        if found:
            return value
        value = build()
        conn.send(("shared-put", name, key, value))
        conn.recv()  # the parent has stored it
        return value

    return shared


def _context(spec: ContextSpec, conn: Any) -> Context:
    return Context(device=spec.device, profile=spec.profile, seed=spec.seed,
                   time_limit=spec.time_limit, show_progress=False, shared_store=_shared_proxy(conn),
                   shared_seed=spec.shared_seed, label=spec.label)


def _perform(call: PluginCall, registry: Any, conn: Any) -> Any:
    spec = call.context
    ctx = _context(spec, conn)
    ctx.seed_everything()
    cls = registry.get(call.kind, call.name).obj
    payload = call.payload
    with time_limit(spec.time_limit, call.source):
        if call.stage == "fit":
            return fit_sanitizer(cls, call.kwargs, payload["train"], payload["images"], call.task,
                                 ctx, call.source)
        if call.stage == "attack-batch":
            # Several cells of one attack configuration (ppbench.batches), each with its context.
            attack = make_plugin(cls, call.kwargs, call.source)
            contexts = [_context(each, conn) for each in payload["contexts"]]
            with plugin_stage(call.source, "run"), phase("plugin"):
                return attack.run_batch(payload["views"], call.task, contexts)
        if call.stage == "attack":
            view = payload["view"]
            sanitizer = payload.get("sanitizer")
            if payload.get("oracle"):
                view.oracle = lambda images: output_images(sanitizer.transform(images.to(ctx.device), ctx))
            if payload.get("handles"):
                available = sanitizer.handles()
                view.handles = {name: available[name] for name in payload["handles"] if name in available}
            attack = make_plugin(cls, call.kwargs, call.source)
            with plugin_stage(call.source, "run"), phase("plugin"):
                return attack.run(view, call.task, ctx)
        metric = make_plugin(cls, call.kwargs, call.source)
        with plugin_stage(call.source, "run"), phase("plugin"):
            return metric.run(payload["view"], call.task, ctx)


# --- the parent ----------------------------------------------------------------------------------


class Sandbox:
    """One warm child process; :meth:`call` runs a :class:`PluginCall` in it and returns what
    the plugin returned. A child that dies or hangs is replaced for the next call."""

    def __init__(self, recipe: RegistryRecipe | None, threads: int | None = None) -> None:
        import torch

        self.recipe = recipe or RegistryRecipe.of(None)
        self.threads = threads or torch.get_num_threads()
        self.process: Any = None
        self.conn: Any = None

    def _start(self) -> None:
        import torch.multiprocessing as mp

        _hide_this_process()

        context = mp.get_context("spawn")  # fork and torch's thread pools do not mix
        parent, child = context.Pipe()
        self.process = context.Process(target=_child_main, args=(child, self.recipe, self.threads),
                                       daemon=True, name="ppbench-sandbox")
        self.process.start()
        child.close()
        self.conn = parent

    def close(self) -> None:
        if self.process is not None:
            try:
                self.conn.send(None)
                self.process.join(timeout=5)
            except (OSError, EOFError, BrokenPipeError):
                pass
            if self.process.is_alive():
                self.process.kill()
                self.process.join()
        self.process = self.conn = None

    def _kill(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.process = self.conn = None

    def call(self, call: PluginCall, shared: Any) -> Any:
        """Run ``call`` in the child; ``shared`` serves ``ctx.shared`` (a :class:`SharedModels`)."""
        if self.process is None or not self.process.is_alive():
            self._start()
            wait_first = _START_GRACE
        else:
            wait_first = 0.0
        limit = call.context.time_limit
        budget = None if limit is None else limit + _KILL_GRACE + wait_first
        try:
            self.conn.send(call)
        except (OSError, BrokenPipeError) as exc:
            self._kill()
            raise PluginContractError(f"{call.source}: its sandbox process is gone ({exc})") from None
        held: dict[tuple, Any] = {}
        try:
            while True:
                if not self.conn.poll(budget):
                    self._kill()
                    raise CellTimeout(f"{call.source}: time limit of {limit:.0f}s exceeded "
                                      "(its sandbox process was stopped)")
                message = self.conn.recv()
                tag = message[0]
                if tag == "ok":
                    opened = current_clock()
                    if opened is not None and len(message) > 2:
                        opened.merge(clean_phases(message[2]))
                    return message[1]
                if tag == "error":
                    _, name, text = message
                    raise {"CellTimeout": CellTimeout, "NotApplicable": NotApplicable}.get(
                        name, PluginContractError)(text)
                if tag == "shared-get":
                    _, name, key = message
                    found, value, lock = shared.lookup(name, key)
                    if not found:
                        held[(name, repr(key))] = lock  # kept until the child hands the value over
                    self.conn.send((found, value))
                elif tag == "shared-put":
                    _, name, key, value = message
                    shared.store(name, key, value, held.pop((name, repr(key)), None))
                    self.conn.send(True)
        except (EOFError, ConnectionResetError, BrokenPipeError):
            code = self.process.exitcode if self.process is not None else None
            self._kill()
            raise PluginContractError(f"{call.source}: its sandbox process died (exit code {code}: "
                                      "out of memory, or the plugin exited)") from None
        finally:
            for lock in held.values():
                if lock is not None:
                    lock.release()


_PR_SET_DUMPABLE, _PR_GET_DUMPABLE = 4, 3


def _hide_this_process() -> None:
    """Make the harness's process non-dumpable (Linux): another process of the same user, such as
    a sandboxed plugin, can then no longer read its /proc entries (working folder, environment,
    open files, memory), which would lead it to the store, the cache and the salt. Root can
    still read them; that takes a container (CONTRIBUTING)."""
    if sys.platform != "linux":
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: nothing to hide with
        pass


def process_is_hidden() -> bool:
    """Whether this process is non-dumpable (its /proc entries closed to other processes)."""
    if sys.platform != "linux":
        return False
    import ctypes

    return ctypes.CDLL(None).prctl(_PR_GET_DUMPABLE, 0, 0, 0, 0) == 0


_sandboxes: dict[Any, Sandbox] = {}


def sandbox_for(recipe: RegistryRecipe | None) -> Sandbox:
    """The warm sandbox of this process for a registry recipe (one per worker process)."""
    try:
        key: Any = recipe
        hash(key)
    except TypeError:
        key = id(recipe)
    if key not in _sandboxes:
        _sandboxes[key] = Sandbox(recipe)
    return _sandboxes[key]


def close_sandboxes() -> None:
    for sandbox in _sandboxes.values():
        sandbox.close()
    _sandboxes.clear()
