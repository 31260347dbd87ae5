"""BaselineASHA: ASHA's decisions, except that the default configuration is never stopped early."""

from ray.tune.experiment import Trial

from cropray.tune.scheduler import BaselineASHA


def _decisions(baseline):
    s = BaselineASHA(baseline, time_attr="training_iteration", max_t=4, grace_period=1, reduction_factor=3,
                     stop_last_trials=False)
    s.set_search_properties("cv_auc", "max")
    configs = [{"arch": "a"}, {"arch": "b"}, {"arch": "deep_cnn", "lr": 1e-3}, {"arch": "c"}]
    trials = [Trial("fn", config=c, stub=True) for c in configs]
    for t in trials:
        s.on_trial_add(None, t)
    # Rung 1: the third and fourth trial are far below the first two.
    return [s.on_trial_result(None, t, {"training_iteration": 1, "cv_auc": v})
            for t, v in zip(trials, [0.9, 0.95, 0.5, 0.4])]


def test_baseline_survives_the_rung_others_do_not():
    assert _decisions({"arch": "deep_cnn", "lr": 1e-3}) == ["CONTINUE", "CONTINUE", "CONTINUE", "STOP"]
    assert _decisions(None) == ["CONTINUE", "CONTINUE", "STOP", "STOP"]  # plain ASHA


def test_asha_stops_on_the_inner_validation_figure_not_the_held_out_one():
    from cropray.tune.scheduler import STOP_METRIC, STOP_MODE

    s = BaselineASHA(None, time_attr="training_iteration", metric=STOP_METRIC, mode=STOP_MODE, max_t=4,
                     grace_period=1, reduction_factor=3, stop_last_trials=False)
    trials = [Trial("fn", config={"arch": a}, stub=True) for a in "abcd"]
    for t in trials:
        s.on_trial_add(None, t)
    # the held-out cv_auc says the opposite of the inner validation: only the inner figure may decide
    rows = [(0.90, 0.50), (0.95, 0.55), (0.50, 0.99), (0.40, 0.98)]  # (inner_val_auc, cv_auc)
    got = [s.on_trial_result(None, t, {"training_iteration": 1, STOP_METRIC: v, "cv_auc": c})
           for t, (v, c) in zip(trials, rows)]
    assert STOP_METRIC == "inner_val_auc" and got == ["CONTINUE", "CONTINUE", "STOP", "STOP"]
