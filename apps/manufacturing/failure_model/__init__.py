"""Failure prediction: remaining-useful-life regressor, calibrated failure-within-horizon classifier,
IsolationForest anomaly detector, model-based drivers, serialisation and grouped cross-validation.

* RUL regressor: HistGradientBoostingRegressor on the features of :mod:`apps.manufacturing.features`, target
  min(RUL, ``rul_cap``) (125 cycles by default).
* Failure classifier: HistGradientBoostingClassifier for "RUL ≤ horizon"; its scores are calibrated
  by isotonic regression fitted on out-of-fold scores (3-fold GroupKFold by machine), so the
  probability reflects machines the model has not seen.
* Anomaly detector: IsolationForest on the deviation/variability features of healthy steps (the
  first half of each training machine's life); a step is anomalous above the 99.5th percentile
  of healthy scores. :func:`train_anomaly_model` trains it alone, without labels.
* Drivers: for each sensor, the sensor's drift since early life is removed (the
  counterfactual series keeps its noise, see :func:`features.detrended`), its features and the
  health indicator are recomputed and the drop in the classifier's log-odds and calibrated
  probability is measured. The sensors whose healthy version lowers the risk most are the drivers.

Only load models this platform produced: :func:`load` unpickles.

Modules (import from the package, ``from apps.manufacturing import failure_model as fm``):

- :mod:`.errors` the exceptions; :mod:`.series` input series and their feature matrix;
- :mod:`.model` :class:`FailureModel` and its predictions; :mod:`.drivers` the driver explanations;
- :mod:`.anomaly` anomaly-only results and the self-fitted fallback;
- :mod:`.training` ``train_failure_model`` and ``train_anomaly_model``;
- :mod:`.evaluation` ``nasa_score`` and ``cross_validate``;
- :mod:`.artifact` ``dump``/``read_header``/``load`` of the model's own (legacy stored) bytes, and why
  :class:`FailureModel` keeps this package as its ``__module__``.
"""
from __future__ import annotations

from .artifact import MAGIC, dump, load, read_header
from .drivers import driver_texts
from .errors import ModelError, ModelFormatError, SensorMismatchError
from .evaluation import cross_validate, nasa_score
from .model import FORMAT_VERSION, HISTORY_STEPS
from .model import FailureModel as FailureModel  # stored artifacts name ...failure_model.FailureModel
from .series import prepare_series
from .training import RUL_CAP, train_anomaly_model, train_failure_model

__all__ = [
    "FORMAT_VERSION",
    "HISTORY_STEPS",
    "MAGIC",
    "RUL_CAP",
    "FailureModel",
    "ModelError",
    "ModelFormatError",
    "SensorMismatchError",
    "cross_validate",
    "driver_texts",
    "dump",
    "load",
    "nasa_score",
    "prepare_series",
    "read_header",
    "train_anomaly_model",
    "train_failure_model",
]
