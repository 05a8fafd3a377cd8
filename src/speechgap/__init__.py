"""speechgap: measure, explain and narrow the modality gap of large speech language models.

One verb per job, each the function its command runs, each returning a typed result::

    import speechgap
    model = speechgap.load_model(speechgap.default_model_path())
    result = speechgap.evaluate(model, "pairs/manifest.jsonl", out_dir="runs/eval")
    speechgap.analyze(model, "pairs/manifest.jsonl", out_dir="runs/analysis", eval_dir="runs/eval")
    speechgap.intervene(model, "pairs/manifest.jsonl", "angle", out_dir="runs/angle")
    speechgap.compress(model, "pairs/manifest.jsonl", out_dir="runs/dap", method="dap")

The entry points are importable from here; heavy modules (torch, transformers) load on first use.
See ``docs/python.md``.
"""

from __future__ import annotations

import importlib
from typing import Any

from speechgap.version import __version__

# public name -> module that defines it
_EXPORTS = {
    # the verbs (docs/python.md)
    "evaluate": "speechgap.api",
    "score": "speechgap.api",
    "analyze": "speechgap.api",
    "intervene": "speechgap.api",
    "compress": "speechgap.api",
    "study": "speechgap.api",
    "synthesize": "speechgap.api",
    "run_sweep": "speechgap.sweep.run",
    "load_spec": "speechgap.sweep.spec",
    "show_prompts": "speechgap.api",
    # their results
    "EvalResult": "speechgap.evaluation.result",
    "AnalysisResult": "speechgap.analysis",
    "InterventionResult": "speechgap.interventions.run",
    "CompressionResult": "speechgap.compression.experiment",
    "StudyResult": "speechgap.study",
    "SweepResult": "speechgap.sweep.run",
    "SynthesisResult": "speechgap.api",
    "PromptPreview": "speechgap.api",
    # data and models
    "PairedSample": "speechgap.data.types",
    "PairedDataset": "speechgap.data.types",
    "load_pairs": "speechgap.data.load",
    "load_audio": "speechgap.data.audio",
    "load_model": "speechgap.models",
    "default_model_path": "speechgap.mini",
    "Capture": "speechgap.models.base",
    "register_method": "speechgap.evaluation.methods",
    "register_scorer": "speechgap.scoring",
    # errors
    "SpeechgapError": "speechgap.errors",
    "ConfigError": "speechgap.errors",
    "DataError": "speechgap.errors",
    "ModelError": "speechgap.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'speechgap' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
