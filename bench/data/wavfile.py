"""A stand-in for the part of `soundfile` serbench uses, for PCM WAV only, on the standard library.

Used only when the soundfile package is missing (a bare CUDA PyTorch image running
`make gpu-check`): the synthetic corpus is 16-bit WAV, so the whole benchmark still runs there.
Other formats need soundfile, and saying so is the error.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

__version__ = "stdlib-wave"


class LibsndfileError(RuntimeError):
    pass


_DTYPES = {1: np.uint8, 2: np.int16, 4: np.int32}


class SoundFile:
    """Read-only PCM WAV with the attributes and methods of soundfile.SoundFile that we call."""

    extra_info = ""

    def __init__(self, path: str | Path):
        try:
            self._w = wave.open(str(path), "rb")  # noqa: SIM115 (closed by __exit__, as soundfile does)
        except (wave.Error, EOFError) as exc:
            raise LibsndfileError(
                f"Error opening {str(path)!r}: Format not recognised without the soundfile package ({exc})"
            ) from None
        self.samplerate = self._w.getframerate()
        self.channels = self._w.getnchannels()
        self.frames = self._w.getnframes()
        self._width = self._w.getsampwidth()
        if self._width not in _DTYPES:
            raise LibsndfileError(f"{path}: {8 * self._width}-bit WAV needs the soundfile package")
        self.subtype = f"PCM_{8 * self._width}"

    def __enter__(self) -> SoundFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._w.close()

    def seek(self, frame: int) -> None:
        self._w.setpos(frame)

    def read(self, frames: int = -1, dtype: str = "float32", always_2d: bool = False) -> np.ndarray:
        n = self.frames - self._w.tell() if frames < 0 else frames
        raw = np.frombuffer(self._w.readframes(n), dtype=_DTYPES[self._width]).reshape(
            -1, self.channels
        )
        if self._width == 1:
            data = (raw.astype(np.float32) - 128) / 128
        else:
            data = raw.astype(np.float32) / float(2 ** (8 * self._width - 1))
        data = data.astype(dtype)
        return data if always_2d or self.channels > 1 else data[:, 0]


def write(
    path: str | Path, data: np.ndarray, samplerate: int, subtype: str = "PCM_16", **_: object
) -> None:
    if subtype != "PCM_16":
        raise LibsndfileError(f"writing {subtype} needs the soundfile package")
    data = np.asarray(data, dtype=np.float32)
    channels = 1 if data.ndim == 1 else data.shape[1]
    pcm = np.clip(np.round(data * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(samplerate)
        w.writeframes(pcm.tobytes())
