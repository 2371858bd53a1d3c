"""dcr: distance to the closest released record, a black-box membership attack on a release.

A generator that memorised its training images releases near-copies of them, so a member lies
closer to some released image than a non-member does. The score is minus the Euclidean distance
(in pixels) from each candidate to its nearest released image. It needs nothing but the release,
and is the usual first check of a synthetic data set's privacy.
"""

from __future__ import annotations

from typing import Any

from ppbench import RELEASE, Attack, Context, Task, hookimpl
from ppbench.membership import MembershipResult, MembershipView


def closest_distances(queries: "Any", records: "Any", ctx: Context, chunk: int = 1024) -> "Any":
    """The Euclidean distance of each query to its nearest record (flattened), on ``ctx.device``
    in chunks."""
    import torch

    records = records.flatten(1).to(ctx.device, torch.float32)
    out = []
    for start in range(0, len(queries), chunk):
        batch = queries[start:start + chunk].flatten(1).to(ctx.device, torch.float32)
        # Exact differences, not the matrix-product shortcut, which is off by ~1e-3 near 0.
        out.append(torch.cdist(batch, records, compute_mode="donot_use_mm_for_euclid_dist")
                   .min(dim=1).values.cpu())
        ctx.check_deadline()
    return torch.cat(out)


class DistanceToClosestRecord(Attack):
    """Membership by distance to the closest released record: nearer means more likely a member."""

    name = "dcr"
    version = "1"
    kind = "membership"
    threat_model = "membership"
    description = ("Distance to the closest released record: candidates near a released image "
                   "are called members.")
    requires = frozenset({RELEASE})

    def run(self, view: MembershipView, task: Task, ctx: Context) -> MembershipResult:
        distances = closest_distances(view.candidates, view.release.images, ctx)
        # Nothing is trained: the budget is the released records it compares each candidate with.
        return MembershipResult(-distances.double(), diagnostics={
            "median_distance": float(distances.median())},
            budget={"training_items": float(len(view.release.images))})


@hookimpl
def ppbench_register_attacks(register: Any) -> None:
    register(DistanceToClosestRecord)
