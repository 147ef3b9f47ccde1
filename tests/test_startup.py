"""The command line starts at once: its listings import neither torch nor transformers; importing
the package installs no warnings filter."""

import json
import subprocess
import sys
import warnings

import pytest

HEAVY = ("torch", "transformers")


def _imported_by(*argv: str) -> dict:
    """Run `transfer-lab ARGV` in a fresh process; return its exit status and imported modules."""
    code = ("import json, sys\nfrom transfer_lab import cli\nstatus = 0\n"
            f"try:\n    status = cli.main({list(argv)!r})\n"
            "except SystemExit as stop:\n    status = stop.code\n"
            "print(json.dumps({'status': status, 'modules': sorted(sys.modules)}), "
            "file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    return json.loads(proc.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["--help"], ["tasks"], ["tasks", "--json"], ["models"],
                                  ["run", "--help"], ["--version"]])
def test_help_and_listings_import_neither_torch_nor_transformers(argv):
    seen = _imported_by(*argv)
    assert seen["status"] == 0, seen["status"]
    assert not [m for m in seen["modules"] if m.split(".")[0] in HEAVY], argv


def test_top_level_help_imports_no_data_set_library_either():
    assert "datasets" not in _imported_by("--help")["modules"]


def test_every_family_headline_metric_is_readable_without_torch():
    from transfer_lab.config import METRICS
    from transfer_lab.families import FAMILIES, get_family

    assert set(METRICS) == set(FAMILIES)
    for name in FAMILIES:
        assert METRICS[name] == get_family(name).metric, name


def test_the_light_registries_are_the_ones_the_pipeline_uses():
    from transfer_lab import config, pipeline
    from transfer_lab.models import backbones, registry

    assert config.INITS == pipeline.INITS
    assert backbones.BACKBONES is registry.BACKBONES
    assert backbones.get_backbone is registry.get_backbone


def test_every_name_of_transfer_lab_models_still_imports():
    import transfer_lab.models as models

    for name in ["ASSETS", "BACKBONES", "HEADS", "LABELLED", "Backbone", "MaskedTokensOnly",
                 "build_model", "count_parameters", "encode_mlm", "get_backbone",
                 "load_tokenizer", "mlm_collator", "model_config", "reset_head"]:
        assert getattr(models, name) is not None, name
    assert set(models.__all__) >= {"BACKBONES", "build_model", "MaskedTokensOnly"}
    assert models.smollm2.HUB_NAME  # submodules too
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        models.nope  # noqa: B018


def test_importing_the_families_installs_no_warnings_filter():
    # first the third-party modules they import (torch, accelerate... add their own filters)
    code = ("import sys, transfer_lab.families\n"
            "print(' '.join(m for m in sys.modules if not m.startswith('transfer_lab')))")
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=300, check=True)
    code = ("import importlib, sys, warnings\n"
            f"for name in {first.stdout.split()!r}:\n"
            "    try:\n        importlib.import_module(name)\n    except Exception:\n"
            "        pass\n"
            "before = list(warnings.filters)\nimport transfer_lab.families\n"
            "import transfer_lab.families.seq2seq\n"
            "assert warnings.filters == before, [f for f in warnings.filters if f not in before]\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_the_encoder_decoder_trains_without_its_v4_12_warning_and_leaves_the_filters():
    import torch

    from transfer_lab.families.seq2seq import build_seq2seq

    model = build_seq2seq(None, "tiny")
    ids = torch.tensor([[2, 5, 6, 3]])
    before = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids).loss
    assert loss.requires_grad
    assert not [w for w in caught if "introduces a better way" in str(w.message)], caught
    assert warnings.filters == before
    assert type(model).__mro__[1].__name__ == "EncoderDecoderModel"  # 🤗's, same checkpoints
