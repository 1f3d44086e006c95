"""The credit scorecard: train, explain, apply and serialise (pure Python, Django-free).

Two algorithms, both deterministic for a given ``seed``; ``train_scorecard(algorithm="auto")`` runs
the same stratified 5-fold cross-validation for both and keeps the one with the higher mean AUC:

``random_forest``
    A random forest (300 trees, leaves of at least 5 rows, 10 % of the columns tried per split) on
    one-hot categories, the numeric fields and the derived monthly repayment (credit amount /
    duration), Platt-calibrated on its out-of-bag predictions. Reason codes come from the forest
    itself: each tree's path is decomposed into the change of default probability at every split
    (Saabas attribution, exact: the contributions plus the forest average equal the prediction),
    summed per field, then converted to score points.
``woe_logistic``
    The classic points scorecard: every field is binned (categories as they are, numbers by a
    4-leaf decision tree), bins are replaced by their weight of evidence, a logistic regression
    (L2, C=0.1) weighs them. Reason codes are the points lost against the field's best bin.

Missing fields (None) are imputed as *average risk*, never as the safest case: the forest uses the
median of a number and, for a category, the common category whose training bad rate is closest to the
overall bad rate; the WOE scorecard uses WOE 0, the population average. Imputed fields are listed in
``missing_fields`` and never cited as reasons. Protected attributes (see :mod:`fields`) are ignored.

Points scale: score = offset + factor·ln(good:bad odds), factor = PDO/ln 2, offset chosen so that
``BASE_POINTS`` (600) means odds of ``BASE_ODDS`` (50:1); every ``PDO`` (20) points doubles the odds.
Risk level from PD cut-offs ``(c1, c2)``: 1 low if PD < c1, 2 medium if c1 ≤ PD < c2, 3 high otherwise.

Modules (import from the package, ``from apps.finance import scorecard``):

- :mod:`.errors` the exceptions; :mod:`.scale` the points scale, risk levels and cut-offs;
- :mod:`.inputs` applicant dicts and training frames to validated model inputs;
- :mod:`.forest` the ``random_forest`` algorithm; :mod:`.binning` the ``woe_logistic`` one (WOE bins);
- :mod:`.training` cross-validation, algorithm selection, the fit and its report (``train_scorecard``);
- :mod:`.scoring` :class:`TrainedScorecard` (``predict``, reason codes);
- :mod:`.artifact` ``dump``/``load`` of the stored bytes, and why four classes keep this package as
  their ``__module__``.
"""
from __future__ import annotations

from .artifact import FORMAT_VERSION, dump, load
from .binning import _WoeModel as _WoeModel  # stored artifacts name apps.finance.scorecard._WoeModel
from .errors import ModelFormatError, ScorecardError, ScorecardInputError, TrainingDataError
from .forest import _ForestModel as _ForestModel  # stored artifacts name apps.finance.scorecard._ForestModel
from .scale import RISK_LABELS, ScoreScale
from .scoring import TrainedScorecard
from .training import ALGORITHMS, cross_validate, train_scorecard

__all__ = [
    "ALGORITHMS",
    "FORMAT_VERSION",
    "RISK_LABELS",
    "ModelFormatError",
    "ScoreScale",
    "ScorecardError",
    "ScorecardInputError",
    "TrainedScorecard",
    "TrainingDataError",
    "cross_validate",
    "dump",
    "load",
    "train_scorecard",
]
