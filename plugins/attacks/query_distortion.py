"""query-distortion: membership inference against a learned transform, by querying it.

Yeom et al.'s loss attack (CSF 2018) turned on a sanitizer: a learned filter is trained to keep
its fit images close to themselves while it removes the sensitive attribute, so a filter that
over-fitted its fit split changes the images it was trained on less than others of the same
distribution. The attack sends each candidate through the fitted sanitizer (query access, the
``oracle``) and scores it by minus the mean squared change, ``-mean((s(x) - x)²)``, averaged over
up to ``queries`` calls (a sanitizer that draws a fresh replacement value per call is noisy in
one; a deterministic one is queried twice).

It needs nothing but query access, so it applies to every transform-mode sanitizer, learned or
not; on a fixed transform (a blur) it is at chance by construction, which is what a row of the
membership group should read for a sanitizer that fits nothing. A release has no transform to
query: its cells are ``n/a``.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

from ppbench import ORACLE, Attack, Context, Task, hookimpl
from ppbench.api import PluginContractError
from ppbench.membership import MembershipResult, MembershipView

NAME = "query-distortion"


class QueryDistortion(Attack):
    """Membership by the sanitizer's own distortion: candidates it changes less are called members."""

    name = NAME
    version = "1"
    kind = "membership"
    threat_model = "membership"
    description = ("Loss attack through query access: a candidate the fitted sanitizer changes "
                   "less (smaller squared change) is called a member.")
    requires = frozenset({ORACLE})

    def __init__(self, queries: int = 4, batch_size: int = 256) -> None:
        for field, value in (("queries", queries), ("batch_size", batch_size)):
            if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
                raise PluginContractError(f"{NAME}: {field} must be a positive integer, got {value!r}")
        self.queries = int(queries)
        self.batch_size = int(batch_size)

    def run(self, view: MembershipView, task: Task, ctx: Context) -> MembershipResult:
        import torch

        candidates = view.candidates.float()
        changes = []
        for _ in ctx.progress(range(self.queries), desc=f"{NAME} queries"):
            change = torch.zeros(len(candidates), dtype=torch.float64)
            for start in range(0, len(candidates), self.batch_size):
                batch = candidates[start:start + self.batch_size]
                output = view.oracle(batch).float().cpu()
                if output.shape != batch.shape:
                    raise PluginContractError(f"{NAME}: the sanitizer's output {tuple(output.shape)} "
                                              f"does not match its input {tuple(batch.shape)}")
                change[start:start + len(batch)] = (output - batch).flatten(1).pow(2).mean(1).double()
            changes.append(change)
            if len(changes) == 2 and torch.equal(changes[0], changes[1]):
                break  # a deterministic sanitizer: further queries repeat the same answer
        change = torch.stack(changes).mean(0)
        return MembershipResult(-change, diagnostics={"median_change": float(change.median())},
                                budget={"queries": float(len(changes) * len(candidates))})


@hookimpl
def ppbench_register_attacks(register: Any) -> None:
    register(QueryDistortion)
