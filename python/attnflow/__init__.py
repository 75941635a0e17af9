"""attnflow: transformers as interacting particle systems, from numpy and Jupyter.

Tokens are particles x_i on the unit sphere; depth is time; self-attention is the interaction.
The functions here call the attnflow library (Rust; GPU, multithreaded CPU and f64 reference
backends) with the same option names and meanings as the command line (`attnflow run --help`,
with ``_`` for ``-``):

>>> import numpy as np, attnflow as af
>>> res = af.run(n=256, d=3, beta=1.0, t_end=5.0, steps=50, backend="cpu", progress=False)
>>> res.final.shape
(256, 3)

Bad input raises ValueError with the command line's one-line message; other failures (a
blow-up, a device error) raise AttnflowError. The GIL is released while a simulation runs, and
Ctrl-C stops it cleanly at the step in progress (KeyboardInterrupt; with ``out=`` the folder
holds complete files, resumable with ``attnflow run --resume``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

# Mesa's Vulkan drivers print "XDG_RUNTIME_DIR is invalid" on headless machines where it is
# unset or not a folder (into the user's notebook or script output); the CLI points it at the
# temporary folder too. Set before the extension can start a GPU device.
if sys.platform.startswith("linux") and not os.path.isdir(os.environ.get("XDG_RUNTIME_DIR", "")):
    os.environ["XDG_RUNTIME_DIR"] = tempfile.gettempdir()

from . import _attnflow as _ext
from ._attnflow import AttnflowError, __version__

__all__ = [
    "run",
    "attend",
    "cfm",
    "experiment",
    "adapters",
    "sweep",
    "view",
    "RunResult",
    "AttendResult",
    "CfmResult",
    "AttnflowError",
    "__version__",
]

ArrayLike = Union[np.ndarray, Sequence]


@dataclass
class RunResult:
    """What `run` returns.

    final: the tokens at T, [n, d] or [B, n, d] (float32 from cpu/gpu, float64 from reference).
    traj, times: the snapshots [S, (B,) n, d] and their times with ``save_every`` (or
    ``save_times`` with an adaptive integrator: float64, from the dense output), else None.
    metrics: the metrics.csv columns (step, t, system, beta, energy, mean_cos, min_cos,
    log_energy), a dict of numpy arrays, or a pandas DataFrame when pandas is installed.
    config: the resolved configuration, as run.toml records it (with its provenance table).
    summary: backend, note, elapsed seconds, pair interactions per second, steps done.
    out: the output folder when ``out=`` was given, else None (the files were temporary).
    adaptive: with an adaptive integrator (bosh3, dopri5, tsit5, ros23), run.toml's [adaptive]
    table: ``{"pair": "dopri5", "systems": [{"accepted", "rejected", "h_smallest", "h_largest",
    "evaluations"}, ...]}`` one entry per system (with ros23 also "krylov", the GMRES
    iterations among the evaluations); None for a fixed-step run.
    """

    final: np.ndarray
    traj: Optional[np.ndarray]
    times: Optional[np.ndarray]
    metrics: Any
    config: Dict[str, Any]
    summary: Dict[str, Any]
    out: Optional[Path] = None
    adaptive: Optional[Dict[str, Any]] = None


@dataclass
class AttendResult:
    """What `attend` returns: the attention outputs [m, d] (or [S, m, d]) in float64, the
    per-query weight statistics as columns (draw, query, max_weight, effective_keys, entropy,
    top1..topk; empty with ``stats=False``), the backend used and the note when ``auto`` fell
    back."""

    outputs: np.ndarray
    stats: Dict[str, np.ndarray] = field(default_factory=dict)
    backend: str = ""
    note: Optional[str] = None


@dataclass
class CfmResult:
    """What `cfm` returns.

    final: the queries at T, [m, d] (or [S, m, d] with ``seeds`` > 1), float64.
    traj, times: the queries at the saved times [T, (S,) m, d] and those times.
    context_final: the context at T [(S,) n, d] when it evolves, else None.
    infinite: the infinite-context twins at the saved times (same shape as traj) with
        ``infinite=True``, else None; distance: each query's distance to its twin
        [T, (S,) m]; distance_summary: mean, rms and max per saved time (distance.csv).
    config: cfm.toml as a dict (the resolved options and the provenance table).
    summary: backend, note, beta, elapsed seconds, pair interactions per second.
    out: the output folder when ``out=`` was given, else None.
    """

    final: np.ndarray
    traj: np.ndarray
    times: np.ndarray
    context_final: Optional[np.ndarray]
    infinite: Optional[np.ndarray]
    distance: Optional[np.ndarray]
    distance_summary: Any
    config: Dict[str, Any]
    summary: Dict[str, Any]
    out: Optional[Path] = None


def _progress_callback(progress: Union[bool, Callable[[int, int], Any]], desc: str):
    """A callable (done, total) drawing a bar: the user's own, tqdm's when installed, else
    a line on stderr at every tenth; None when progress is off."""
    if callable(progress):
        return progress, lambda: None
    if not progress:
        return None, lambda: None
    try:
        from tqdm.auto import tqdm  # type: ignore
    except ImportError:
        tqdm = None
    state: Dict[str, Any] = {"bar": None, "shown": -1}

    def update(done: int, total: int) -> None:
        if tqdm is not None:
            if state["bar"] is None:
                state["bar"] = tqdm(total=total, desc=desc, unit="step")
            bar = state["bar"]
            bar.update(done - bar.n)
        elif total > 0:
            tenth = (10 * done) // total
            if tenth != state["shown"]:
                state["shown"] = tenth
                print(f"{desc}: step {done}/{total}", file=sys.stderr)

    def close() -> None:
        if state["bar"] is not None:
            state["bar"].close()

    return update, close


def _json_value(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    return v


def _toml_value(v: Any) -> str:
    """A TOML value of an option (numbers, strings, booleans, lists of them; nan and inf as
    TOML writes them), so that the options reach the same parser as a CLI config file."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != v:
            return "nan"
        if v in (float("inf"), float("-inf")):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise ValueError(f"an option value must be a number, string, boolean or list, got {v!r}")


def _toml(options: Dict[str, Any]) -> str:
    for k in options:
        if not k.replace("_", "a").isalnum():
            raise ValueError(f"invalid option name {k!r}")
    return "".join(f"{k} = {_toml_value(v)}\n" for k, v in options.items())


def _float_array(a: ArrayLike, what: str, ndims: Tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype not in (np.float32, np.float64):
        raise ValueError(f"{what} must hold float32 or float64 values, got dtype {arr.dtype}")
    if arr.ndim not in ndims:
        raise ValueError(
            f"{what} must have {' or '.join(str(n) for n in ndims)} dimensions, got shape {arr.shape}"
        )
    return np.ascontiguousarray(arr)


def _save_qkv(qkv: Any, folder: Path) -> Any:
    """(Q, K, V) arrays become a folder of Q.npy, K.npy, V.npy; anything else is passed on."""
    if isinstance(qkv, (tuple, list)) and len(qkv) != 3:
        raise ValueError(
            f"qkv takes three arrays (Q, K, V), each [d, d] or [H, d, d], got {len(qkv)}; or a "
            "name: 'identity', 'random:SEED', a folder"
        )
    if isinstance(qkv, (tuple, list)) and not isinstance(qkv[0], str):
        folder.mkdir(parents=True, exist_ok=True)
        for name, m in zip("QKV", qkv):
            np.save(folder / f"{name}.npy", _float_array(m, name, (2, 3)))
        return str(folder)
    return qkv


def _read_metrics(path: Path) -> Any:
    data = np.genfromtxt(path, delimiter=",", names=True, dtype=float)
    data = np.atleast_1d(data)
    columns = {name: np.asarray(data[name]) for name in data.dtype.names}
    for name in ("step", "system"):
        if name in columns:
            columns[name] = columns[name].astype(np.int64)
    try:
        import pandas as pd  # type: ignore
    except ImportError:
        return columns
    return pd.DataFrame(columns)


def run(
    x0: Optional[ArrayLike] = None,
    *,
    out: Optional[Union[str, os.PathLike]] = None,
    force: bool = False,
    progress: Union[bool, Callable[[int, int], Any]] = True,
    **options: Any,
) -> RunResult:
    """Integrates a particle system and returns its results.

    x0: initial tokens [n, d] shared by every system, or [B, n, d] (float32 or float64,
        C or Fortran order); on the sphere each is normalised. Without it, ``init`` draws them.
        A C-contiguous float32/float64 array is read in place, without a copy or a file.
    out: keep the output folder (final.npy, metrics.csv, run.toml, traj.npy) there; with
        ``force=True`` an existing one is replaced when the run succeeds. Arrays given as x0
        or qkv are kept there too (x0.npy, Q.npy, K.npy, V.npy) and run.toml names them, so
        ``attnflow run --config OUT/run.toml`` replays the run.
    Result arrays are the output files mapped copy-on-write (no copy; writable).
    progress: a progress bar (tqdm when installed), False for none, or a callable(done, total).
    options: every option of ``attnflow run`` with ``_`` for ``-`` and the same meaning: n, d,
        batch, model ("sa", "usa"), geometry ("sphere", "euclidean"), mask ("full", "causal"),
        beta (a number, or a list: one system each), beta_rule ("const", "log", "selective"),
        qkv ("identity", "random:SEED", "redraw:SEED", a folder, or a (Q, K, V) tuple of
        [d, d] or [H, d, d] arrays), heads, head_combine, weight_scale, mlp, activation,
        noise, noise_kind, alibi, layer ("ode", "post-ln", "pre-ln", "peri-ln",
        "ngpt"), ngpt_alpha, integrator ("euler", "heun", "rk4", or adaptive "bosh3",
        "dopri5", "tsit5", or the stiff "ros23" on the f64 reference backend), t_end, steps,
        init,
        seed, backend ("auto", "gpu", "cpu", "reference"), save_every, metrics_every,
        checkpoint_every; with an adaptive integrator (docs/adaptive.md) rtol, atol, h_max,
        shared_step, save_times and metrics_times ("0,1,2.5" or "log:START:END:COUNT", or
        a list of numbers) instead of steps and save_every.
    """
    tmp = Path(tempfile.mkdtemp(prefix="attnflow-"))
    callback, close = _progress_callback(progress, "attnflow.run")
    try:
        options = {k: _json_value(v) for k, v in options.items()}
        if "out" in options:
            raise ValueError("give the output folder as out=, not in the options")
        for key in ("save_times", "metrics_times"):
            # A list (or array) of times is the CLI's comma-separated form.
            if isinstance(options.get(key), list):
                options[key] = ",".join(repr(float(t)) for t in options[key])
        tokens = None
        if x0 is not None:
            if "init" in options:
                raise ValueError("give either x0 or init, not both")
            # Read in place by the run (no file, no copy where the layout allows).
            tokens = _float_array(x0, "x0", (2, 3))
        qkv_dir = None
        if "qkv" in options:
            options["qkv"] = _save_qkv(options["qkv"], tmp / "qkv")
            if options["qkv"] == str(tmp / "qkv"):
                qkv_dir = options["qkv"]
        folder = Path(out) if out is not None else tmp / "out"
        try:
            summary = json.loads(
                _ext.run_job(_toml(options), str(folder), force, callback, tokens, out is not None, qkv_dir)
            )
        except AttnflowError as e:
            _name_temporary_files(e, [(tmp / "qkv", "qkv")])
            raise
        close()
        traj = folder / "traj.npy"
        config = json.loads(_ext.toml_to_json((folder / "run.toml").read_text()))
        return RunResult(
            final=_load(folder / "final.npy"),
            traj=_load(traj) if traj.exists() else None,
            times=_load(folder / "traj_t.npy") if traj.exists() else None,
            metrics=_read_metrics(folder / "metrics.csv"),
            config=config,
            summary=summary,
            out=Path(out) if out is not None else None,
            adaptive=config.get("adaptive"),
        )
    finally:
        close()
        shutil.rmtree(tmp, ignore_errors=True)


def _load(path: Path) -> np.ndarray:
    """A result array without a copy: the file mapped copy-on-write (writable, private; the
    mapping outlives the file's removal or replacement), read in full only where mapping fails."""
    try:
        return np.load(path, mmap_mode="c").view(np.ndarray)
    except (ValueError, OSError):
        return np.load(path)


def attend(
    keys: ArrayLike,
    queries: Optional[ArrayLike] = None,
    *,
    beta: float = 1.0,
    beta_rule: str = "const",
    model: str = "sa",
    qkv: Any = "identity",
    backend: str = "auto",
    stats: bool = True,
    top_k: int = 0,
) -> AttendResult:
    """One attention layer, no dynamics (``attnflow attend``): the output a_i of every query
    against the keys, a_i = sum_j w_ij V y_j (no tangent projection).

    keys: [n, d] or [S, n, d] (S independent draws as one batch); queries the same shape
        but m tokens (default: the keys, i.e. self-attention).
    beta, beta_rule: inverse temperature, or gamma of the rule over the number of keys n
        ("log": gamma log n, "selective": gamma n^(2/(d-1))).
    model: "sa" or "usa"; qkv: "identity", "random:SEED", a folder, or (Q, K, V) arrays [d, d].
    stats: the streamed f64 weight statistics per query; top_k: also the k largest weights.
    """
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)):
        raise TypeError(f"top_k must be an int >= 0, got {top_k!r}")
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0 (the number of largest weights kept), got {top_k}")
    k = _float_array(keys, "keys", (2, 3))
    q = k if queries is None else _float_array(queries, "queries", (2, 3))
    if k.ndim != q.ndim:
        raise ValueError(f"keys have shape {k.shape} but queries {q.shape}")
    single = k.ndim == 2
    k3, q3 = (k[None], q[None]) if single else (k, q)
    tmp = Path(tempfile.mkdtemp(prefix="attnflow-"))
    try:
        qkv = _save_qkv(qkv, tmp / "qkv")
        outputs, columns, described, note = _ext.attend_layer(
            k3,
            q3,
            float(beta),
            beta_rule,
            model,
            qkv,
            backend,
            bool(stats),
            int(top_k),
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return AttendResult(
        outputs=outputs[0] if single else outputs,
        stats=dict(columns),
        backend=described,
        note=note,
    )


def _name_temporary_files(error: Exception, files: List[Tuple[Path, str]]) -> None:
    """A bad array the user passed (saved to a temporary .npy for the job) is bad input: raise
    ValueError with the job's message, naming the array as the user named it."""
    msg = str(error)
    for path, name in files:
        if str(path) in msg:
            raise ValueError(msg.replace(str(path), name)) from None


def _flags(options: Dict[str, Any]) -> List[str]:
    """Keyword options as the command line's flags: ``t_end=5`` is ``--t-end 5``, ``True``
    a bare flag, ``False`` and ``None`` nothing."""
    flags: List[str] = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            flags.append(flag)
        elif value is False or value is None:
            continue
        else:
            value = _json_value(value)
            if isinstance(value, (list, tuple)):
                value = ",".join(str(v) for v in value)
            flags.extend([flag, str(value)])
    return flags


def cfm(
    context: Optional[Union[str, ArrayLike]] = None,
    queries: Optional[Union[str, ArrayLike]] = None,
    *,
    out: Optional[Union[str, os.PathLike]] = None,
    force: bool = False,
    progress: Union[bool, Callable[[int, int], Any]] = True,
    **options: Any,
) -> CfmResult:
    """A contextual flow map (``attnflow cfm``): m queries moved by attention to a context of
    n tokens, frozen or evolving, with the exact infinite-context twin of every query.

    context, queries: a law ("uniform", "gaussian", "vmf:KAPPA[:MU]") drawn with n (or m)
        tokens, or an array [n, d] / [S, n, d] (float32 or float64; a C-contiguous one is read
        in place; with out= it is kept there as context.npy / queries.npy, named in cfm.toml).
    options: every option of ``attnflow cfm`` with ``_`` for ``-`` and the same meaning and
        defaults: m, n, d, context_mode ("frozen", "evolving"), seeds, seed, beta, beta_rule,
        model, geometry, qkv, integrator, t_end, steps, save_every, infinite, tol, backend;
        with an adaptive integrator ("bosh3", "dopri5", "tsit5") rtol, atol, h_max, on every
        backend and context mode (docs/adaptive.md); config["adaptive"] then holds each draw's
        step statistics.
    out, force, progress: as for `run`.

    >>> flow = cfm(m=64, n=10_000, context="vmf:2", infinite=True, progress=False)
    """
    tmp = Path(tempfile.mkdtemp(prefix="attnflow-"))
    callback, close = _progress_callback(progress, "attnflow.cfm")
    try:
        if "out" in options:
            raise ValueError("give the output folder as out=, not in the options")
        arrays: Dict[str, Optional[np.ndarray]] = {"context": None, "queries": None}
        for name, value in [("context", context), ("queries", queries)]:
            if value is None:
                continue
            if isinstance(value, str):
                options[name] = value
            else:
                # Read in place by the flow map (no file, no copy where the layout allows).
                arrays[name] = _float_array(value, name, (2, 3))
        if "qkv" in options:
            options["qkv"] = _save_qkv(options["qkv"], tmp / "qkv")
        folder = Path(out) if out is not None else tmp / "out"
        try:
            summary = json.loads(
                _ext.cfm_job(
                    _flags(options), str(folder), force, callback,
                    arrays["context"], arrays["queries"], out is not None,
                )
            )
        except (AttnflowError, ValueError) as e:
            _name_temporary_files(e, [(tmp / "qkv", "qkv")])
            raise
        close()

        def load(name: str) -> Optional[np.ndarray]:
            path = folder / name
            return _load(path) if path.exists() else None

        rows = np.loadtxt(folder / "distance.csv", delimiter=",", skiprows=1, ndmin=2) if (folder / "distance.csv").exists() else None
        distance_summary = None
        if rows is not None:
            distance_summary = {k: rows[:, i] for i, k in enumerate(["t", "mean", "rms", "max"])}
        return CfmResult(
            final=_load(folder / "final.npy"),
            traj=_load(folder / "traj.npy"),
            times=_load(folder / "traj_t.npy"),
            context_final=load("context_final.npy"),
            infinite=load("infinite.npy"),
            distance=load("distance.npy"),
            distance_summary=distance_summary,
            config=json.loads(_ext.toml_to_json((folder / "cfm.toml").read_text())),
            summary=summary,
            out=Path(out) if out is not None else None,
        )
    finally:
        close()
        shutil.rmtree(tmp, ignore_errors=True)


def experiment(
    name: str,
    *,
    quick: bool = False,
    seed: int = 0,
    backend: str = "auto",
    out: Optional[Union[str, os.PathLike]] = None,
    force: bool = False,
    progress: bool = True,
    mutate: Optional[str] = None,
    **params: Any,
) -> Dict[str, Any]:
    """Runs one study of the research end to end (``attnflow experiment NAME``) and returns
    its summary.json as a dict. With ``out=`` its data and figures stay there.

    params: the experiment's sizes and physical parameters (``--set KEY=VALUE``), e.g.
        ``experiment("lost-in-the-middle", quick=True, n=64, lambda_=1)`` (a trailing ``_``
        is dropped, for names Python reserves); lists are given as lists.
    mutate: a deliberate error in the physics (``--mutate NAME``) under which at least one
        check must fail."""
    text_params = {}
    for key, value in params.items():
        value = _json_value(value)
        text_params[key.rstrip("_")] = json.dumps(value) if not isinstance(value, str) else value
    tmp = Path(tempfile.mkdtemp(prefix="attnflow-"))
    try:
        folder = Path(out) if out is not None else tmp / name
        text = _ext.experiment_job(
            name, str(folder), quick, seed, backend, force, progress, text_params, mutate
        )
        return json.loads(text)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def view(
    result_or_dir: Union[RunResult, CfmResult, str, os.PathLike],
    *,
    out: Optional[Union[str, os.PathLike]] = None,
    max_tokens: int = 65536,
    force: bool = False,
    display: bool = True,
    height: int = 760,
) -> Any:
    """Writes the interactive page of a run (``attnflow view DIR``: DIR/view.html, one
    self-contained file) and, in Jupyter (IPython present), shows it inline; otherwise returns
    the page's path.

    result_or_dir: a RunResult or CfmResult made with ``out=`` (a result without a folder has
        nothing on disk to view: pass ``out=`` to `run`), or an output folder.
    out: the page to write [default: DIR/view.html].
    max_tokens: at most this many tokens on the page (an evenly spaced sample beyond).
    force: replace an existing page attnflow did not write (its own pages are replaced).
    display: show the page inline when IPython is present (else return its path)."""
    if isinstance(result_or_dir, (RunResult, CfmResult)):
        if result_or_dir.out is None:
            raise ValueError(
                "this result has no output folder to view: run it with out=DIR "
                "(and save_every=K for a trajectory)"
            )
        folder = Path(result_or_dir.out)
    else:
        folder = Path(result_or_dir)
    path, _size, _clusters = _ext.view_page(
        str(folder), None if out is None else str(out), int(max_tokens), bool(force)
    )
    page = Path(path)
    if display:
        try:
            from IPython import get_ipython
            from IPython.display import HTML
        except ImportError:
            return page
        if get_ipython() is None:
            return page
        import html as _html

        # srcdoc: the page inline in the notebook, as self-contained as the file itself.
        doc = _html.escape(page.read_text(encoding="utf-8"), quote=True)
        return HTML(
            f'<iframe srcdoc="{doc}" style="width:100%;height:{int(height)}px;border:0" '
            'sandbox="allow-scripts"></iframe>'
        )
    return page


def adapters() -> List[str]:
    """The GPU adapters wgpu sees, best first."""
    return list(_ext.adapters())


def _ensembles(points: Sequence[Dict[str, Any]]) -> List[Tuple[Dict[str, Any], List[int]]]:
    """Points that differ only in beta become one ensemble (one run, a system per beta):
    [(options with beta = [...], indices of the points)]."""
    groups: Dict[str, Tuple[Dict[str, Any], List[int]]] = {}
    for i, p in enumerate(points):
        rest = {k: v for k, v in p.items() if k != "beta"}
        key = json.dumps({k: _json_value(v) for k, v in rest.items()}, sort_keys=True)
        if key not in groups:
            groups[key] = (dict(rest, beta=[]), [])
        beta = p.get("beta", 1.0)
        if isinstance(beta, (list, tuple, np.ndarray)):
            raise ValueError("a sweep point takes one beta; the sweep makes the ensembles")
        groups[key][0]["beta"].append(float(beta))
        groups[key][1].append(i)
    return list(groups.values())


def _run_ensemble(options: Dict[str, Any], out: Optional[str]) -> RunResult:
    """One ensemble of a sweep, on whichever machine runs it (a Dask worker picks its GPU
    with ATTNFLOW_ADAPTER, or the backend option)."""
    return run(progress=False, out=out, force=out is not None, **options)


def sweep(
    grid: Sequence[Dict[str, Any]],
    *,
    client: Any = None,
    out: Optional[Union[str, os.PathLike]] = None,
    **common: Any,
) -> List[Dict[str, Any]]:
    """Runs every point of `grid` (a list of option dicts, e.g. one per (n, beta)) and returns,
    per point in order, {"options", "final", "metrics"} with the point's own system.

    Points that differ only in beta run as one ensemble (one `run` with a beta list), so a
    phase diagram over beta is one task per (n, d, ...). With a Dask ``client``
    (``pip install ./python[dask]``; a LocalCluster, or a cluster from dask-jobqueue or
    dask-kubernetes) the ensembles are spread over its workers, one task each; without one
    they run here, one after the other. With ``out`` each ensemble keeps its folder
    ``out/ensemble-K`` (final.npy, metrics.csv, run.toml with its provenance).
    ``common`` options apply to every point.
    """
    if isinstance(grid, dict):
        example = ", ".join(f"{{{k!r}: ...}}" for k in list(grid)[:2])
        raise TypeError(
            "sweep takes a list of option dicts, one per point, not a dict of value lists: "
            f"give [{example}, ...] (e.g. [dict(beta=b) for b in (1, 2)])"
        )
    if isinstance(grid, (str, bytes)) or not isinstance(grid, (list, tuple)):
        raise TypeError(
            "sweep takes a list of option dicts, one per point (e.g. [dict(n=64, beta=1.0), "
            f"dict(n=64, beta=2.0)]), got {type(grid).__name__}"
        )
    for k, p in enumerate(grid):
        if not isinstance(p, dict):
            raise TypeError(
                f"sweep's point {k} is a {type(p).__name__}: each point is a dict of options, "
                "e.g. dict(n=64, beta=1.0)"
            )
    points = [dict(common, **p) for p in grid]
    ensembles = _ensembles(points)
    outs = [None if out is None else str(Path(out) / f"ensemble-{k}") for k in range(len(ensembles))]
    if client is None:
        results = [_run_ensemble(opts, o) for (opts, _), o in zip(ensembles, outs)]
    else:
        futures = client.map(_run_ensemble, [opts for opts, _ in ensembles], outs, pure=False)
        results = client.gather(futures)
    rows: List[Optional[Dict[str, Any]]] = [None] * len(points)
    for (opts, idx), res in zip(ensembles, results):
        metrics = res.metrics
        for b, i in enumerate(idx):
            final = res.final if res.final.ndim == 2 else res.final[b]
            if hasattr(metrics, "loc"):
                mine = metrics[metrics["system"] == b].reset_index(drop=True)
            else:
                keep = metrics["system"] == b
                mine = {k: v[keep] for k, v in metrics.items()}
            rows[i] = {"options": points[i], "final": final, "metrics": mine}
    return rows  # type: ignore[return-value]
