"""The speech front-end, defined once: log-mel filterbank features with 4x frame stacking.

This file is the specification that the no_std Rust front-end in `edgetrim-models`
(`models/src/audio/`) reproduces frame by frame for streaming; the parity test compares the
two on a fixture written by `python3 -m rnnt.features --fixture`. Change a constant here and
the Rust side, the fixture and every exported model must change with it (the export writes
these constants into the encoder's ONNX metadata as `edgetrim.asr.*`).

Definition (all samples are 16 kHz mono int16, scaled by 1/32768):
- frame i covers samples [i*HOP, i*HOP + FRAME_LEN); no centering, no padding: a frame is
  emitted only once all its samples exist, which is what a streaming device can do;
- periodic Hann window of FRAME_LEN, zero-padded to N_FFT, power spectrum |X_k|^2, k=0..N_FFT/2;
- N_MELS triangular filters on the HTK mel scale between F_MIN and F_MAX, evaluated at the
  exact bin frequencies k*SAMPLE_RATE/N_FFT (no rounding to bins, no area normalisation);
- natural log of (filter energy + LOG_FLOOR);
- STACK consecutive frames concatenated (frame-major) into one vector, stride STACK:
  stacked[j] = logmel[STACK*j : STACK*j + STACK].reshape(-1). 40 ms per stacked frame.
Per-bin mean/variance normalisation is folded into the encoder graph by the export, so the
front-end carries no data-dependent statistics.
"""

import numpy as np

SAMPLE_RATE = 16000
FRAME_LEN = 400  # 25 ms
HOP = 160  # 10 ms
N_FFT = 512
N_MELS = 40
F_MIN = 20.0
F_MAX = 7600.0
LOG_FLOOR = 1e-6
STACK = 4
FEATURE_DIM = N_MELS * STACK


def hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank():
    """[N_MELS, N_FFT/2+1] triangular filters (float64)."""
    bins = np.arange(N_FFT // 2 + 1, dtype=np.float64) * SAMPLE_RATE / N_FFT
    edges = mel_to_hz(np.linspace(hz_to_mel(F_MIN), hz_to_mel(F_MAX), N_MELS + 2))
    fb = np.zeros((N_MELS, bins.size), dtype=np.float64)
    for m in range(N_MELS):
        lo, centre, hi = edges[m], edges[m + 1], edges[m + 2]
        rising = (bins - lo) / (centre - lo)
        falling = (hi - bins) / (hi - centre)
        fb[m] = np.maximum(0.0, np.minimum(rising, falling))
    return fb


def hann_window():
    """Periodic Hann window of FRAME_LEN (float64)."""
    n = np.arange(FRAME_LEN, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / FRAME_LEN)


_FB = mel_filterbank()
_WINDOW = hann_window()


def samples_to_float(pcm_i16):
    return np.asarray(pcm_i16, dtype=np.float64) / 32768.0


def logmel(samples):
    """float samples [N] -> log-mel [frames, N_MELS] float32, frames = 1 + (N - FRAME_LEN) // HOP."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.size < FRAME_LEN:
        return np.zeros((0, N_MELS), dtype=np.float32)
    frames = 1 + (samples.size - FRAME_LEN) // HOP
    idx = np.arange(FRAME_LEN)[None, :] + HOP * np.arange(frames)[:, None]
    spectrum = np.fft.rfft(samples[idx] * _WINDOW, n=N_FFT, axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    return np.log(power @ _FB.T + LOG_FLOOR).astype(np.float32)


def stack(feats):
    """log-mel [frames, N_MELS] -> stacked [frames // STACK, FEATURE_DIM] float32."""
    usable = (feats.shape[0] // STACK) * STACK
    return feats[:usable].reshape(-1, FEATURE_DIM).astype(np.float32)


def features(pcm_i16):
    """int16 PCM -> stacked log-mel features [T, FEATURE_DIM] float32 (the encoder's input)."""
    return stack(logmel(samples_to_float(pcm_i16)))


def metadata():
    """The constants, as the export writes them into ONNX metadata (`edgetrim.asr.<key>`)."""
    return {
        "sample_rate": SAMPLE_RATE,
        "frame_len": FRAME_LEN,
        "hop": HOP,
        "n_fft": N_FFT,
        "n_mels": N_MELS,
        "f_min": F_MIN,
        "f_max": F_MAX,
        "log_floor": LOG_FLOOR,
        "stack": STACK,
    }


def _espeak(voice, text):
    """16 kHz float samples of `text` spoken by espeak-ng (22,050 Hz, band-limited resample)."""
    import io
    import subprocess
    import wave

    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", "160", "--stdout", text], check=True, capture_output=True
    ).stdout
    # espeak-ng streams: its header sizes are placeholders, so take the data to the end.
    with wave.open(io.BytesIO(wav)) as w:
        rate = w.getframerate()
    x = np.frombuffer(wav[wav.index(b"data") + 8 :], dtype="<i2").astype(np.float64) / 32768.0
    n_out = int(round(x.size * SAMPLE_RATE / rate))
    spectrum = np.fft.rfft(x)[: n_out // 2 + 1]
    return np.fft.irfft(spectrum, n=n_out) * n_out / x.size


def write_fixture(out_dir):
    """The front-end parity fixture: int16 PCM (`pcm.i16`) and its stacked features
    (`features.f32`, [T, FEATURE_DIM]), both raw little-endian, plus `fixture.json`.

    The signal runs through what a device meets: digital silence (the log floor), clean speech,
    louder speech in coloured noise (high-passed brown, 15 dB SNR) that clips, and a full-scale
    square wave.
    """
    import json
    import subprocess
    from pathlib import Path

    rng = np.random.default_rng(0)
    clean = 0.5 * _espeak("en-us", "pothole left lane")
    speech = _espeak("en-gb-scotland+f3", "severity three")
    pink = np.cumsum(rng.standard_normal(speech.size + 4096)) * 0.02
    pink = pink[4096:] - np.convolve(pink, np.ones(64) / 64, mode="same")[4096:]
    pink *= np.sqrt(np.mean(speech**2) / np.mean(pink**2) / 10**1.5)
    noisy = (speech + pink) * (1.3 / np.abs(speech + pink).max())
    square = np.where(np.arange(1600) // 20 % 2 == 0, 1.0, -1.0)
    signal = np.concatenate([np.zeros(3200), clean, noisy, square])
    pcm = np.clip(np.round(signal * 32768.0), -32768, 32767).astype("<i2")
    feats = features(pcm).astype("<f4")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pcm.i16").write_bytes(pcm.tobytes())
    (out / "features.f32").write_bytes(feats.tobytes())
    version = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout
    meta = {
        "samples": int(pcm.size),
        "vectors": int(feats.shape[0]),
        "feature_dim": FEATURE_DIM,
        "made_by": "python3 -m rnnt.features --fixture (models/train)",
        "espeak": version.split("  Data at")[0].strip(),
        **metadata(),
    }
    (out / "fixture.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {pcm.size} samples and {feats.shape[0]} feature vectors to {out}")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="The speech front-end's parity fixture.")
    parser.add_argument("--fixture", metavar="OUT_DIR", required=True, help="folder to write")
    write_fixture(parser.parse_args().fixture)
