"""An independent second crop simulator: a real-valued FFT spectrometer, built without cropray's code.

It exists to judge models on crops that neither cropray's generator nor its injector made. Nothing in
it is shared with `cropray/synth` or `cropray/inject`: numpy makes the crops, pyarrow writes them in
the archive format `cropray inspect` reads (`crop` as `arrow.fixed_shape_tensor` float32 64x64).

The physics, per crop (rows = time, columns = frequency channels; every spectrum is taken in the
frequency domain of one long FFT, of which the crop shows 64 bins):

* noise (`spectrometer.py`): each row sums K in {1, 2, 3, 4, 6, 8} spectra of real Gaussian voltage
  noise through a Hann, Blackman-Harris or rectangular window. The window makes neighbouring channels'
  powers correlated (Hann: power correlation 0.44) and each pixel is a sum of K correlated
  exponentials: another law than independent chi-square pixels.
* gains (`spectrometer.py`): a polyphase channeliser's scalloping across the crop, bandpass ripple,
  a slope, and a slow multiplicative gain drift along time; the overall level spans 6 decades.
* signals (`signals.py`): made as voltages before the FFT, either a coherent tone (its spectral
  profile is the window's transform, sinc^2 for the rectangular window, with scalloping loss that
  depends on the sub-channel offset) or narrowband noise with a Gaussian spectral profile 0.3-1.5
  channels wide; envelopes constant, pulsed, scintillating or intermittent; tracks straight (zero,
  sub-channel and up to 1 channel/row drift), chirped (slowly changing drift), curved, wandering or
  wobbling; drift is also applied within a row, across its K spectra.
* RFI (`rfi.py`), kinds cropray's generator lacks: harmonic combs, frequency-hopping bursts,
  saturated (clipped) rows, a DC-spike residue at the centre channel (SNR 4-20), and fast radar chirps sweeping several
  channels per row. Negatives carry one with probability 0.7, positives with probability 0.35.

SNR (`snr` column): the matched-filter SNR of the signal's expected excess power E[S] against the
per-pixel noise-power standard deviation sigma: sqrt(sum over pixels of (E[S]/sigma)^2). For a
constant one-channel track of per-pixel excess A over T rows this is A*sqrt(T)/sigma, the usual
"integrated along the track" SNR; for pulsed, scintillating or wide signals it counts only the
pixels that hold the signal, each by its own strength. It ignores the channel correlation and the
signal's self-noise (hence "matched-filter-ish").

Labels: 1 = a narrowband signal is present (whatever RFI is also there), 0 = noise and/or RFI.
"""
