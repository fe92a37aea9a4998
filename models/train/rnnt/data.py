"""Speech folders (as `edgetrim datagen speech` writes them) turned into cached features and
training batches.

The log-mel front-end (features.py) costs more than a training step would leave room for on two
cores, so each split is analysed once into `<split>/features.npz` (unstacked float32 log-mel
frames, exactly what features.py gives, the character ids and the voices), keyed by a hash of
transcripts.tsv so a regenerated folder is re-analysed. Frames are stacked (features.stack) only when a batch is built, after the
training-time augmentations that act on the 10 ms frames:
- light speed perturbation (linear interpolation of the frame sequence, factor 0.9-1.1);
- with `warp` > 0, vocal tract length perturbation (Jaitly & Hinton 2013) on the mel axis:
  half of the utterances have their bins resampled at k * a, a in [1 - warp, 1 + warp], which
  moves every formant by the same factor, as a longer or shorter vocal tract would. espeak-ng's
  voices vary pitch more than formants, and a new accent is mostly new formant targets;
- SpecAugment: frequency and time masks filled with the per-bin training mean (which is zero
  after the normalisation the encoder applies).
"""

import hashlib
import multiprocessing
import wave
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import features as fe

# id 0 = <blank>, 1 = space, 2 = apostrophe, 3..28 = a..z (the agreed character vocabulary).
CHARS = " '" + "".join(chr(c) for c in range(ord("a"), ord("z") + 1))
TOKENS = ["<blank>", "<space>", "'"] + list(CHARS[2:])


def encode_text(text):
    try:
        return [CHARS.index(ch) + 1 for ch in text]
    except ValueError:
        raise ValueError(f"transcript {text!r} has a character outside ' a-z and space") from None


def decode_ids(ids):
    return "".join(CHARS[i - 1] for i in ids if i > 0)


def read_wav(path):
    """16 kHz mono 16-bit PCM WAV -> int16 samples (anything else is refused by name)."""
    with wave.open(str(path), "rb") as w:
        if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, fe.SAMPLE_RATE):
            raise SystemExit(f"{path}: need 16 kHz mono 16-bit PCM, got {w.getnchannels()} ch, "
                             f"{8 * w.getsampwidth()} bit, {w.getframerate()} Hz")
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def read_transcripts(folder):
    rows = []
    for n, line in enumerate((Path(folder) / "transcripts.tsv").read_text().splitlines(), 1):
        parts = line.split("\t")
        if len(parts) != 3:
            raise SystemExit(f"{folder}/transcripts.tsv line {n}: expected id<TAB>voice<TAB>text")
        rows.append(parts)
    return rows


class SpeechSet:
    """One split in RAM: log-mel frames (float32) and targets of every utterance."""

    def __init__(self, folder, workers=1):
        folder = Path(folder)
        cache = folder / "features.npz"
        digest = hashlib.sha1((folder / "transcripts.tsv").read_bytes()).hexdigest()
        if not cache.exists() or str(np.load(cache)["digest"]) != digest:
            build_cache(folder, cache, digest, workers)
        z = np.load(cache)
        self.logmel = torch.from_numpy(z["logmel"])
        self.offsets = z["offsets"].tolist()
        self.token_ids = torch.from_numpy(z["tokens"].astype(np.int64))
        self.token_offsets = z["token_offsets"].tolist()
        self.ids, self.voices, self.texts = list(z["ids"]), list(z["voices"]), list(z["texts"])
        self.frames = [(self.offsets[i + 1] - self.offsets[i]) // fe.STACK for i in range(len(self))]

    def __len__(self):
        return len(self.ids)

    def utterance(self, i):
        return (self.logmel[self.offsets[i]:self.offsets[i + 1]].float(),
                self.token_ids[self.token_offsets[i]:self.token_offsets[i + 1]])

    def stats(self):
        """Per-dimension mean and 1/std of the stacked 160-dim features (for the encoder)."""
        x = self.logmel.double()
        mean, std = x.mean(0), x.std(0).clamp(min=1e-3)
        return mean.repeat(fe.STACK).float(), (1.0 / std).repeat(fe.STACK).float()

    def batches(self, batch, generator=None):
        """Index lists of similar length (less padding); shuffled when a generator is given."""
        order = sorted(range(len(self)), key=lambda i: self.frames[i])
        if generator is not None:
            # shuffle within windows of 8 batches, then shuffle the batches
            noise = torch.rand(len(order), generator=generator).tolist()
            w = 8 * batch
            order = [j for s in range(0, len(order), w) for j in sorted(order[s:s + w], key=lambda k: noise[k])]
            chunks = [order[s:s + batch] for s in range(0, len(order), batch)]
            return [chunks[j] for j in torch.randperm(len(chunks), generator=generator).tolist()]
        return [order[s:s + batch] for s in range(0, len(order), batch)]

    def collate(self, idx, augment=None, generator=None, warp=0.0):
        """-> features [B, T, 160], frames [B], targets [B, U], labels [B]. `augment` is the
        per-bin log-mel mean used as the SpecAugment fill value (None: no augmentation);
        `warp` the largest mel-axis warp (0: none)."""
        mels, ys = [], []
        for i in idx:
            m, y = self.utterance(i)
            if augment is not None:
                m = _speed(m, generator)
                if warp > 0:
                    m = _warp(m, generator, warp)
            mels.append(m)
            ys.append(y)
        frames = torch.tensor([m.shape[0] // fe.STACK for m in mels])
        T = int(frames.max())
        x = torch.zeros(len(idx), T * fe.STACK, fe.N_MELS)
        if augment is not None:
            x[:] = augment
        for b, m in enumerate(mels):
            x[b, :frames[b] * fe.STACK] = m[:frames[b] * fe.STACK]
        if augment is not None:
            _spec_augment(x, frames * fe.STACK, augment, generator)
        labels = torch.tensor([len(y) for y in ys])
        targets = torch.zeros(len(idx), max(1, int(labels.max())), dtype=torch.int64)
        for b, y in enumerate(ys):
            targets[b, :len(y)] = y
        return x.reshape(len(idx), T, fe.FEATURE_DIM), frames, targets, labels


def _speed(m, generator, low=0.9, high=1.1):
    """Half of the utterances are resampled in time by a factor in [low, high]."""
    r = torch.rand(2, generator=generator).tolist()
    if r[0] < 0.5:
        return m
    n = max(fe.STACK, round(m.shape[0] / (low + (high - low) * r[1])))
    return F.interpolate(m.T[None], size=n, mode="linear", align_corners=True)[0].T


def _warp(m, generator, warp):
    """Half of the utterances get their mel axis warped by a factor in [1 - warp, 1 + warp]."""
    r = torch.rand(2, generator=generator).tolist()
    return m if r[0] < 0.5 else warp_bins(m, 1 - warp + 2 * warp * r[1])


def warp_bins(m, a):
    """Frames [T, bins] resampled at bin k * a, linearly (the top bin repeats where k * a runs
    past it): a spectral peak at bin k moves to k / a."""
    nm = m.shape[1]
    pos = (torch.arange(nm, dtype=m.dtype) * a).clamp(max=nm - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=nm - 1)
    w = pos - lo
    return m[:, lo] * (1 - w) + m[:, hi] * w


def _spec_augment(x, lengths, fill, generator, freq_masks=2, freq_width=8, time_masks=2, time_width=20):
    B, _, nm = x.shape
    r = torch.rand(B, freq_masks + time_masks, 2, generator=generator)
    for b in range(B):
        for j in range(freq_masks):
            w = int(r[b, j, 0] * freq_width)
            f0 = int(r[b, j, 1] * (nm - w))
            x[b, :, f0:f0 + w] = fill[f0:f0 + w]
        n = int(lengths[b])
        for j in range(freq_masks, freq_masks + time_masks):
            w = int(r[b, j, 0] * min(time_width, n // 10))
            t0 = int(r[b, j, 1] * (n - w))
            x[b, t0:t0 + w] = fill


def _analyse(job):
    folder, uid, text = job
    mel = fe.logmel(fe.samples_to_float(read_wav(folder / "wav" / f"{uid}.wav"))).astype(np.float32)
    return mel, np.array(encode_text(text), dtype=np.int16)


def build_cache(folder, cache, digest, workers=1):
    """Analyses every utterance of `folder` (in `workers` processes: ~20 ms of numpy each, which
    is minutes for a big training split on one core) into `cache`."""
    rows = read_transcripts(folder)
    jobs = [(folder, uid, text) for uid, _, text in rows]
    if workers > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = pool.map(_analyse, jobs, chunksize=64)
    else:
        results = [_analyse(job) for job in jobs]
    mels, tokens = [m for m, _ in results], [t for _, t in results]
    offsets = np.cumsum([0] + [m.shape[0] for m in mels])
    token_offsets = np.cumsum([0] + [len(t) for t in tokens])
    tmp = cache.with_name(cache.stem + ".tmp.npz")
    np.savez(tmp, logmel=np.concatenate(mels), offsets=offsets, tokens=np.concatenate(tokens),
             token_offsets=token_offsets, ids=np.array([r[0] for r in rows]),
             voices=np.array([r[1] for r in rows]), texts=np.array([r[2] for r in rows]), digest=digest)
    tmp.replace(cache)
    print(f"cached {len(rows)} utterances of {folder} ({offsets[-1] / 100 / 3600:.2f} h) in {cache}", flush=True)
