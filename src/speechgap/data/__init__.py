"""Paired speech/text data: loaders for manifests, VoiceBench and SpeechMMLU, and audio handling."""

from speechgap.data.types import SAMPLE_RATE, PairedDataset, PairedSample, WordTime

__all__ = ["SAMPLE_RATE", "PairedDataset", "PairedSample", "WordTime"]

from speechgap.data.audio import MAX_PEAK, SILENCE_PEAK, load_audio, write_wav  # noqa: E402
from speechgap.data.load import DataSpec, load_pairs, parse_data_spec  # noqa: E402
from speechgap.data.manifest import (  # noqa: E402
    ManifestRecord,
    read_manifest,
    write_manifest,
    write_manifest_record,
)

__all__ += [
    "MAX_PEAK",
    "SILENCE_PEAK",
    "DataSpec",
    "ManifestRecord",
    "load_audio",
    "load_pairs",
    "parse_data_spec",
    "read_manifest",
    "write_manifest",
    "write_manifest_record",
    "write_wav",
]
