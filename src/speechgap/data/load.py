"""One way to load pairs: :func:`load_pairs`, and :func:`parse_data_spec` for the CLI's ``--data`` string.

``--data`` syntax::

    [LOADER:]SOURCE[?KEY=VALUE[&KEY=VALUE...]]

- ``LOADER`` (optional): ``manifest``, ``voicebench`` or ``speechmmlu``. Without it the loader is inferred
  from SOURCE: a ``.jsonl`` file is a manifest, a folder is recognised by its content, and the Hub names
  ``hlt-lab/voicebench`` and ``XiaomiMiMo/SpeechMMLU`` pick their loader.
- ``SOURCE``: a file, a folder or a Hub dataset name.
- keys: ``subset``, ``split``, ``limit``; ``subject`` is accepted as another name for ``subset``
  (SpeechMMLU). Any other key is an error that lists the allowed ones.

Examples::

    runs/tts/manifest.jsonl
    manifest:runs/tts/manifest.jsonl?subset=astronomy&limit=20
    voicebench:/data/voicebench?subset=sd-qa&split=usa
    /data/voicebench?subset=mmsu
    speechmmlu:/data/speechmmlu?subject=astronomy
    hlt-lab/voicebench?subset=openbookqa
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from speechgap.data import speechmmlu, voicebench
from speechgap.data.manifest import read_manifest
from speechgap.data.types import PairedDataset
from speechgap.errors import ConfigError, DataError

LOADERS = ("manifest", "voicebench", "speechmmlu")
SPEC_KEYS = ("subset", "split", "limit", "subject")
HUB_LOADERS = {voicebench.HUB_NAME.lower(): "voicebench", speechmmlu.HUB_NAME.lower(): "speechmmlu"}


@dataclass
class DataSpec:
    """A parsed ``--data`` string: which loader, what source, which options."""

    source: str
    loader: str | None = None
    subset: str | None = None
    split: str | None = None
    limit: int | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def load(self) -> PairedDataset:
        """Load the pairs this spec names (:func:`load_pairs`)."""
        return load_pairs(
            self.source,
            subset=self.subset,
            split=self.split,
            limit=self.limit,
            loader=self.loader,
            **self.options,
        )


def parse_data_spec(spec: str) -> DataSpec:
    """Parse a ``--data`` string (syntax in the module docstring).

    Raises:
        ConfigError: an empty spec or source, an unknown key, a repeated key, a ``limit`` that is not a
            non-negative integer, ``subset`` and ``subject`` both given.
    """
    return _parse_spec(spec, "spec")


def _parse_spec(spec: str, argument: str) -> DataSpec:
    """:func:`parse_data_spec`, naming ``argument`` (the caller's parameter) in its errors."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"argument '{argument}' must be a non-empty data spec, got {spec!r}")
    where = f"argument '{argument}' (data spec {spec!r})"
    text = spec.strip()
    loader = None
    head, sep, _ = text.partition(":")
    if sep and head.lower() in LOADERS:
        loader = head.lower()
        text = text[len(head) + 1 :]
    source, _, query = text.partition("?")
    if not source:
        raise ConfigError(f"{where}: no file, folder or dataset name before '?'")
    values: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False) if query else []:
        if key not in SPEC_KEYS:
            raise ConfigError(f"{where}: unknown key '{key}'; allowed keys: {', '.join(SPEC_KEYS)}")
        if key in values:
            raise ConfigError(f"{where}: key '{key}' given twice")
        if not value:
            raise ConfigError(f"{where}: key '{key}' has no value")
        values[key] = value
    if query and not values:
        raise ConfigError(f"{where}: cannot read the options after '?' (expected key=value&key=value)")
    if "subset" in values and "subject" in values:
        raise ConfigError(f"{where}: give 'subset' or 'subject', not both")
    limit = None
    if "limit" in values:
        try:
            limit = int(values["limit"])
        except ValueError:
            raise ConfigError(f"{where}: limit must be an integer, got {values['limit']!r}") from None
        if limit < 0:
            raise ConfigError(f"{where}: limit must be >= 0, got {limit}")
    return DataSpec(
        source=source,
        loader=loader,
        subset=values.get("subset", values.get("subject")),
        split=values.get("split"),
        limit=limit,
    )


def load_pairs(
    source: str | Path | PairedDataset,
    *,
    subset: str | None = None,
    split: str | None = None,
    limit: int | None = None,
    loader: str | None = None,
    **options: Any,
) -> PairedDataset:
    """Load paired speech/text samples from a manifest, VoiceBench or SpeechMMLU.

    Args:
        source: a manifest ``.jsonl``; a local VoiceBench or SpeechMMLU folder; the Hub name
            ``hlt-lab/voicebench`` or ``XiaomiMiMo/SpeechMMLU``; or a :class:`PairedDataset` (returned
            limited). A ``--data`` string with a ``LOADER:`` prefix or ``?key=value`` options is parsed too.
        subset: manifest ``subset`` field, VoiceBench subset, SpeechMMLU subject.
        split: VoiceBench split (sd-qa region, mmsu subject, ``test``); not used by the other loaders.
        limit: keep the first ``limit`` samples.
        loader: ``"manifest"``, ``"voicebench"`` or ``"speechmmlu"`` to skip inference from the source.
        **options: loader options: ``check_audio`` (manifest, speechmmlu).

    Returns:
        a lazy :class:`PairedDataset` whose ``source`` records loader, path, subset, split and limit.

    Raises:
        DataError: the source cannot be found or recognised, or the loader rejects it.
        ConfigError: an unknown loader, a negative limit, an option the loader does not take.
    """
    if isinstance(source, PairedDataset):
        return _finish(source, limit)
    if isinstance(source, (str, Path)) and not str(source).strip():
        # an empty string would otherwise be read as the current folder
        raise DataError(
            "argument 'source' is empty: give a manifest .jsonl, a VoiceBench or SpeechMMLU folder, or a "
            "data spec (docs/data.md)"
        )
    if isinstance(source, str) and ("?" in source or source.split(":", 1)[0].lower() in LOADERS):
        spec = _parse_spec(source, "source")
        return load_pairs(
            spec.source,
            subset=subset if subset is not None else spec.subset,
            split=split if split is not None else spec.split,
            limit=limit if limit is not None else spec.limit,
            loader=loader or spec.loader,
            **options,
        )
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ConfigError(f"argument 'limit' must be a non-negative integer, got {limit!r}")
    if loader is not None and loader not in LOADERS:
        raise ConfigError(f"argument 'loader' must be one of {', '.join(LOADERS)}, got {loader!r}")
    loader = loader or detect_loader(source)
    allowed = {"manifest": {"check_audio"}, "voicebench": set(), "speechmmlu": {"check_audio"}}[loader]
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigError(
            f"loader '{loader}' takes no {', '.join(f'argument {name!r}' for name in unknown)}"
            + (
                f"; it takes: {', '.join(f'argument {name!r}' for name in sorted(allowed))}"
                if allowed
                else ""
            )
        )
    if loader == "manifest":
        if split is not None:
            raise ConfigError(
                f"argument 'split' must be None for a manifest (a manifest has no splits), got {split!r}; "
                "filter on its 'subset' field with argument 'subset'"
            )
        dataset = read_manifest(source, subset=subset, **options)
    elif loader == "voicebench":
        dataset = voicebench.load_voicebench(source, subset=subset, split=split)
    else:
        if split not in (None, "train"):
            raise ConfigError(
                f"argument 'split' must be None or 'train' for SpeechMMLU (its only split), got {split!r}; "
                "choose subjects with argument 'subset'"
            )
        dataset = speechmmlu.load_speechmmlu(source, subject=subset, **options)
    return _finish(dataset, limit)


def _finish(dataset: PairedDataset, limit: int | None) -> PairedDataset:
    dataset.source.setdefault("limit", None)
    for key in ("loader", "path", "subset", "split"):
        dataset.source.setdefault(key, None)
    return dataset.limit(limit)


def detect_loader(source: str | Path) -> str:
    """Which loader reads ``source``: by file suffix, folder content or Hub name.

    Raises:
        DataError: the path does not exist and is no known Hub name, or a folder is not recognised.
    """
    path = Path(source)
    if path.is_file():
        if path.suffix == ".jsonl":
            return "manifest"
        raise DataError("not a manifest (.jsonl) file; for a dataset, give its folder", path=path)
    if path.is_dir():
        return _detect_folder(path)
    name = str(source).strip().lower()
    if name in HUB_LOADERS:
        return HUB_LOADERS[name]
    raise DataError(
        f"no such file or folder, and not a known Hub dataset ({voicebench.HUB_NAME}, {speechmmlu.HUB_NAME})",
        path=str(source),
    )


def _detect_folder(folder: Path) -> str:
    card = folder / "README.md"
    if card.is_file():
        head = card.read_text(encoding="utf-8", errors="replace")[:20000].lower()
        if "question_audio" in head or "speechmmlu" in head:
            return "speechmmlu"
        if "voicebench" in head:
            return "voicebench"
    names = {p.name for p in folder.iterdir()}
    if names & set(voicebench.SUBSETS):
        return "voicebench"
    if folder.name in voicebench.SUBSETS and any(folder.glob("*.parquet")):
        return "voicebench"
    if (folder / "audio.tar.gz").is_file() or (folder / "few_shot_prompts.json").is_file():
        return "speechmmlu"
    if (folder / "manifest.jsonl").is_file():
        raise DataError(
            f"a folder holding a manifest; give the file: {folder / 'manifest.jsonl'}", path=folder
        )
    raise DataError(
        "cannot tell which dataset this folder holds; prefix the loader, e.g. voicebench:DIR or speechmmlu:DIR",
        path=folder,
    )
