"""Safe loading: weights only as safetensors, optimizer state with weights_only=True, no remote
code. The package's own source is scanned, and a booby-trapped checkpoint is refused."""

import json
import os
import re
from pathlib import Path

import pytest
import torch

import transfer_lab as tl
from transfer_lab.training import checkpoint

PACKAGE = Path(tl.__file__).parent
SOURCES = sorted(PACKAGE.rglob("*.py"))


def calls(name: str) -> list[tuple[Path, str]]:
    """Return (file, call text) for each call of `name(` in the package (up to its ')')."""
    found = []
    for path in SOURCES:
        text = path.read_text()
        for match in re.finditer(re.escape(name) + r"\(", text):
            depth, end = 1, match.end()
            while depth and end < len(text):
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                end += 1
            found.append((path, text[match.start():end]))
    return found


def test_the_package_never_trusts_remote_code():
    trusting = re.compile(r"trust_remote_code\s*=\s*True")
    offenders = [p.name for p in SOURCES if trusting.search(p.read_text())]
    assert SOURCES and not offenders, offenders


def test_every_torch_load_is_weights_only_and_nothing_unpickles():
    loads = calls("torch.load")
    assert loads, "expected the checkpoint module to call torch.load"
    unsafe = [(p.name, c) for p, c in loads if "weights_only=True" not in c]
    assert not unsafe, unsafe
    for path in SOURCES:
        text = path.read_text()
        assert not re.search(r"pickle\.loads?\(|dill\.|joblib\.load", text), path.name
        assert "safe_serialization=False" not in text, path.name


class Trap:
    """An object whose unpickling would run a command (what a malicious checkpoint carries)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_booby_trapped_optimizer_file_is_refused(tmp_path):
    model = tl.build_model("tiny")
    folder = checkpoint.save_checkpoint(tmp_path / "run", model, step=1)
    marker = tmp_path / "pwned"
    torch.save({"optimizer": Trap(marker)}, folder / checkpoint.TRAINER)
    manifest = json.loads((folder / checkpoint.MANIFEST).read_text())
    manifest["files"][checkpoint.TRAINER] = checkpoint._fingerprint(folder / checkpoint.TRAINER)
    (folder / checkpoint.MANIFEST).write_text(json.dumps(manifest))  # a consistent forgery
    with pytest.raises(checkpoint.CheckpointError, match="trainer.pt is damaged or holds more "
                                                         "than tensors and plain data; refusing"):
        checkpoint.load_checkpoint(folder).trainer_state()
    with pytest.warns(UserWarning, match="skipping a broken checkpoint"):
        assert checkpoint.restore(tmp_path / "run", model) is None
    assert not marker.exists()


def test_weights_are_written_as_safetensors(tmp_path):
    folder = checkpoint.save_checkpoint(tmp_path, tl.build_model("tiny"), step=7)
    assert (folder / "model.safetensors").read_bytes()[8:9] == b"{"  # a JSON header, no pickle
    assert not list(folder.glob("*.bin"))
