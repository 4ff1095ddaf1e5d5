"""The typed errors of the audio layer.

Few types, each with the HTTP status the API layer answers with, so it maps them without
a ladder of ifs. Cancellation never becomes one of these.
"""


class AudioError(Exception):
    """Base class of every error raised by the audio layer."""

    http_status = 500


class DeviceNotFound(AudioError, LookupError):
    """No device with this id (it never existed, was removed, or its driver is down)."""

    http_status = 404


class Unsupported(AudioError):
    """The driver cannot do this (e.g. create a virtual device on a sound card)."""

    http_status = 409


class DriverUnavailable(AudioError):
    """The driver's backend is down (sound server not running); retry later."""

    http_status = 503


class StreamBroken(AudioError):
    """An open stream lost its device or backend; the stream must be reopened."""

    http_status = 502
