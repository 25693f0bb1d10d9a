"""Angle preservation of binarization, on random vectors (Anderson & Berg 2018, arXiv:1705.07199).

For x ~ N(0, I_d), x . sign(x) = sum |x_i| ~ d sqrt(2/pi) while |x| ~ |sign(x)| =
sqrt(d), so the angle between x and sign(x) tends to arccos(sqrt(2/pi)) =
37.07 degrees, with a spread shrinking like d^-1/2, while two independent
vectors are nearly orthogonal (90 degrees). Variants: ternary thresholds
against their closed form, Hadamard block lengths, and the rotated basis
R^T sign(R x) on vectors with a decaying spectrum.

Every transform is a binarizer of the registry (``nn.binarize``), built from
its name as training builds it: ``binarize=<name>`` picks it, and a study
sweeps the parameter it has (ternary's ``threshold_sigma``, hadamard's
``beta``); any other binarizer is measured over ``geometry.dims``. The rotated
basis uses ``ste_sign``.

Everything is Monte Carlo in float64 on seeded generators, in chunks of at
most ``geometry.chunk_elements`` floats per array, so no study ever holds
N x d values at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
import torch

from bnnctl.config.schema import GeometryConfig
from bnnctl.nn.binarize import Binarizer, OutputSet, Ternary, make_binarizer, ternarize

SIGN_THEORY_DEG = math.degrees(math.acos(math.sqrt(2 / math.pi)))  # 37.0714... (0.6470 rad)
Transform = Callable[[torch.Tensor], torch.Tensor]  # (m, d) -> (m, d)
Progress = Callable[[str, int, int], None]  # (what is done, settings done, settings in all)


def _quiet(label: str, done: int, total: int) -> None:
    """The default progress: none."""


STE_SIGN = make_binarizer("ste_sign")  # sign(x), sign(0) = +1: the rotated basis and the first layer's study


def transform(binarizer: Binarizer) -> Transform:
    """What ``binarizer`` makes of rows of N(0, 1) values: its forward map at evaluation (deterministic).

    Ternary thresholds at t sigma. In training sigma is the standard deviation
    of the tensor it is handed (a layer's weights); these vectors' sigma is
    known, 1, which is what the closed form assumes, so here the threshold is
    t itself. (A sample std would tie the angles to how samples are chunked.)
    """
    if isinstance(binarizer, Ternary):
        return lambda x: ternarize(x, binarizer.threshold_sigma)  # sigma = 1
    return lambda x: binarizer(x, False)


def theory_deg(binarizer: Binarizer) -> float:
    """The limit angle between Gaussian x and what ``binarizer`` makes of it, where there is a closed form."""
    if binarizer.output is OutputSet.BINARY:
        return SIGN_THEORY_DEG
    if isinstance(binarizer, Ternary):
        return ternary_theory_deg(binarizer.threshold_sigma)
    return float("nan")


COLUMNS = ["d", "mean_deg", "std_deg", "ci_low_deg", "ci_high_deg", "theory_deg", "random_mean_deg", "random_std_deg"]


def angles_deg(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The angle in degrees between matching rows of a and b: (m, d), (m, d) -> (m,)."""
    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))
    return torch.rad2deg(torch.acos(cos.clamp(-1.0, 1.0)))


def ternary_theory_deg(t: float) -> float:
    """The limit angle of sign(u) 1{|u| > t} for Gaussian u, t in units of sigma: cos = 2 phi(t) / sqrt(2 (1 - Phi(t)))."""
    phi = math.exp(-t * t / 2) / math.sqrt(2 * math.pi)
    tail = 0.5 * math.erfc(t / math.sqrt(2))  # 1 - Phi(t)
    return math.degrees(math.acos(min(1.0, 2 * phi / math.sqrt(2 * tail))))


def haar_rotation(d: int, generator: torch.Generator) -> torch.Tensor:
    """A random rotation from the Haar measure: QR of a Gaussian matrix, columns' signs fixed by R's diagonal."""
    q, r = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


@dataclass
class Sampled:
    """Per-sample angles of one setting: x vs its transform, and two independent x."""

    to_transform: torch.Tensor  # (n,)
    random_pair: torch.Tensor  # (n,)


def sample_angles(
    d: int,
    n: int,
    transform: Transform,
    generator: torch.Generator,
    chunk_elements: int,
    scale: torch.Tensor | None = None,
) -> Sampled:
    """n vectors x ~ N(0, I_d) (times ``scale`` per coordinate): angles to ``transform(x)`` and to an independent y."""
    rows = max(1, chunk_elements // d)
    own, pair = [], []
    for start in range(0, n, rows):
        m = min(rows, n - start)
        x = torch.randn(m, d, generator=generator, dtype=torch.float64)  # (m, d)
        y = torch.randn(m, d, generator=generator, dtype=torch.float64)
        if scale is not None:
            x, y = x * scale, y * scale
        own.append(angles_deg(x, transform(x)))
        pair.append(angles_deg(x, y))
    return Sampled(torch.cat(own), torch.cat(pair))


def describe(s: Sampled, d: int, theory: float, confidence: float) -> dict[str, float]:
    """One table row: mean, std and t-interval of the mean of x vs transform(x); mean and std of random pairs."""
    from scipy import stats

    a = s.to_transform[~s.to_transform.isnan()]  # a zero transform (ternary, all under the threshold) has no angle
    n = len(a)
    if n < 2:
        nan = float("nan")
        return {
            "d": d,
            "mean_deg": nan,
            "std_deg": nan,
            "ci_low_deg": nan,
            "ci_high_deg": nan,
            "theory_deg": theory,
            "random_mean_deg": s.random_pair.mean().item(),
            "random_std_deg": s.random_pair.std().item(),
        }
    mean, std = a.mean().item(), a.std().item()
    half = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1)) * std / math.sqrt(n)
    return {
        "d": d,
        "mean_deg": mean,
        "std_deg": std,
        "ci_low_deg": mean - half,
        "ci_high_deg": mean + half,
        "theory_deg": theory,
        "random_mean_deg": s.random_pair.mean().item(),
        "random_std_deg": s.random_pair.std().item(),
    }


@dataclass
class AnglesResult:
    table: pd.DataFrame
    variant: str  # sign | ternary | hadamard | rotation
    samples: dict[int, Sampled] = field(default_factory=dict)  # per-sample angles of geometry.show_dims (sign)
    notes: dict[str, float] = field(default_factory=dict)  # headline numbers (fitted slope, best threshold)


def _generator(cfg: GeometryConfig, salt: int) -> torch.Generator:
    return torch.Generator().manual_seed(cfg.geometry.seed * 1_000_003 + salt)


def binarizer_of(cfg: GeometryConfig, **params: float) -> Binarizer:
    """The binarizer ``binarize`` names, with ``params`` (a swept value) over its defaults."""
    return make_binarizer({"name": cfg.binarize, "params": params}, "binarize")


def std_slope(table: pd.DataFrame, min_d: int = 10) -> float:
    """The slope of log std vs log d over d >= min_d (theory: -1/2)."""
    import numpy as np

    rows = table[table["d"] >= min_d]
    if len(rows) < 2:
        return float("nan")
    return float(np.polyfit(np.log(rows["d"]), np.log(rows["std_deg"]), 1)[0])


def sign_study(cfg: GeometryConfig, progress: Progress = _quiet) -> AnglesResult:
    """x vs its binarized version per dimension in geometry.dims (sign: 37.07 deg in the limit)."""
    g = cfg.geometry
    binarizer = binarizer_of(cfg)
    theory = theory_deg(binarizer)
    rows, samples = [], {}
    for n, d in enumerate(g.dims):
        s = sample_angles(d, g.samples, transform(binarizer), _generator(cfg, d), g.chunk_elements)
        progress(f"d={d}", n + 1, len(g.dims))
        rows.append(describe(s, d, theory, g.confidence))
        if d in g.show_dims:
            samples[d] = s
    table = pd.DataFrame(rows, columns=COLUMNS)
    return AnglesResult(table, "sign", samples, {"std_slope": std_slope(table), "theory_deg": theory})


def ternary_study(cfg: GeometryConfig, progress: Progress = _quiet) -> AnglesResult:
    """A threshold sweep at d = geometry.ternary_dim; x ~ N(0, 1) so thresholds in sigma are absolute."""
    g = cfg.geometry
    rows = []
    for i, t in enumerate(g.threshold_sigma):
        binarizer = binarizer_of(cfg, threshold_sigma=t)
        s = sample_angles(g.ternary_dim, g.samples, transform(binarizer), _generator(cfg, i), g.chunk_elements)
        rows.append({"threshold_sigma": t, **describe(s, g.ternary_dim, theory_deg(binarizer), g.confidence)})
        progress(f"t={t} sigma", i + 1, len(g.threshold_sigma))
    table = pd.DataFrame(rows, columns=["threshold_sigma", *COLUMNS])
    finite = table.dropna(subset=["mean_deg"])
    best = (
        finite.loc[finite["mean_deg"].idxmin()]
        if len(finite)
        else pd.Series({"threshold_sigma": float("nan"), "mean_deg": float("nan")})
    )
    notes = {
        "best_threshold_sigma": float(best["threshold_sigma"]),
        "best_mean_deg": float(best["mean_deg"]),
        "best_theory_threshold_sigma": _theory_minimum(),
    }
    return AnglesResult(table, "ternary", notes=notes)


def _theory_minimum() -> float:
    """The threshold (in sigma) that minimises the closed-form ternary angle."""
    from scipy.optimize import minimize_scalar

    return float(minimize_scalar(ternary_theory_deg, bounds=(0.0, 3.0), method="bounded").x)


def hadamard_study(cfg: GeometryConfig, progress: Progress = _quiet) -> AnglesResult:
    """Block lengths beta at d = geometry.hadamard_dim: beta = 1 is x itself, large beta tends to sign's 37 deg."""
    g = cfg.geometry
    rows = []
    for n, beta in enumerate(g.beta):
        binarizer = binarizer_of(cfg, beta=beta)  # delta(beta) * sign(x)
        s = sample_angles(g.hadamard_dim, g.samples, transform(binarizer), _generator(cfg, beta), g.chunk_elements)
        theory = 0.0 if beta == 1 else SIGN_THEORY_DEG if beta >= g.hadamard_dim else float("nan")
        rows.append({"beta": beta, **describe(s, g.hadamard_dim, theory, g.confidence)})
        progress(f"beta={beta}", n + 1, len(g.beta))
    return AnglesResult(pd.DataFrame(rows, columns=["beta", *COLUMNS]), "hadamard")


def rotation_study(cfg: GeometryConfig, progress: Progress = _quiet) -> AnglesResult:
    """x_i ~ N(0, 1) exp(k (i - d/2)): sign(x) in the standard basis vs R^T sign(R x) in a random rotated one."""
    g = cfg.geometry
    sign = transform(STE_SIGN)
    rows = []
    for n, d in enumerate(g.rotation_dims):
        scale = torch.exp(g.rotation_k * (torch.arange(d, dtype=torch.float64) - d / 2))  # (d,)
        rotation = haar_rotation(d, _generator(cfg, 7 * d))

        def rotated(x: torch.Tensor, r: torch.Tensor = rotation) -> torch.Tensor:
            return sign(x @ r.T) @ r  # rows: R^T sign(R x)

        bases: dict[str, Transform] = {"standard": sign, "rotated": rotated}
        for basis, to_basis in bases.items():
            s = sample_angles(d, g.samples, to_basis, _generator(cfg, d), g.chunk_elements, scale=scale)
            theory = SIGN_THEORY_DEG if basis == "rotated" else float("nan")
            rows.append({"basis": basis, "k": g.rotation_k, **describe(s, d, theory, g.confidence)})
        progress(f"d={d}", n + 1, len(g.rotation_dims))
    return AnglesResult(pd.DataFrame(rows, columns=["basis", "k", *COLUMNS]), "rotation")


# A binarizer's parameter -> the study that sweeps it; a binarizer with neither is measured over geometry.dims.
SWEEPS: dict[str, Callable[[GeometryConfig, Progress], AnglesResult]] = {
    "threshold_sigma": ternary_study,  # ternary
    "beta": hadamard_study,  # hadamard
}


def run_angles(cfg: GeometryConfig, progress: Progress = _quiet) -> AnglesResult:
    """The study the config picks: geometry.rotation, else the sweep of the binarizer's parameter, else the dims."""
    if cfg.geometry.rotation:
        return rotation_study(cfg, progress)
    params = binarizer_of(cfg).params
    study = next((study for param, study in SWEEPS.items() if param in params), sign_study)
    return study(cfg, progress)
