"""Bradley-Terry ratings from pairwise battles, arena-hard's way of ranking models from verdicts.

FastChat's pairwise tables give each model a win rate against the field it happened to meet;
Bradley-Terry fits one strength per model so that P(i beats j) = 1 / (1 + 10^((R_j - R_i) / 400)),
which compares models that never met directly and weighs a win by whom it was against. As in
arena-hard-auto (`compute_mle_elo`, `get_bootstrap_result`): the maximum-likelihood fit, a tie
counting half a win for each side, ratings on the Elo scale (base 10, 400 points per decade of
odds) anchored so the baseline model is 1000 (with no baseline, so the mean is 1000), and a
percentile interval from refitting on battles drawn with replacement (seeded, so a report is
reproducible).

One deliberate difference: when a model won (or lost) every battle against some group of models,
the likelihood has no maximum and arena-hard's unpenalised logistic regression stops wherever its
iteration cap leaves it. Here every model instead plays `prior` virtual ties against a phantom
rated at the anchor (a weak prior, as BayesElo's virtual draws), which keeps every rating finite;
at the default of 0.01 it moves ratings of models that won and lost by well under 0.1 points, and
the board says when the data alone would not have pinned its ratings down (`separated`).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from engine.scoring.summaries import DEFAULT_CONFIDENCE, ConfidenceInterval, PairMatch, percentile

__all__ = [
    "DEFAULT_PRIOR",
    "DEFAULT_ROUNDS",
    "Battle",
    "BradleyTerryBoard",
    "BradleyTerryRating",
    "battles_from_matches",
    "bradley_terry",
    "fit_strengths",
]

ANCHOR_RATING = 1000.0
ELO_SCALE = 400.0
ELO_BASE = 10.0
DEFAULT_ROUNDS = 100  # arena-hard's `--num-rounds`
DEFAULT_PRIOR = 0.01
DEFAULT_SEED = 42  # arena-hard seeds its bootstrap with 42
WINNERS = ("model_a", "model_b", "tie")
MAX_NEWTON_STEPS = 100
MAX_HALVINGS = 40
STEP_TOLERANCE = 1e-10  # in natural-log strength: 4e-8 rating points

Pair = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Battle:
    """One verdict: `winner` is "model_a", "model_b", or a tie (any verdict containing "tie")."""

    model_a: str
    model_b: str
    winner: str


@dataclass(frozen=True, slots=True)
class BradleyTerryRating:
    model: str
    rating: float
    ci: ConfidenceInterval | None  # None when there were no bootstrap rounds
    win_rate: float | None  # predicted probability of beating the baseline; None without one
    battles: int


@dataclass(frozen=True, slots=True)
class BradleyTerryBoard:
    ratings: tuple[BradleyTerryRating, ...]  # best first
    battles: int
    baseline: str | None  # the model anchored at 1000, if it played
    rounds: int
    separated: bool  # some ratings rest on the prior: a group never lost (or won) to the rest


def battles_from_matches(matches: Iterable[PairMatch]) -> list[Battle]:
    """Every game of every match as one battle, as arena-hard counts them (FastChat's win rates
    fold a match's two games into one result instead); a game without a verdict is left out."""
    verdicts = {"model_1": "model_a", "model_2": "model_b", "tie": "tie"}
    return [
        Battle(match.model_1, match.model_2, verdicts[winner])
        for match in matches
        for winner in (match.g1_winner, match.g2_winner)
        if winner in verdicts
    ]


@dataclass(frozen=True, slots=True)
class _Tally:
    """Battles summed per unordered pair of model indexes (i < j): games, and i's points."""

    models: tuple[str, ...]
    games: dict[Pair, float]
    points: dict[Pair, float]


def bradley_terry(
    battles: Iterable[Battle],
    *,
    baseline: str | None = None,
    rounds: int = DEFAULT_ROUNDS,
    seed: int = DEFAULT_SEED,
    confidence: float = DEFAULT_CONFIDENCE,
    prior: float = DEFAULT_PRIOR,
) -> BradleyTerryBoard:
    """Ratings of every model that played, best first, with bootstrap intervals over `rounds`
    resamples of the battles. A battle of a model against itself says nothing and is left out."""
    # Sorting makes the resamples independent of the order the battles came in.
    played = sorted(
        (_checked(b) for b in battles if b.model_a != b.model_b),
        key=lambda b: (b.model_a, b.model_b, b.winner),
    )
    tally = _tally(played)
    anchor = baseline if baseline in tally.models else None
    ratings = _ratings(tally, anchor, prior)
    drawn = _bootstrap(played, rounds, seed, anchor, prior)
    counts = Counter(m for b in played for m in (b.model_a, b.model_b))
    rows = [
        BradleyTerryRating(
            model,
            ratings[model],
            _interval(drawn.get(model, []), confidence) if rounds > 0 else None,
            None if anchor is None else _expected_score(ratings[model], ratings[anchor]),
            counts[model],
        )
        for model in tally.models
    ]
    rows.sort(key=lambda row: (-row.rating, row.model))
    return BradleyTerryBoard(tuple(rows), len(played), anchor, rounds, not _connected(tally))


def _checked(battle: Battle) -> Battle:
    if battle.winner not in WINNERS and "tie" not in battle.winner:
        raise ValueError(
            f"battle {battle.model_a} vs {battle.model_b}: winner {battle.winner!r} is not "
            "model_a, model_b or a tie; leave out games without a verdict"
        )
    return battle


def _tally(battles: Sequence[Battle]) -> _Tally:
    models = tuple(sorted({m for b in battles for m in (b.model_a, b.model_b)}))
    index = {model: i for i, model in enumerate(models)}
    games: dict[Pair, float] = {}
    points: dict[Pair, float] = {}
    for battle in battles:
        i, j = index[battle.model_a], index[battle.model_b]
        score = 1.0 if battle.winner == "model_a" else 0.0 if battle.winner == "model_b" else 0.5
        if i > j:
            i, j, score = j, i, 1.0 - score
        games[(i, j)] = games.get((i, j), 0.0) + 1.0
        points[(i, j)] = points.get((i, j), 0.0) + score
    return _Tally(models, games, points)


def _ratings(tally: _Tally, anchor: str | None, prior: float) -> dict[str, float]:
    """Elo-scale ratings, anchored: the baseline at 1000, or else the mean at 1000."""
    strengths = fit_strengths(len(tally.models), tally.games, tally.points, prior)
    elo = [ELO_SCALE * s / math.log(ELO_BASE) for s in strengths]
    if anchor is not None:
        shift = ANCHOR_RATING - elo[tally.models.index(anchor)]
    else:
        shift = ANCHOR_RATING - math.fsum(elo) / len(elo) if elo else 0.0
    return {model: value + shift for model, value in zip(tally.models, elo, strict=True)}


def fit_strengths(
    count: int, games: dict[Pair, float], points: dict[Pair, float], prior: float
) -> list[float]:
    """Maximum-likelihood log-strengths (natural log) by Newton's method with step halving.

    `games[(i, j)]` battles between models i < j, of which i scored `points[(i, j)]`. With
    `prior` > 0 every model also plays that many virtual ties against a phantom of strength 0,
    which makes the likelihood strictly concave; with no prior, model 0 is held at 0 (the
    likelihood only fixes differences) and the data must leave no group unbeaten.
    """
    theta = [0.0] * count
    free = list(range(count)) if prior > 0 else list(range(1, count))
    current = _log_likelihood(theta, games, points, prior)
    for _ in range(MAX_NEWTON_STEPS if free else 0):
        gradient, hessian = _derivatives(theta, games, points, prior)
        step = _solve([[-hessian[r][c] for c in free] for r in free], [gradient[i] for i in free])
        if max(abs(s) for s in step) < STEP_TOLERANCE:
            break  # Newton converges quadratically: the remaining error is below the step
        for _ in range(MAX_HALVINGS):
            trial = list(theta)
            for position, i in enumerate(free):
                trial[i] += step[position]
            value = _log_likelihood(trial, games, points, prior)
            if value >= current:
                theta, current = trial, value
                break
            step = [s / 2.0 for s in step]
        else:
            break  # no step uphill is left: as close to the maximum as floating point gets
    return theta


def _log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def _sigmoid(x: float) -> float:
    return math.exp(_log_sigmoid(x))


def _log_likelihood(
    theta: Sequence[float], games: dict[Pair, float], points: dict[Pair, float], prior: float
) -> float:
    total = math.fsum(
        points[(i, j)] * _log_sigmoid(theta[i] - theta[j])
        + (n - points[(i, j)]) * _log_sigmoid(theta[j] - theta[i])
        for (i, j), n in games.items()
    )
    if prior > 0:
        total += prior * 0.5 * math.fsum(_log_sigmoid(t) + _log_sigmoid(-t) for t in theta)
    return total


def _derivatives(
    theta: Sequence[float], games: dict[Pair, float], points: dict[Pair, float], prior: float
) -> tuple[list[float], list[list[float]]]:
    count = len(theta)
    gradient = [0.0] * count
    hessian = [[0.0] * count for _ in range(count)]
    for (i, j), n in games.items():
        p = _sigmoid(theta[i] - theta[j])
        residual = points[(i, j)] - n * p
        gradient[i] += residual
        gradient[j] -= residual
        curvature = n * p * (1.0 - p)
        hessian[i][i] -= curvature
        hessian[j][j] -= curvature
        hessian[i][j] += curvature
        hessian[j][i] += curvature
    if prior > 0:
        for i, t in enumerate(theta):
            p = _sigmoid(t)
            gradient[i] += prior * (0.5 - p)
            hessian[i][i] -= prior * p * (1.0 - p)
    return gradient, hessian


def _solve(matrix: list[list[float]], vector: list[float]) -> list[float]:
    """Solve matrix @ x = vector by Gaussian elimination with partial pivoting; a singular
    direction (a model that played nobody) gets no step."""
    size = len(vector)
    rows = [[*matrix[r], vector[r]] for r in range(size)]
    for col in range(size):
        pivot = max(range(col, size), key=lambda r: abs(rows[r][col]))
        rows[col], rows[pivot] = rows[pivot], rows[col]
        if abs(rows[col][col]) < 1e-300:
            continue
        for r in range(col + 1, size):
            factor = rows[r][col] / rows[col][col]
            for c in range(col, size + 1):
                rows[r][c] -= factor * rows[col][c]
    solution = [0.0] * size
    for r in reversed(range(size)):
        if abs(rows[r][r]) < 1e-300:
            continue
        known = math.fsum(rows[r][c] * solution[c] for c in range(r + 1, size))
        solution[r] = (rows[r][size] - known) / rows[r][r]
    return solution


def _bootstrap(
    battles: Sequence[Battle], rounds: int, seed: int, anchor: str | None, prior: float
) -> dict[str, list[float]]:
    """Each model's rating in every resample it played in (arena-hard: battles drawn with
    replacement, the anchor re-applied whenever the baseline was drawn)."""
    rng = random.Random(seed)
    drawn: dict[str, list[float]] = {}
    for _ in range(rounds if battles else 0):
        tally = _tally(rng.choices(battles, k=len(battles)))
        sample_anchor = anchor if anchor in tally.models else None
        for model, rating in _ratings(tally, sample_anchor, prior).items():
            drawn.setdefault(model, []).append(rating)
    return drawn


def _interval(ratings: list[float], confidence: float) -> ConfidenceInterval | None:
    if not ratings:
        return None
    ordered = sorted(ratings)
    tail = (1.0 - confidence) / 2.0
    return ConfidenceInterval(
        percentile(ordered, tail), percentile(ordered, 1.0 - tail), confidence
    )


def _expected_score(rating: float, baseline: float) -> float:
    return 1.0 / (1.0 + ELO_BASE ** ((baseline - rating) / ELO_SCALE))


def _connected(tally: _Tally) -> bool:
    """Whether every model scored (won or tied) against some path to every other: only then
    does the likelihood alone have a maximum (Zermelo's condition)."""
    scored: dict[int, set[int]] = {i: set() for i in range(len(tally.models))}
    for (i, j), n in tally.games.items():
        if tally.points[(i, j)] > 0:
            scored[i].add(j)
        if tally.points[(i, j)] < n:
            scored[j].add(i)
    beaten = {i: {j for j in scored if i in scored[j]} for i in scored}
    return not scored or (_reach(scored) == set(scored) and _reach(beaten) == set(scored))


def _reach(edges: dict[int, set[int]]) -> set[int]:
    seen, frontier = {0}, [0]
    while frontier:
        for nxt in edges[frontier.pop()] - seen:
            seen.add(nxt)
            frontier.append(nxt)
    return seen
