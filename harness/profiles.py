"""How big a run is: the profiles (quick, standard, paper) that data sets and plugins read their
sizes from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    """How big a run is. Data sets and plugins read their sizes from here, never hard-code them.

    Split sizes: ``n_train`` (the sanitizer fits here), ``n_attack`` (raw data the harness
    sanitizes and hands, labelled, to the adversary), ``n_test`` (scored by the harness) and
    ``n_aux`` (public raw data an attacker may own). Trained attacks and metric classifiers stop
    early on a validation split carved from their own training data; ``max_epochs`` caps them and
    ``patience`` is how many epochs without improvement they wait.
    """

    name: str
    image_size: int
    n_train: int
    n_attack: int
    n_test: int
    n_aux: int
    max_epochs: int  # attack and metric classifiers: the cap of early-stopped training
    fit_epochs: int  # learned sanitizers
    batch_size: int
    cell_time_limit: float  # seconds; a cell that runs longer is stored as an error
    patience: int = 3


PROFILES: dict[str, Profile] = {
    # Sized so that the default benchmark (3 seeds, every network trained to convergence) runs
    # in under 5 minutes on 2 CPU cores. The converged trainings dominate (per seed one
    # recognizer and one raw-data reference classifier per kept attribute; per sanitizer and
    # seed an adversarial classifier and a downstream model), and each costs about 2x less at
    # 16x16 than at 24x24 and 3x less than at 32x32
    # (measured: the 50-identity reference 9 s / 25 s / 30 s); fewer items instead would make
    # the attacks weaker (identity at 24x24: 0.93 with 2,000 items, 0.66 with 1,000).
    "quick": Profile("quick", image_size=16, n_train=2000, n_attack=2000, n_test=1000, n_aux=1000,
                     max_epochs=30, fit_epochs=5, batch_size=64, cell_time_limit=900.0),
    "standard": Profile("standard", image_size=64, n_train=20000, n_attack=20000, n_test=4000,
                        n_aux=4000, max_epochs=40, fit_epochs=30, batch_size=64,
                        cell_time_limit=4 * 3600.0),
    # The papers' scale (Martinsson et al.: 64×64, 100 epochs). Meant for a GPU.
    "paper": Profile("paper", image_size=64, n_train=100000, n_attack=50000, n_test=20000,
                     n_aux=20000, max_epochs=60, fit_epochs=100, batch_size=64,
                     cell_time_limit=48 * 3600.0),
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}") from None
