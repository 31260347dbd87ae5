"""Tiny labelled archives and tiny model widths for the sweep tests (2 shared CPU cores)."""

import pytest

# Narrow channels keep an epoch well under a second; the architectures are the real ones.
# epoch_crops: one pass over the ~40-crop training split per epoch, not the library's 256-crop minimum.
TINY_FIXED = {"siamese": {"channels": [8, 16, 32]}, "shallow_cnn": {"channels": [8, 16, 32]},
              "deep_cnn": {"width": 8}, "epoch_crops": 32}


@pytest.fixture(scope="session")
def labels80(tmp_path_factory):
    """80 labelled crops with bright signals (SNR 30-100): the 'few' regime."""
    from cropray.synth import synth_archive

    out = tmp_path_factory.mktemp("labels80")
    synth_archive(out, 80, labeled=True, seed=5, snr_range=(30.0, 100.0))
    return out


@pytest.fixture(scope="session")
def labels24(tmp_path_factory):
    from cropray.synth import synth_archive

    out = tmp_path_factory.mktemp("labels24")
    synth_archive(out, 24, labeled=True, seed=6, positive_fraction=0.5)
    return out


@pytest.fixture(scope="session")
def labels60(tmp_path_factory):
    """60 labelled crops with bright signals: the 'few' regime, for the --archive sweeps."""
    from cropray.synth import synth_archive

    out = tmp_path_factory.mktemp("labels60")
    synth_archive(out, 60, labeled=True, seed=7, snr_range=(30.0, 100.0))
    return out


@pytest.fixture(scope="session")
def archive300(tmp_path_factory):
    """An unlabelled archive of 300 crops in 2 files (the default generator mix: half signals)."""
    from cropray.synth import synth_archive

    out = tmp_path_factory.mktemp("archive300")
    synth_archive(out, 300, files=2, seed=8)
    return out
