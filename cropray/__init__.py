"""cropray: train, tune and batch-score small PyTorch classifiers on spectrogram crops, on Ray."""

__version__ = "0.1.0"
