"""Audio in: check a file cheaply, decode it to mono float32 at 16 kHz, normalise, crop.

`probe_audio` reads headers (and the last few frames) only, so a whole corpus can be checked
before training; `load_audio` is what the data loader calls for every clip in every epoch, so it
reads only the crop window and keeps one resampling kernel per source rate.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

try:
    import soundfile as sf
except ImportError:  # a bare CUDA image (make gpu-check): PCM WAV through the stdlib
    from bench.data import wavfile as sf
import torch
import torchaudio.transforms as T

from bench.errors import BenchError

TARGET_SR = 16_000
# wav2vec2's convolutional encoder needs 400 samples (25 ms) for one frame; shorter clips crash it.
MIN_SECONDS = 0.025
_TAIL_FRAMES = 1024  # decoded at the end of a file to prove it is complete


class AudioProblem(BenchError):
    """A file that cannot be used. `kind` is one of a few fixed words, for counting by reason."""

    def __init__(self, path: str | Path, kind: str, detail: str):
        super().__init__(f"{path}: {detail}")
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class AudioInfo:
    """What the header says: duration in seconds, native sample rate (Hz), channel count."""

    seconds: float
    samplerate: int
    channels: int


def _truncation(extra_info: str) -> str | None:
    """libsndfile notices truncation but still opens the file; its log line says so."""
    m = re.search(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", extra_info, re.MULTILINE)
    # 0 and 0xFFFFFFFF are what streaming writers (ffmpeg to a pipe) put in; those files are fine.
    if m and int(m.group(1)) not in (0, 0xFFFFFFFF) and int(m.group(2)) < int(m.group(1)):
        return f"the header promises {m.group(1)} bytes of audio but the file holds {m.group(2)}"
    if "lacks an end-of-stream" in extra_info:
        return "the Ogg stream ends without its end-of-stream page"
    return None


def probe_audio(path: str | Path) -> AudioInfo:
    """Check that `path` is a complete, decodable, non-empty audio file, without decoding it all.

    Raises AudioProblem (kind: missing file, empty file, unreadable file, unreadable format,
    truncated file, zero-length audio, too short, non-finite samples).
    """
    path = Path(path)
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise AudioProblem(path, "missing file", "audio file does not exist") from None
    except OSError as exc:
        raise AudioProblem(path, "unreadable file", f"cannot open ({exc.strerror})") from None
    if not path.is_file():
        raise AudioProblem(path, "missing file", "is not a file")
    if size == 0:
        raise AudioProblem(path, "empty file", "file is empty (0 bytes)")
    try:
        with sf.SoundFile(str(path)) as f:
            frames, sr, channels = f.frames, f.samplerate, f.channels
            truncated = _truncation(f.extra_info)
            if truncated:
                raise AudioProblem(path, "truncated file", f"truncated: {truncated}")
            if frames == 0:
                raise AudioProblem(path, "zero-length audio", "audio has zero samples")
            # Compressed formats (FLAC) report the full length from their header even when the
            # stream was cut short; decoding the last frames proves the data is all there.
            f.seek(max(0, frames - _TAIL_FRAMES))
            tail = f.read(_TAIL_FRAMES, dtype="float32")
            if f.subtype in ("FLOAT", "DOUBLE"):
                f.seek(0)  # only float files can hold NaN/inf; they are rare, so read them whole
                if not np.isfinite(f.read(dtype="float32")).all():
                    raise AudioProblem(path, "non-finite samples", "audio contains NaN or inf")
    except AudioProblem:
        raise
    except (sf.LibsndfileError, RuntimeError) as exc:
        text = str(exc)
        if "not recognised" in text or "malformed" in text or "unimplemented" in text:
            raise AudioProblem(
                path,
                "unreadable format",
                f"not a readable audio file ({text.split(':')[-1].strip()}); "
                "convert it to wav/flac/ogg or drop the row",
            ) from None
        raise AudioProblem(
            path, "truncated file", f"truncated or corrupt: decoding failed ({text})"
        ) from None
    if len(tail) == 0:
        raise AudioProblem(path, "truncated file", "truncated: the last frames cannot be read")
    if frames / sr < MIN_SECONDS:
        raise AudioProblem(
            path, "too short", f"only {frames / sr * 1000:.1f} ms; the model needs >= 25 ms"
        )
    return AudioInfo(frames / sr, sr, channels)


@functools.lru_cache(maxsize=16)
def _resampler(orig_sr: int) -> T.Resample:
    # One kernel per source rate per process: building it costs as much as applying it.
    return T.Resample(orig_sr, TARGET_SR)


def resample(wave: np.ndarray, orig_sr: int) -> np.ndarray:
    """Resample mono float32 `wave` from `orig_sr` to 16 kHz (torchaudio's windowed sinc)."""
    if orig_sr == TARGET_SR:
        return wave
    # One thread: a 1-D convolution this size gains nothing from torch's thread pool, and on a
    # busy machine the pool's synchronisation made it 20-40x slower (measured on 2 shared cores).
    # DataLoader workers run single-threaded already; this covers num_workers=0.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            return _resampler(orig_sr)(torch.from_numpy(np.ascontiguousarray(wave))).numpy()
    finally:
        torch.set_num_threads(threads)


def load_audio(
    path: str | Path, max_seconds: float | None = None, offset_fraction: float = 0.5
) -> np.ndarray:
    """Decode `path` to mono float32 at 16 kHz, at most `max_seconds` long.

    A longer clip is cropped to the window starting at `offset_fraction` of the slack
    (0.5 = centred); only that window is decoded. Raises BenchError naming the file on any problem.
    """
    try:
        with sf.SoundFile(str(path)) as f:
            sr, total = f.samplerate, f.frames
            want = total
            if max_seconds is not None and total > max_seconds * sr:
                want = int(np.ceil(max_seconds * sr))
                f.seek(int((total - want) * offset_fraction))
            data = f.read(want, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise BenchError(
            f"{path}: cannot decode audio ({exc}); re-encode it as wav/flac or drop the row"
        ) from None
    if data.shape[0] == 0:
        raise BenchError(f"{path}: audio has zero samples; drop the row")
    mono = downmix(data)
    mono = resample(mono, sr)
    if max_seconds is not None:
        mono = mono[: round(max_seconds * TARGET_SR)]
    if not np.isfinite(mono).all():
        raise BenchError(f"{path}: audio contains NaN or inf samples; drop the row")
    return mono


def downmix(data: np.ndarray) -> np.ndarray:
    """(frames, channels) -> (frames,): the channel mean."""
    if data.shape[1] == 1:
        return data[:, 0]
    # Column by column, not data.mean(axis=1) (numpy reduces a 2-wide axis ~50x slower) nor a
    # BLAS product (its thread pool stalls on a busy machine); this runs for every clip, every epoch.
    mono = data[:, 0].copy()
    for c in range(1, data.shape[1]):
        mono += data[:, c]
    mono *= np.float32(1.0 / data.shape[1])
    return mono


def normalize(wave: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per utterance, as Wav2Vec2FeatureExtractor(do_normalize=True) does."""
    return (wave - wave.mean()) / np.sqrt(wave.var() + 1e-7)


def crop(wave: np.ndarray, max_samples: int | None, offset_fraction: float) -> np.ndarray:
    """Crop to at most `max_samples`, starting at `offset_fraction` of the slack (0.5 = centre)."""
    if max_samples is None or len(wave) <= max_samples:
        return wave
    start = int((len(wave) - max_samples) * offset_fraction)
    return wave[start : start + max_samples]
