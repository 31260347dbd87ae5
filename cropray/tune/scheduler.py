"""ASHA that never stops the baseline trial (the regime's default configuration).

Plain ASHA compares trials after `grace` epochs. Architectures learn at different speeds: on 1,000
labels the default deep_cnn sat below the shallow CNNs after one epoch and was stopped there, although
trained to the end it cross-validated best (0.956 vs 0.937) - the sweep then bundled a worse model than
`cropray train` would have. Keeping the baseline to the end costs one trial's epochs and makes the
sweep's best never worse, in cross-validation, than the default at the same budget. Its results still
enter ASHA's rungs, so it still sets the bar for the others.

Its metric is `STOP_METRIC`, fixed here, not the sweep's objective (below).
"""

from __future__ import annotations

from ray.tune.schedulers import ASHAScheduler, TrialScheduler

# What ASHA stops trials on: the pooled ROC-AUC of the folds' inner validation splits (the figure the CV's
# own plateau stop reads, cropray.train.cv), never the held-out folds. A stop decided on the held-out
# `cv_auc` keeps the trials whose held-out folds happened to flatter them early, and that same figure
# ranks the trials at the end: the survivors' CV is biased upward. The ranking stays the objective.
STOP_METRIC = "inner_val_auc"
STOP_MODE = "max"


class BaselineASHA(ASHAScheduler):
    """ASHAScheduler whose STOP decisions skip the trial whose config equals `baseline` (if any)."""

    def __init__(self, baseline: dict | None = None, **asha_kwargs):
        super().__init__(**asha_kwargs)
        self._baseline = dict(baseline) if baseline else None

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        action = super().on_trial_result(tune_controller, trial, result)  # records the rung either way
        if action == TrialScheduler.STOP and self._baseline is not None and trial.config == self._baseline:
            return TrialScheduler.CONTINUE
        return action
