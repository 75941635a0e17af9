"""A sweep over (d, beta) on a Dask cluster: one task per d, each running its betas as one
ensemble on one worker. The same code runs on a multi-node cluster: replace LocalCluster by
dask_jobqueue.SLURMCluster(...) (one worker per GPU, `cluster.scale(jobs=...)`) or a
dask_kubernetes cluster; ATTNFLOW_ADAPTER in a worker's environment picks its GPU.

    pip install "./python[dask]" && python examples/python/sweep_local_cluster.py
"""
from distributed import Client, LocalCluster

import attnflow as af

if __name__ == "__main__":
    grid = [dict(d=d, beta=b) for d in (3, 8, 32) for b in (0.5, 1, 2, 4, 8)]
    with LocalCluster(n_workers=2, threads_per_worker=1) as cluster, Client(cluster) as client:
        rows = af.sweep(grid, client=client, n=256, t_end=5.0, steps=100, backend="cpu",
                        out="runs/sweep")
    for row in rows:
        m = row["metrics"]
        mean_cos = list(m["mean_cos"])[-1]
        print(f"d = {row['options']['d']:3}  beta = {row['options']['beta']:4}  mean cos at T: {mean_cos:.4f}")
