#!/usr/bin/env python3
"""PyTorch beside attnflow on the same GPU (called by scripts/gpu-report).

The same evaluation attnflow's report times: n tokens x_i uniform on S^{d-1}, beta = 1,
a_i = sum_j softmax_j(beta <x_i, x_j>) x_j, in fp32, as
  - torch.nn.functional.scaled_dot_product_attention(x, x, x, scale=beta) (whichever fp32
    kernel PyTorch picks; O(n d) memory where it has one), and
  - the explicit softmax(beta X X^T) X (an n x n matrix; only while it fits).
Timed with CUDA events, median of 3 after a warm-up. Reads OUT/gpu-report.json for attnflow's
figures, writes OUT/torch.json and appends a table to OUT/gpu-report.md.
"""

import argparse
import json
import math
import os
import statistics

import torch


def tokens(n, d, seed=1):
    g = torch.Generator(device="cuda").manual_seed(seed)
    x = torch.randn(n, d, device="cuda", dtype=torch.float32, generator=g)
    return x / x.norm(dim=1, keepdim=True)


def timed(fn, reps=3):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(stop) / 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    report_path = os.path.join(args.out, "gpu-report.json")
    ours = {}
    if os.path.exists(report_path):
        with open(report_path) as f:
            for row in json.load(f).get("grid", []):
                ours[(row["n"], row["d"])] = row["gpu"]["pairs_per_second"]
    rows = []
    free = torch.cuda.mem_get_info()[0]
    for d in (3, 16, 64, 128):
        for n in (1 << 14, 1 << 17, 1 << 20):
            x = tokens(n, d)
            q = x.view(1, 1, n, d)
            row = {"n": n, "d": d, "attnflow_pairs_per_second": ours.get((n, d))}
            # 2^20 at d >= 64 is seconds per evaluation for everyone; keep the 2 minutes.
            if n <= (1 << 17) or d <= 16:
                try:
                    s = timed(lambda: torch.nn.functional.scaled_dot_product_attention(q, q, q, scale=1.0))
                    row["sdpa_pairs_per_second"] = n * n / s
                except Exception as e:  # an fp32 kernel may not exist for this d
                    row["sdpa_error"] = str(e).splitlines()[0][:200]
            if 3 * 4 * n * n < 0.6 * free:
                try:
                    s = timed(lambda: torch.softmax(x @ x.T, dim=-1) @ x)
                    row["explicit_pairs_per_second"] = n * n / s
                except Exception as e:
                    row["explicit_error"] = str(e).splitlines()[0][:200]
            else:
                row["explicit_error"] = f"the {n} x {n} matrix does not fit"
            rows.append(row)
            del x, q
            torch.cuda.empty_cache()
    with open(os.path.join(args.out, "torch.json"), "w") as f:
        json.dump({"torch": torch.__version__, "device": torch.cuda.get_device_name(), "rows": rows}, f, indent=2)

    def fmt(v):
        return "-" if v is None else f"{v:.3e}"

    def ratio(a, b):
        return "-" if a is None or b is None else f"{a / b:.2f}x"

    lines = [
        "",
        f"PyTorch {torch.__version__} on {torch.cuda.get_device_name()}, fp32, pairs/s:",
        "",
        "| n | d | attnflow | SDPA | explicit softmax | attnflow / SDPA | attnflow / explicit |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        a, s, e = r["attnflow_pairs_per_second"], r.get("sdpa_pairs_per_second"), r.get("explicit_pairs_per_second")
        lines.append(f"| {r['n']} | {r['d']} | {fmt(a)} | {fmt(s)} | {fmt(e)} | {ratio(a, s)} | {ratio(a, e)} |")
    with open(os.path.join(args.out, "gpu-report.md"), "a") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
