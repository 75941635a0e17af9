#!/usr/bin/env python3
"""PyTorch beside attnflow on the same GPU (called by scripts/gpu-report).

The same evaluation attnflow's report times: n tokens x_i uniform on S^{d-1}, beta = 1,
a_i = sum_j softmax_j(beta <x_i, x_j>) x_j, in fp32, as
  - torch.nn.functional.scaled_dot_product_attention(x, x, x, scale=beta) (whichever fp32
    kernel PyTorch picks; O(n d) memory where it has one), and
  - the explicit softmax(beta X X^T) X (an n x n matrix; only while it fits).
Timed with CUDA events, median of 3 after a warm-up (one at n = 2^20). Reads attnflow's
figures from OUT/gpu-report.jsonl and extends OUT/gpu-report.jsonl (rows "torch") and
OUT/gpu-report.md row by row, each file atomically, so that a run cut short keeps every
finished row.

--part headline measures d = 3 and d = 64 at n = 2^20; --part rest the rest of the grid
(n = 2^14, 2^17, 2^20; d = 3, 16, 64, 128); --deadline (Unix seconds) stops it starting a
row that would not finish in time, and lists it as skipped.
"""

import argparse
import json
import os
import statistics
import time

HEADLINE = [(3, 1 << 20), (64, 1 << 20)]
GRID = [(d, n) for d in (3, 16, 64, 128) for n in (1 << 14, 1 << 17, 1 << 20)]


def extend(path, text):
    """Appends text to path atomically: the whole file is written beside it, synced and
    renamed over it, so a reader (or a run killed meanwhile) never sees half a row."""
    try:
        with open(path, "rb") as f:
            old = f.read()
    except FileNotFoundError:
        old = b""
    tmp = os.path.join(os.path.dirname(path) or ".", f".{os.path.basename(path)}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(old + text.encode())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def fmt(v):
    return "-" if v is None else f"{v:.3e}"


def ratio(a, b):
    return "-" if a is None or b is None else f"{a / b:.2f}x"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--part", choices=("headline", "rest", "all"), default="all")
    ap.add_argument("--deadline", type=float, help="Unix time after which no row starts")
    args = ap.parse_args()
    import torch  # after the arguments: --help works without it

    jsonl = os.path.join(args.out, "gpu-report.jsonl")
    md = os.path.join(args.out, "gpu-report.md")
    ours = {}
    if os.path.exists(jsonl):
        with open(jsonl) as f:
            for line in f:
                row = json.loads(line)
                if row.get("row") == "eval":
                    ours[(row["n"], row["d"])] = row["gpu"]["pairs_per_second"]
    sizes = {
        "headline": HEADLINE,
        "rest": [s for s in GRID if s not in HEADLINE],
        "all": HEADLINE + [s for s in GRID if s not in HEADLINE],
    }[args.part]

    def tokens(n, d, seed=1):
        g = torch.Generator(device="cuda").manual_seed(seed)
        x = torch.randn(n, d, device="cuda", dtype=torch.float32, generator=g)
        return x / x.norm(dim=1, keepdim=True)

    def timed(fn, reps):
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

    # Seconds per pair measured so far, by d, to estimate whether the next row fits.
    per_pair = {}

    def fits(d, n, calls):
        if args.deadline is None:
            return True
        left = args.deadline - time.time()
        below = [e for e in per_pair if e <= d]
        if not below:
            return left > 0
        e = max(below)  # the nearest measured d, the cost of a pair scaled by d / e
        return per_pair[e] * d / e * n * n * calls <= left

    device = torch.cuda.get_device_name()
    head = [
        "",
        f"PyTorch {torch.__version__} on {device}, fp32, pairs/s"
        + (" (the headline sizes)" if args.part == "headline" else "")
        + ":",
        "",
        "| n | d | attnflow | SDPA | explicit softmax | attnflow / SDPA | attnflow / explicit |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    headed = False
    free = torch.cuda.mem_get_info()[0]
    for d, n in sizes:
        reps = 1 if n >= 1 << 20 else 3
        if not fits(d, n, 2 * (reps + 1)):
            line = f"Skipped: PyTorch n = {n}, d = {d} (time limit)."
            print(line, flush=True)
            extend(jsonl, json.dumps({"row": "skipped", "what": f"PyTorch n = {n}, d = {d}", "why": "time limit"}) + "\n")
            extend(md, "\n" + line + "\n")
            headed = False
            continue
        row = {"row": "torch", "torch": torch.__version__, "device": device, "n": n, "d": d, "attnflow_pairs_per_second": ours.get((n, d))}
        try:
            x = tokens(n, d)
        except Exception as e:  # out of memory: the row says so, and the next one runs
            x = None
            row["tokens_error"] = str(e).splitlines()[0][:200]
        if x is not None:
            q = x.view(1, 1, n, d)
            try:
                s = timed(lambda: torch.nn.functional.scaled_dot_product_attention(q, q, q, scale=1.0), reps)
                row["sdpa_pairs_per_second"] = n * n / s
                per_pair[d] = s / (n * n)  # the latest, largest n: launch costs weigh least
            except Exception as e:  # an fp32 kernel may not exist for this d, or memory run out
                row["sdpa_error"] = str(e).splitlines()[0][:200]
            if 3 * 4 * n * n < 0.6 * free:
                try:
                    s = timed(lambda: torch.softmax(x @ x.T, dim=-1) @ x, reps)
                    row["explicit_pairs_per_second"] = n * n / s
                except Exception as e:
                    row["explicit_error"] = str(e).splitlines()[0][:200]
            else:
                row["explicit_error"] = f"the {n} x {n} matrix does not fit"
            del x, q
        torch.cuda.empty_cache()
        a, s, e = row["attnflow_pairs_per_second"], row.get("sdpa_pairs_per_second"), row.get("explicit_pairs_per_second")
        line = f"| {n} | {d} | {fmt(a)} | {fmt(s)} | {fmt(e)} | {ratio(a, s)} | {ratio(a, e)} |"
        text = ("\n".join(head) + "\n" if not headed else "") + line + "\n"
        headed = True
        extend(jsonl, json.dumps(row) + "\n")
        extend(md, text)
        print(line, flush=True)


if __name__ == "__main__":
    main()
