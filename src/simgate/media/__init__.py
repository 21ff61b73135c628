"""Audio for voice calls: uploaded files decoded to call audio, and text to speech.

- :mod:`simgate.media.decode` turns an uploaded .mp3 / .m4a / .wav (itnio ``fileUpload``,
  spec §1.13) into :class:`simgate.domain.calls.Audio` (8 kHz mono signed 16-bit PCM),
  refusing files that are not what their name says, do not decode, or are too long.
- :mod:`simgate.media.tts` speaks a ``sendCode`` text (spec §1.11) with espeak-ng.
- :mod:`simgate.media.pcm` holds the PCM helpers both share (resampling, lengths).

Decoding is CPU-bound and synchronous on purpose: callers run it in a worker thread.
"""
