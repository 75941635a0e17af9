from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np

__version__: str

class AttnflowError(Exception): ...

@dataclass
class RunResult:
    final: np.ndarray
    traj: Optional[np.ndarray]
    times: Optional[np.ndarray]
    metrics: Any
    config: Dict[str, Any]
    summary: Dict[str, Any]
    out: Optional[Path] = ...

@dataclass
class AttendResult:
    outputs: np.ndarray
    stats: Dict[str, np.ndarray] = ...
    backend: str = ...
    note: Optional[str] = ...

@dataclass
class CfmResult:
    final: np.ndarray
    traj: np.ndarray
    times: np.ndarray
    context_final: Optional[np.ndarray]
    infinite: Optional[np.ndarray]
    distance: Optional[np.ndarray]
    distance_summary: Optional[Dict[str, np.ndarray]]
    config: Dict[str, Any]
    summary: Dict[str, Any]
    out: Optional[Path] = ...

def run(
    x0: Optional[Union[np.ndarray, Sequence[Any]]] = ...,
    *,
    out: Optional[Union[str, PathLike[str]]] = ...,
    force: bool = ...,
    progress: Union[bool, Callable[[int, int], Any]] = ...,
    n: int = ...,
    d: int = ...,
    batch: int = ...,
    model: str = ...,
    geometry: str = ...,
    mask: str = ...,
    beta: Union[float, Sequence[float]] = ...,
    beta_rule: str = ...,
    qkv: Union[str, Sequence[np.ndarray]] = ...,
    heads: int = ...,
    head_combine: str = ...,
    weight_scale: float = ...,
    mlp: str = ...,
    activation: str = ...,
    noise: float = ...,
    noise_kind: str = ...,
    alibi: float = ...,
    layer: str = ...,
    integrator: str = ...,
    t_end: float = ...,
    steps: int = ...,
    init: str = ...,
    seed: int = ...,
    backend: str = ...,
    save_every: int = ...,
    metrics_every: int = ...,
    checkpoint_every: int = ...,
) -> RunResult: ...
def attend(
    keys: Union[np.ndarray, Sequence[Any]],
    queries: Optional[Union[np.ndarray, Sequence[Any]]] = ...,
    *,
    beta: float = ...,
    beta_rule: str = ...,
    model: str = ...,
    qkv: Union[str, Sequence[np.ndarray]] = ...,
    backend: str = ...,
    stats: bool = ...,
    top_k: int = ...,
) -> AttendResult: ...
def cfm(
    *,
    context: Optional[Union[str, np.ndarray, Sequence[Any]]] = ...,
    queries: Optional[Union[str, np.ndarray, Sequence[Any]]] = ...,
    out: Optional[Union[str, PathLike[str]]] = ...,
    force: bool = ...,
    progress: Union[bool, Callable[[int, int], Any]] = ...,
    m: int = ...,
    n: int = ...,
    d: int = ...,
    context_mode: str = ...,
    seeds: int = ...,
    seed: int = ...,
    beta: float = ...,
    beta_rule: str = ...,
    model: str = ...,
    geometry: str = ...,
    qkv: Union[str, Sequence[np.ndarray]] = ...,
    integrator: str = ...,
    t_end: float = ...,
    steps: int = ...,
    save_every: int = ...,
    infinite: bool = ...,
    tol: float = ...,
    backend: str = ...,
) -> CfmResult: ...
def experiment(
    name: str,
    *,
    quick: bool = ...,
    seed: int = ...,
    backend: str = ...,
    out: Optional[Union[str, PathLike[str]]] = ...,
    force: bool = ...,
    progress: bool = ...,
    mutate: Optional[str] = ...,
    **params: Any,
) -> Dict[str, Any]: ...
def view(
    result_or_dir: Union[RunResult, CfmResult, str, PathLike],
    *,
    out: Optional[Union[str, PathLike]] = ...,
    max_tokens: int = ...,
    display: bool = ...,
    height: int = ...,
) -> Any: ...
def adapters() -> List[str]: ...
def sweep(
    grid: Sequence[Dict[str, Any]],
    *,
    client: Any = ...,
    out: Optional[Union[str, PathLike[str]]] = ...,
    **common: Any,
) -> List[Dict[str, Any]]: ...
