"""Achieved FLOP/s of a training step ÷ FLOP/s of a dense matmul, measured in the same run.

    python -m benchmarks.efficiency

A training step costs ≈ 6 × parameters × tokens FLOPs (forward 2, backward 4; transformers'
`model.floating_point_ops`). The ceiling is what this machine's BLAS reaches on one large
float32 matmul with the same threads.
"""

from __future__ import annotations

import time

import torch

from .common import save


def matmul_flops(n: int = 1024, repeats: int = 20) -> float:
    """Return the FLOP/s of an n×n float32 matmul (best of `repeats`)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def step_flops(model_name: str, batch: int, length: int, steps: int) -> dict:
    """Return the FLOPs per step and achieved FLOP/s of training steps at a fixed shape."""
    import transfer_lab as tl

    net = tl.build_model(model_name, seed=0, pretrained=model_name == "minilm")
    opt = torch.optim.AdamW(net.parameters(), lr=1e-5, fused=True)  # as fit
    x = {"input_ids": torch.randint(5, 1000, (batch, length)),
         "attention_mask": torch.ones(batch, length, dtype=torch.long),
         "labels": torch.zeros(batch, dtype=torch.long)}
    # 6 FLOPs per weight per token (forward 2, backward 4), embeddings left out: the estimate
    # transformers' old `floating_point_ops` made (attention's own matmuls are not counted)
    weights = sum(p.numel() for n, p in net.named_parameters() if "embeddings" not in n)
    flops = 6 * batch * length * weights
    net.train()
    for i in range(steps + 2):  # two warm-up steps
        if i == 2:
            start = time.perf_counter()
        net(**x).loss.backward()
        opt.step()
        opt.zero_grad()
    seconds = (time.perf_counter() - start) / steps
    return {"flops_per_step": flops, "seconds_per_step": seconds, "flops_per_s": flops / seconds}


def main() -> dict:
    """Measure the matmul ceiling and each model's training FLOP/s; print and save the ratio."""
    import transfer_lab as tl

    tl.quiet()
    peak = matmul_flops()
    out = {"matmul_flops_per_s": peak, "threads": torch.get_num_threads(), "models": {}}
    for name, batch, steps in (("tiny", 32, 20), ("minilm", 16, 4)):
        r = step_flops(name, batch, 64, steps)
        r["fraction_of_matmul"] = r["flops_per_s"] / peak
        out["models"][name] = r
        print(f"{name}: {r['flops_per_s'] / 1e9:.2f} GFLOP/s in training = "
              f"{r['fraction_of_matmul']:.1%} of the matmul's {peak / 1e9:.1f} GFLOP/s")
    save("efficiency", out)
    return out


if __name__ == "__main__":
    main()
