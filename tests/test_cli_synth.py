"""`cropray synth`: usage errors exit 2 naming the flag; its archive reads with plain pandas/pyarrow."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cropray.cli import main


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--n", "0"], "--n"),
        (["--n", "-5"], "--n"),
        (["--n", "ten"], "--n"),
        ([], "--n"),  # required
        (["--n", "3", "--files", "4"], "--files"),
        (["--n", "3", "--files", "0"], "--files"),
        (["--n", "3", "--positive-fraction", "1.5"], "--positive-fraction"),
        (["--n", "3", "--positive-fraction", "-0.1"], "--positive-fraction"),
        (["--n", "3", "--snr-range", "10"], "--snr-range"),
        (["--n", "3", "--snr-range", "5,x"], "--snr-range"),
        (["--n", "3", "--snr-range", "50,10"], "--snr-range"),
        (["--n", "3", "--snr-range", "0,10"], "--snr-range"),
        (["--n", "3", "--dtype", "int32"], "--dtype"),
        (["--n", "3", "--seed", "-1"], "--seed"),
    ],
)
def test_usage_errors_exit_2_naming_the_flag(tmp_path, capsys, argv, flag):
    with pytest.raises(SystemExit) as e:
        main(["synth", str(tmp_path / "out"), *argv])
    assert e.value.code == 2
    assert flag in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as e:
        main(["synth", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "example:" in out and "cropray synth" in out and "--snr-range" in out


def test_non_empty_out_needs_overwrite(tmp_path, capsys):
    (tmp_path / "x.txt").write_text("something")
    assert main(["synth", str(tmp_path), "--n", "5"]) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and str(tmp_path) in err and "Traceback" not in err
    assert main(["synth", str(tmp_path), "--n", "5", "--overwrite"]) == 0


def test_labeled_archive_reads_without_cropray(tmp_path, capsys):
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    out = tmp_path / "x"
    assert main(["synth", str(out), "--n", "2000", "--files", "4", "--labeled", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["rows"] == 2000 and s["files"] == 4 and 800 < s["positives"] < 1200 and s["crops_per_s"] > 0
    assert len(list(out.glob("*.parquet"))) == 4
    df = pd.read_parquet(out)
    assert len(df) == 2000 and df["crop_id"].is_unique
    assert {"crop_id", "crop", "label", "snr", "kind", "source", "t_offset_s", "f_offset_hz"} <= set(df.columns)
    assert int(df["label"].sum()) == s["positives"]
    assert df.loc[df["label"] == 0, "snr"].isna().all()
    t = pq.read_table(out)
    assert t.num_rows == 2000 and t.schema.field("crop").type.extension_name == "arrow.fixed_shape_tensor"
    crops = t.column("crop").combine_chunks().to_numpy_ndarray()
    assert crops.shape == (2000, 64, 64) and np.isfinite(crops).all()


def test_console_entry_human_summary(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "cropray", "synth", str(tmp_path / "u"), "--n", "50", "--dtype", "uint8"],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stderr
    for word in ("rows", "50", "file(s)", "MB on disk", "crops/s", "uint8"):
        assert word in r.stdout
