"""ScoreBatch's optional suggest columns, as plain Python on real frames: off by default; when on,
the track statistic equals the dedoppler baseline and the features are the model's pooled trunk
projected by the fixed matrix."""

from __future__ import annotations

from functools import partial

import numpy as np
import pyarrow as pa
import torch

from cropray.archive import resolve_archive
from cropray.bundle import load_bundle
from cropray.models import build_model
from cropray.scoring.frames import frame_schema, read_unit
from cropray.scoring.plan import plan_archive
from cropray.scoring.scorer import ScoreBatch
from cropray.suggest.features import FEAT, TRACK, projection
from cropray.suggest.job import feature_columns


def _frames(archive):
    files = resolve_archive(str(archive))
    plan = plan_archive(files, model_shape=(64, 64))
    ((g, spec),) = plan.specs.items()
    schema = frame_schema(plan.crop_types[g], plan.id_type, plan.keep_fields)
    parts = [t for u in plan.units if u.group == g for t in read_unit(u, files.filesystem, schema, 64)]
    return pa.concat_tables(parts).slice(0, 40), spec


def test_extra_columns_off_by_default_and_exact_when_on(suggest_data):
    archive, bundle, _ = suggest_data
    table, spec = _frames(archive)
    plain = ScoreBatch(str(bundle), spec, precision="fp32", threads=1)(table)
    assert FEAT not in plain.column_names and TRACK not in plain.column_names
    sb = ScoreBatch(str(bundle), spec, precision="fp32", threads=1, extra_columns=partial(feature_columns, dim=8))
    out = sb(table)
    # the scores are the fast path's, unchanged by the extra columns
    np.testing.assert_array_equal(out.column("score").to_numpy(), plain.column("score").to_numpy())
    x = np.stack([np.asarray(r, np.float32).reshape(1, 64, 64) for r in table.column("crop").to_pylist()])
    with torch.inference_mode():
        track = build_model("dedoppler").eval()(torch.from_numpy(x)).numpy()
        m = load_bundle(bundle).model.eval()
        h = m.pool(m.features(m.preprocess(torch.from_numpy(x)))).flatten(1).numpy()  # (40, 128)
    np.testing.assert_allclose(out.column(TRACK).to_numpy(), track, rtol=1e-5, atol=1e-5)
    feat = out.column(FEAT).combine_chunks().flatten().to_numpy().reshape(40, 8)
    np.testing.assert_allclose(feat, h @ projection(h.shape[1], 8), rtol=1e-4, atol=1e-4)
    assert projection(128, 8).tobytes() == projection(128, 8).tobytes()  # same in every actor


def test_every_registered_model_gives_features_and_track():
    from cropray.models import list_models
    from cropray.suggest.features import SuggestFeatures
    from cropray.synth import generate

    x = generate(6, seed=2).crops[:, None]
    for name in list_models():
        m = build_model(name)
        if name == "siamese":
            with torch.no_grad():
                m.eval()
                m.set_gallery(m.embed(torch.from_numpy(x)), torch.tensor([1, 0] * 3))
        f, t = SuggestFeatures(m, 5)(x)
        assert f.shape == (6, 5) and t.shape == (6,) and np.isfinite(f).all() and np.isfinite(t).all(), name
        assert np.ptp(f, axis=0).max() > 0, name  # crops differ, so do their features
