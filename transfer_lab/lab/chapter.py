"""The one standard first cell of every chapter: quiet logs, seeds, profile, a work folder."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from transfer_lab.config import Profile, profile, quiet


@dataclass(frozen=True)
class Setup:
    """What a chapter needs to know: its profile, its device and where it may write."""

    profile: Profile
    device: str
    workdir: Path
    seed: int


def setup_chapter(seed: int = 0) -> Setup:
    """Silence progress noise, seed everything, and return the profile and a temp work folder.

    Chapters never write into `book/`: checkpoints and logs go to `workdir` (θ_S checkpoints to
    the cache, see `transfer_lab.cache_dir`).
    """
    import matplotlib
    import torch
    from accelerate.utils import set_seed

    quiet()
    set_seed(seed)
    matplotlib.rcParams.update({"figure.dpi": 100, "axes.grid": True, "grid.alpha": 0.3})
    device = "cuda" if torch.cuda.is_available() else (
        "mps" if torch.backends.mps.is_available() else "cpu")
    workdir = Path(tempfile.mkdtemp(prefix="transfer-lab-"))
    return Setup(profile(), device, workdir, seed)
