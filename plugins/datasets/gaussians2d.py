"""gaussians2d: the 2-D toy problem of Martinsson et al. (2020), section 4.

Two balanced classes of points in the plane: s = 0 ~ N((−1, 1), σ²·I) and s = 1 ~ N((1, −1), σ²·I).
The paper writes the covariance as 0.7·I, while the authors' public code draws with standard
deviation 0.7; this plugin follows the code (σ = ``std`` = 0.7, covariance 0.49·I) and takes
``std`` as a parameter for anyone who wants the paper's reading (``std = 0.7 ** 0.5``).

The paper used 400,000 train and 2,560 test points; the train size comes from the profile unless
``n_train`` is given, the test size defaults to the paper's 2,560. Features are N×2 float32 (a
``vector`` data set: not images, not in [0, 1]); the only attribute is ``s``, so the one task has
no utility attributes and utility is measured by distortion (Martinsson et al.'s synthetic utility
score, 1 − mean|x − h(x)| / 2, in the fixed-utility metric).
"""

from __future__ import annotations

from typing import Any

from ppbench import VECTOR, Attribute, DatasetSpec, DatasetSplits, ImageSet, Profile, Task, hookimpl

NAME = "gaussians2d"
MEANS = ((-1.0, 1.0), (1.0, -1.0))
ATTRIBUTES = (Attribute("s", ("0", "1"), "which of the two Gaussians the point was drawn from"),)
TASKS = (Task(NAME, "s", "s", (), "hide which Gaussian a point came from"),)
DEFAULT_PARAMS: dict[str, Any] = {"std": 0.7, "n_train": None, "n_attack": None, "n_test": 2560,
                                  "n_aux": None}


def sample(n: int, std: float, generator: "Any") -> ImageSet:
    """``n`` points, classes balanced in expectation (s ~ Bernoulli(1/2))."""
    import torch

    s = torch.randint(0, 2, (n,), generator=generator)
    means = torch.tensor(MEANS, dtype=torch.float32)[s]
    points = means + std * torch.randn(n, 2, generator=generator)
    return ImageSet(points, {"s": s}, {a.name: a for a in ATTRIBUTES})


def load(profile: Profile, seed: int, std: float = 0.7, n_train: int | None = None,
         n_attack: int | None = None, n_test: int = 2560, n_aux: int | None = None) -> DatasetSplits:
    import torch

    if std <= 0:
        raise ValueError(f"gaussians2d: std must be positive, got {std}")
    sizes = {"n_train": n_train or profile.n_train, "n_attack": n_attack or profile.n_attack,
             "n_test": n_test, "n_aux": n_aux or profile.n_aux}
    for key, value in sizes.items():
        if int(value) < 2:
            raise ValueError(f"gaussians2d: {key} must be at least 2, got {value}")
    # One generator per split, so that changing one split's size leaves the others unchanged.
    splits = [sample(int(sizes[f"n_{name}"]), std, torch.Generator().manual_seed(seed * 4 + i))
              for i, name in enumerate(("train", "test", "aux", "attack"))]
    return DatasetSplits(train=splits[0], attack=splits[3], test=splits[1], aux=splits[2])


@hookimpl
def ppbench_register_datasets(register):
    register(DatasetSpec(
        name=NAME,
        description="Martinsson et al.'s 2-D toy problem: two Gaussians, the class is the secret",
        load=load,
        attributes=ATTRIBUTES,
        tasks=TASKS,
        kind=VECTOR,
        params=dict(DEFAULT_PARAMS),
        version="1",
    ))
