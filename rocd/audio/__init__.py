"""Audio mechanisms: frames, ring buffers, and the device drivers behind one interface.

Nothing here knows of actors or HTTP. Drivers: `open_pulse_driver` (PulseAudio or
pipewire-pulse), `FileDriver`, `ToneDriver`, `PortAudioDriver`; all implement
`AudioDriver`. `PrivatePulseServer` runs a headless PulseAudio for a machine without one.
"""

from ._driver import (
    AudioDriver,
    CaptureStream,
    DeviceAdded,
    DeviceChanged,
    DeviceEvent,
    DeviceInfo,
    DeviceRemoved,
    Direction,
    DriverDown,
    DriverFeatures,
    DriverStatus,
    DriverUp,
    FrameSink,
    FrameSource,
    PlaybackStream,
    StreamStats,
    VirtualKind,
)
from ._errors import AudioError, DeviceNotFound, DriverUnavailable, StreamBroken, Unsupported
from ._file_driver import FileDriver
from ._file_io import FileReader, FileWriter, open_file_reader, open_file_writer
from ._format import (
    MAX_VOLUME,
    Frames,
    SampleSpec,
    apply_gain,
    as_frames,
    check_volume,
    frames_from_bytes,
    frames_from_s16,
    frames_to_s16,
    silence,
    volume_to_amplitude,
)
from ._pace import Paced
from ._portaudio import PortAudioDriver
from ._pulse import PulseDriver, open_pulse_driver
from ._pulse_server import (
    PrivatePulseServer,
    clean_stale_servers,
    prepare_pulse_root,
    private_pulse_root,
    probe_pulse,
    pulse_server_command,
    pulse_server_env,
)
from ._recording import FORMATS as RECORDING_FORMATS
from ._recording import Recording, open_recording, recording_format
from ._ring import FrameRing, RingStats
from ._tee import Tee, TeeReader
from ._tone import DEFAULT_TONES, Tone, ToneDriver, ToneGenerator
from ._watch import EventHub, diff_devices
from ._wav import WavFile, wav_header

__all__ = [
    "DEFAULT_TONES",
    "MAX_VOLUME",
    "RECORDING_FORMATS",
    "AudioDriver",
    "AudioError",
    "CaptureStream",
    "DeviceAdded",
    "DeviceChanged",
    "DeviceEvent",
    "DeviceInfo",
    "DeviceNotFound",
    "DeviceRemoved",
    "Direction",
    "DriverDown",
    "DriverFeatures",
    "DriverStatus",
    "DriverUnavailable",
    "DriverUp",
    "EventHub",
    "FileDriver",
    "FileReader",
    "FileWriter",
    "FrameRing",
    "FrameSink",
    "FrameSource",
    "Frames",
    "Paced",
    "PlaybackStream",
    "PortAudioDriver",
    "PrivatePulseServer",
    "PulseDriver",
    "Recording",
    "RingStats",
    "SampleSpec",
    "StreamBroken",
    "StreamStats",
    "Tee",
    "TeeReader",
    "Tone",
    "ToneDriver",
    "ToneGenerator",
    "Unsupported",
    "VirtualKind",
    "WavFile",
    "apply_gain",
    "as_frames",
    "check_volume",
    "clean_stale_servers",
    "diff_devices",
    "frames_from_bytes",
    "frames_from_s16",
    "frames_to_s16",
    "open_file_reader",
    "open_file_writer",
    "open_pulse_driver",
    "open_recording",
    "prepare_pulse_root",
    "private_pulse_root",
    "probe_pulse",
    "pulse_server_command",
    "pulse_server_env",
    "recording_format",
    "silence",
    "volume_to_amplitude",
    "wav_header",
]
