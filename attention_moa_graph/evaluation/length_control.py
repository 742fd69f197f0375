"""AlpacaEval 2.0's length-controlled win rate, from the user's `df_gamed.csv`.

The length-controlled (LC) win rate asks what the weighted win rate would be
if the model's outputs were as long as the baseline's. AlpacaEval fits a
logistic model of the judge's soft preference on three features,

    tanh(length difference / its standard deviation),
    the instruction's difficulty,
    1 for the model's rows (0 for the "gamed" baselines),

without an intercept, then predicts every instruction with the length term set
to zero and reports the mean prediction. The fit is pulled towards the
annotations of two deliberately verbose and concise versions of the baseline
(`df_gamed.csv`, which also carries each instruction's difficulty), weighted
by 0.2 / 2 each. AlpacaEval only distributes that file on the Hugging Face hub,
so the user passes its path; without it LC is reported as unavailable.

The fit follows AlpacaEval's `length_controlled_v1` exactly: soft labels as two
weighted copies of each row, L1-penalised logistic regression (liblinear, no
intercept, seed 123), the penalty chosen by 5-fold cross-validation over the
rows (both copies in the same fold) with the weighted continuous log-loss.
scikit-learn does the fitting (the `eval` extra installs it).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from typing_extensions import TypedDict

from attention_moa_graph.evaluation.datafiles import BenchmarkDataError

GAMED_COLUMNS = (
    "index",
    "preference",
    "std_delta_len",
    "instruction_difficulty",
    "not_gamed_baseline",
)
"""The `df_gamed.csv` columns the fit reads (the file has a `model` column too)."""
REGULARISATION = 0.2
"""Weight of the gamed baselines' rows, shared by the two of them."""
FOLDS = 5
SEED = 123
EVAL_SET_SIZE = 805


class LengthControlled(TypedDict):
    """The two LC columns of the leaderboard, and a note on how they were made."""

    length_controlled_winrate: float
    lc_standard_error: float
    length_controlled_note: str


class GamedBaselines(TypedDict):
    """The rows of `df_gamed.csv`, column by column."""

    preference: list[float]
    std_delta_len: list[float]
    instruction_difficulty: list[float]
    difficulty_by_index: dict[int, float]


def load_gamed(path: Path) -> GamedBaselines:
    """Read `df_gamed.csv` (AlpacaEval's hub file), checking its columns."""
    if not path.is_file():
        raise BenchmarkDataError(
            f"{path} not found. df_gamed.csv comes from the Hugging Face dataset "
            "tatsu-lab/alpaca_eval (file df_gamed.csv); download it and pass its path."
        )
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        missing = [c for c in GAMED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise BenchmarkDataError(
                f"{path} lacks the columns {', '.join(missing)}: is it AlpacaEval's "
                "df_gamed.csv?"
            )
        rows = list(reader)
    if not rows:
        raise BenchmarkDataError(f"{path} has no rows.")
    gamed = GamedBaselines(
        preference=[],
        std_delta_len=[],
        instruction_difficulty=[],
        difficulty_by_index={},
    )
    for number, row in enumerate(rows, start=2):
        try:
            difficulty = float(row["instruction_difficulty"])
            gamed["preference"].append(float(row["preference"]))
            gamed["std_delta_len"].append(float(row["std_delta_len"]))
            gamed["instruction_difficulty"].append(difficulty)
            index = int(float(row["index"]))
        except ValueError as exc:
            raise BenchmarkDataError(f"{path} line {number}: {exc}") from None
        if row["not_gamed_baseline"].strip().lower() not in ("false", "0", "0.0"):
            raise BenchmarkDataError(
                f"{path} line {number}: not_gamed_baseline should be False for "
                "every row of the gamed baselines."
            )
        if not 0.0 <= gamed["preference"][-1] <= 1.0:
            raise BenchmarkDataError(
                f"{path} line {number}: preference {row['preference']} is outside "
                "[0, 1] (df_gamed.csv holds P(gamed output wins))."
            )
        gamed["difficulty_by_index"].setdefault(index, difficulty)
    return gamed


def _features(
    length_term: Sequence[float], difficulty: Sequence[float], model_rows: bool
) -> list[list[float]]:
    # Column order of AlpacaEval's formula; no intercept column.
    flag = 1.0 if model_rows else 0.0
    return [
        [math.tanh(x), d, flag] for x, d in zip(length_term, difficulty, strict=True)
    ]


def _weighted_log_loss(
    y_true: Any, y_pred: Any, true_prob: Any, true_sample_weight: Any
) -> float:
    import numpy as np

    # Both copies of a row carry its soft label p as the probability of "1"
    # (the y=0 copy holds 1-p of class 0), so the loss is the continuous one.
    target = np.where(y_true == 1, true_prob, 1 - true_prob)
    clipped = np.clip(y_pred, 1e-15, 1 - 1e-15)
    losses = target * np.log(clipped) + (1 - target) * np.log(1 - clipped)
    return float(-np.mean(losses * true_sample_weight))


def _l1_penalty() -> dict[str, Any]:
    """The L1 penalty in the scikit-learn at hand (1.8 renamed the option)."""
    import inspect

    from sklearn.linear_model import LogisticRegressionCV

    parameters = inspect.signature(LogisticRegressionCV).parameters
    if "use_legacy_attributes" in parameters:
        return {"l1_ratios": (1.0,), "use_legacy_attributes": False}
    return {"penalty": "l1"}


def _fit_predict(
    features: list[list[float]],
    labels: list[float],
    weights: list[float],
    test: list[list[float]],
) -> list[float]:
    """Soft-label weighted L1 logistic regression, penalty chosen by CV."""
    try:
        import numpy as np
        import sklearn
        from sklearn.linear_model import LogisticRegressionCV
        from sklearn.metrics import make_scorer
        from sklearn.model_selection import GroupKFold
    except ImportError:
        raise BenchmarkDataError(
            "the length-controlled win rate needs scikit-learn: "
            "pip install 'attention-moa-graph[eval]'."
        ) from None
    x = np.asarray(features, dtype=float)
    p = np.asarray(labels, dtype=float)
    w = np.asarray(weights, dtype=float)
    # Each row twice: as a "1" weighted p and as a "0" weighted 1 - p.
    x2 = np.concatenate([x, x])
    y2 = np.concatenate([np.ones(len(p), dtype=int), np.zeros(len(p), dtype=int)])
    prob2 = np.concatenate([p, 1 - p])
    w2 = np.concatenate([w, w])
    groups = np.concatenate([np.arange(len(p)), np.arange(len(p))])
    # Routing carries the soft labels and weights to the CV scorer; enabled
    # only around this fit, so the user's own scikit-learn settings stand.
    with sklearn.config_context(enable_metadata_routing=True):
        scorer = make_scorer(
            _weighted_log_loss,
            response_method="predict_proba",
            greater_is_better=False,
        ).set_score_request(true_prob=True, true_sample_weight=True)
        model = LogisticRegressionCV(
            cv=GroupKFold(n_splits=FOLDS),
            scoring=scorer,
            solver="liblinear",
            fit_intercept=False,
            random_state=SEED,
            **_l1_penalty(),
        )
        model.set_fit_request(sample_weight=True)
        model.fit(
            x2,
            y2,
            sample_weight=prob2 * w2,
            groups=groups,
            true_prob=prob2,
            true_sample_weight=w2,
        )
        predicted = model.predict_proba(np.asarray(test, dtype=float))[:, 1]
    return [float(v) for v in predicted]


def length_controlled_winrate(
    rows: Sequence[Mapping[str, Any]], gamed: GamedBaselines
) -> LengthControlled:
    """LC win rate and its standard error for one model's annotations.

    Rows are in eval-set order (row i is instruction i), as AlpacaEval's own
    annotation files are: row i takes instruction i's difficulty.
    """
    if not rows:
        raise BenchmarkDataError("no annotations to compute a length-controlled rate.")
    generators = {row.get("generator_2") for row in rows}
    if len(generators) > 1:
        raise BenchmarkDataError(
            f"the annotations mix several models ({sorted(map(str, generators))}); "
            "the length-controlled win rate is per model."
        )
    note = "fitted with df_gamed.csv (AlpacaEval length_controlled_v1)"
    if len(rows) != EVAL_SET_SIZE:
        note += (
            f"; {len(rows)} of {EVAL_SET_SIZE} instructions: not leaderboard-comparable"
        )
    if generators == {rows[0].get("generator_1")}:
        # The baseline against itself: 50 by construction.
        return LengthControlled(
            length_controlled_winrate=50.0,
            lc_standard_error=0.0,
            length_controlled_note=note,
        )
    try:
        difficulty = [gamed["difficulty_by_index"][i] for i in range(len(rows))]
    except KeyError as exc:
        raise BenchmarkDataError(
            f"df_gamed.csv has no difficulty for instruction {exc.args[0]}."
        ) from None
    deltas = [len(str(r["output_1"])) - len(str(r["output_2"])) for r in rows]
    spread = _stdev(deltas)
    if not spread:
        raise BenchmarkDataError(
            "every output differs from the baseline's by the same length; "
            "the length term cannot be fitted."
        )
    # Rows without a usable preference are left out of the fit, not the mean.
    labelled = [
        (i, label)
        for i, r in enumerate(rows)
        if (label := _soft_label(r.get("preference"))) is not None
    ]
    model_x = _features(
        [deltas[i] / spread for i, _ in labelled],
        [difficulty[i] for i, _ in labelled],
        True,
    )
    gamed_x = _features(gamed["std_delta_len"], gamed["instruction_difficulty"], False)
    weight = REGULARISATION / 2
    predicted = _fit_predict(
        gamed_x + model_x,
        gamed["preference"] + [label for _, label in labelled],
        [weight] * len(gamed_x) + [1.0] * len(model_x),
        _features([0.0] * len(rows), difficulty, True),
    )
    mean = math.fsum(predicted) / len(predicted)
    return LengthControlled(
        length_controlled_winrate=100 * mean,
        lc_standard_error=100 * _stdev(predicted) / math.sqrt(len(predicted)),
        length_controlled_note=note,
    )


def _soft_label(preference: Any) -> float | None:
    """AlpacaEval's preference in [1, 2] as P(model wins); 0 counts as a draw."""
    if preference is None:
        return None
    value = float(preference)
    if math.isnan(value):
        return None
    return (1.5 if value == 0.0 else value) - 1


def _stdev(values: Sequence[float]) -> float:
    # Sample standard deviation, as pandas computes it.
    if len(values) < 2:
        return 0.0
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))
