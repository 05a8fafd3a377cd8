"""speechgap side by side with its peers, in one run: capture, cross-layer CKA, DTW and evaluation.

    .venv/bin/python benchmarks/peers.py [--only capture,cka,dtw,eval] [--repeats 3] [--quick] [--no-memory]

For each task the script times speechgap and the tools a researcher would otherwise use, checks that they give
the same output and prints each one's time divided by speechgap's (> 1: speechgap is faster) and its peak
memory. The sections:

- ``capture``: the hidden states of the speech span, every layer 0..L, of each sample. speechgap's
  ``capture_batch`` (8 samples per forward pass) and ``capture`` (one at a time) against nnsight's trace, saving
  the first block's input and every block's output, and a plain ``model(**inputs, output_hidden_states=True)``,
  one sample at a time. All run on the inputs the adapter builds (``build_inputs``: its prompt, its processor
  call), and that input building is timed for every method. 128 samples on the embedded default (4 blocks,
  d = 128), 32 on a random Qwen2-Audio of ~80M parameters (12 blocks, d = 768; built once into
  ``build/peers-data``).
- ``cka``: the 13 x 13 cross-layer CKA matrix of n = 2048 rows, d = 512 (seeded states as in
  ``cka_speed.py``), biased and debiased: ``cross_layer_cka`` against the loop of ``linear_cka`` calls and against
  cka-pytorch's ``CKACalculator`` and torch-cka's ``CKA``.
- ``dtw``: ``dtw_path`` against ``librosa.sequence.dtw`` at 1500 x 300, 500 x 100 and 3000 x 600, oriented as in
  ``dtw_speed.py`` so that both break ties alike.
- ``eval``: ``speechgap.evaluate`` at its default settings (batch size ``DEFAULT_BATCH_SIZE``, 8 new tokens)
  against a VoiceBench-style loop: per sample and modality, the adapter's inputs, ``model.generate(**inputs,
  max_new_tokens=8, do_sample=False)``, decode. 128 questions x 2 modalities on the embedded default, 64 x 2
  on the random Qwen2-Audio. speechgap's time includes what ``evaluate`` does besides answering (records
  written and fsynced, scoring, the run folder).

How it is measured. One process runs every method of a section, interleaved round-robin, ``--repeats`` rounds
(median kept; DTW ``--dtw-repeats``), after one untimed warm-up call of each on a small input (lazy imports,
numba compilation, first-call allocations). One BLAS / OpenMP thread everywhere (``OMP_NUM_THREADS=1`` etc. set
before numpy and torch are imported, ``torch.set_num_threads(1)``).

Peak memory: each method runs once more in a fresh process of its own, after its warm-up, with glibc's malloc
set to map every block of 64 KiB or more on its own and to trim its heap at each free, so that the resident set
follows the live allocations. The figure is the peak resident set during that call above the resident set just
before it (the kernel's ``VmHWM``, reset through ``/proc/self/clear_refs``): everything the call holds at its
peak - numpy, torch, Python objects, the output it returns - and nothing the process held before (the model,
the data). tracemalloc would miss torch's allocations; with glibc's defaults, or in one shared process, memory
freed earlier (by the warm-up, by another method) stays resident and is handed out again unseen.

The peers are not speechgap dependencies. On its first run the script makes ``build/peers-venv`` with the
project's Python, makes the project's ``.venv`` (torch, transformers, speechgap) visible in it through a ``.pth``
file (``--system-site-packages`` would show the base interpreter's packages, not ``.venv``'s), installs the peers
pinned below under constraints that pin every package of ``.venv`` to its installed version (so pip can neither
bring another torch nor change what speechgap runs with), and runs itself again inside it; later runs reuse it.
cka-pytorch is installed without its dependencies, and the ones it imports (lightning, torchmetrics, seaborn) by
name: it also requires torchvision, which it never imports, and PyPI's torchvision is built for the CUDA torch -
beside the CPU torch it breaks ``transformers.AutoProcessor`` ("operator torchvision::nms does not exist"). A peer that cannot be installed or
imported, or fails, is reported as such, with no figure.
"""

from __future__ import annotations

import argparse
import atexit
import copy
import importlib.metadata
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# One thread for every BLAS and OpenMP pool, set before numpy and torch are imported (inside the functions
# below, after the re-exec into the peers' environment); tqdm bars (torch-cka, weight loading) are silenced.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_variable] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["TQDM_DISABLE"] = "1"

REPO = Path(__file__).resolve().parents[1]
PEERS_VENV = REPO / "build" / "peers-venv"
DATA_DIR = REPO / "build" / "peers-data"

PEERS = {"nnsight": "0.8.1", "cka-pytorch": "1.1.3", "torch-cka": "0.21", "librosa": "0.11.0"}
"""The peers and the versions installed into ``build/peers-venv``."""
CKA_PYTORCH_DEPENDENCIES = ("lightning==2.6.6", "torchmetrics==1.9.0", "seaborn==0.13.2")
"""What cka-pytorch imports (it is installed with ``--no-deps``: see the module docstring)."""

SECTIONS = ("capture", "cka", "dtw", "eval")
RANDOM_MODEL = "qwen2-audio-80m"
SAME_STATES = 1e-5
"""Largest |difference| of hidden states counted as the same output."""
SAME_CKA = 1e-6


# ---------------------------------------------------------------------------------------------- environment
def peers_environment_record() -> dict[str, Any]:
    """What ``build/peers-venv`` is made from; a change (another torch, other pins) makes it anew."""
    if peer_version("torch") is None or peer_version("speechgap") is None:
        raise SystemExit(f"{sys.executable} has no torch or no speechgap: run .venv/bin/python {sys.argv[0]}")
    return {
        "project_python": sys.executable,
        "project_site": sysconfig.get_paths()["purelib"],
        "torch": importlib.metadata.version("torch"),
        "peers": [f"{name}=={version}" for name, version in PEERS.items()],
        "cka_pytorch_dependencies": list(CKA_PYTORCH_DEPENDENCIES),
    }


def make_peers_environment(record: dict[str, Any]) -> None:
    """Create ``build/peers-venv`` and install the peers into it (see the module docstring).

    Raises:
        RuntimeError: pip failed, or the environment would not run the project's torch.
    """
    print(f"making {PEERS_VENV} (once): the peers' own environment on top of the project's .venv", flush=True)
    if PEERS_VENV.exists():
        shutil.rmtree(PEERS_VENV)
    subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
    python = PEERS_VENV / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    project_site = record["project_site"]
    Path(site, "speechgap_project_venv.pth").write_text(
        f"import site; site.addsitedir({project_site!r})\n", encoding="utf-8"
    )
    pins = sorted(
        {
            f"{dist.metadata['Name']}=={dist.version}"
            for dist in importlib.metadata.distributions(path=[project_site])
            if dist.metadata["Name"] and dist.metadata["Name"].lower() != "speechgap"
        }
    )
    constraints = PEERS_VENV / "project-constraints.txt"
    constraints.write_text("\n".join(pins) + "\n", encoding="utf-8")
    pip = [
        str(python),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "-c",
        str(constraints),
    ]
    by_name = [spec for spec in record["peers"] if not spec.startswith("cka-pytorch==")]
    without_dependencies = [spec for spec in record["peers"] if spec.startswith("cka-pytorch==")]
    for command in (
        [*pip, *by_name, *record["cka_pytorch_dependencies"]],
        [*pip, "--no-deps", *without_dependencies],
    ):
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"pip failed ({' '.join(command[3:])}):\n{done.stderr.strip()[-3000:]}")
    check = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.util, torch; print(torch.__version__, torch.__file__, "
            "importlib.util.find_spec('torchvision') is not None)",
        ],
        capture_output=True,
        text=True,
    )
    version, location, has_torchvision = (check.stdout.split() + ["?", "?", "?"])[:3]
    if check.returncode != 0 or version != record["torch"] or not location.startswith(project_site):
        raise RuntimeError(
            f"the peers' environment runs torch {version} from {location}, not the project's torch "
            f"{record['torch']} from {project_site}: {check.stderr.strip()[-2000:]}"
        )
    if has_torchvision == "True":
        raise RuntimeError("torchvision got into the peers' environment; it breaks transformers' processors")


def enter_peers_environment() -> None:
    """Run this script inside ``build/peers-venv``, making it first when needed; returns only when already
    inside it, or when the peers cannot be installed (then every peer is reported as not available)."""
    if Path(sys.prefix).resolve() == PEERS_VENV.resolve():
        return
    python = PEERS_VENV / "bin" / "python"
    stamp = PEERS_VENV / "peers-installed.json"
    record = peers_environment_record()
    current = json.loads(stamp.read_text(encoding="utf-8")) if stamp.is_file() else None
    if not python.exists() or current != record:
        try:
            make_peers_environment(record)
        except (RuntimeError, subprocess.CalledProcessError, OSError) as err:
            print(f"PEERS NOT INSTALLED: {err}\nrunning without them: no peer figures", flush=True)
            return
        stamp.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    sys.stdout.flush()
    os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])


def peer_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def print_header(args: argparse.Namespace) -> None:
    import numpy
    import torch
    import transformers

    import speechgap

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    changed = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--", "src"], capture_output=True, text=True
    ).stdout.splitlines()
    if commit and changed:
        commit += f" + {len(changed)} uncommitted file(s) under src/"
    print(
        f"speechgap {speechgap.__version__} ({commit or 'no git'}), Python {platform.python_version()}, {sys.prefix}"
    )
    print(
        f"torch {torch.__version__} ({torch.get_num_threads()} thread), numpy {numpy.__version__}, "
        f"transformers {transformers.__version__}; {cpu}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}"
    )
    peers = ", ".join(f"{name} {peer_version(name) or 'NOT INSTALLED'}" for name in PEERS)
    print(f"peers: {peers}")
    print(
        f"repeats: {args.repeats} (DTW {args.dtw_repeats}), interleaved, median kept, warm-up not timed"
        + ("; --quick sizes" if args.quick else "")
    )


# ---------------------------------------------------------------------------------------------- harness
@dataclass
class Method:
    """One way of doing a section's task.

    Attributes:
        label: the name printed.
        run: the timed call; returns the output compared across methods.
        warm: an untimed call on a small input, run once before the timing.
        versus: keys of the methods this one's time is divided by (speechgap's).
    """

    label: str
    run: Callable[[], Any]
    warm: Callable[[], Any]
    versus: tuple[str, ...] = ()


@dataclass
class Case:
    """One comparison: its methods (the first is speechgap's reference), how outputs are checked, the rate.

    Attributes:
        title: the heading printed.
        methods: by key, in the order they run each round.
        check: ``outputs by key -> (is the same, text)`` for every method but the reference.
        work: units of work per call and their name, for a rate column (``(256, "answers")``); None: none.
        notes: lines printed under the table (conventions, peers not available).
    """

    title: str
    methods: dict[str, Method]
    check: Callable[[dict[str, Any]], dict[str, tuple[bool, str]]]
    work: tuple[float, str] | None = None
    notes: list[str] = field(default_factory=list)


def interleaved_medians(
    methods: dict[str, Method], repeats: int
) -> tuple[dict[str, float], dict[str, Any], dict[str, str]]:
    """Median seconds per method over ``repeats`` round-robin rounds, each method's last output, and the
    error of each method that raised (it is dropped from later rounds)."""
    failed: dict[str, str] = {}
    for key, method in methods.items():
        try:
            method.warm()
        except Exception as err:  # a peer that breaks is reported, not fatal
            failed[key] = f"{type(err).__name__}: {err}"
    times: dict[str, list[float]] = {key: [] for key in methods}
    outputs: dict[str, Any] = {}
    for _ in range(repeats):
        for key, method in methods.items():
            if key in failed:
                continue
            start = time.perf_counter()
            try:
                outputs[key] = method.run()
            except Exception as err:
                failed[key] = f"{type(err).__name__}: {err}"
                continue
            times[key].append(time.perf_counter() - start)
    medians = {key: statistics.median(values) for key, values in times.items() if key not in failed}
    return medians, outputs, failed


def reset_peak() -> int:
    """Reset the kernel's peak resident set of this process; the resident set now, in KiB."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kib("VmRSS")


def _status_kib(name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {name}")


def probe_memory(section: str, case: str, key: str, args: argparse.Namespace) -> str:
    """Peak MiB of one call of ``key`` above the process's resident set before it, in a fresh process."""
    command = [sys.executable, str(Path(__file__).resolve()), "--probe", f"{section}:{case}:{key}"]
    if args.quick:
        command.append("--quick")
    # Every block of 64 KiB or more gets its own mapping, returned to the kernel when freed, and the heap is
    # trimmed at each free: the resident set then follows the live allocations instead of keeping what the
    # warm-up freed (glibc's default would hide a call's working set behind it). Only this process is slowed.
    tunables = "glibc.malloc.mmap_threshold=65536:glibc.malloc.trim_threshold=0"
    environment = {**os.environ, "GLIBC_TUNABLES": tunables}
    done = subprocess.run(command, capture_output=True, text=True, env=environment)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("PEAK_MIB "):
            return line.split(" ", 1)[1]
    return "failed: " + (done.stderr.strip().splitlines() or ["no output"])[-1][:120]


def run_probe(spec: str, args: argparse.Namespace) -> None:
    section, case_key, key = spec.split(":")
    import torch

    torch.set_num_threads(1)
    case = SETUPS[section](case_key, args)
    method = case.methods[key]
    method.warm()
    try:
        before = reset_peak()
    except OSError as err:
        print(f"PEAK_MIB n/a (cannot reset the peak resident set: {err})")
        return
    output = method.run()
    peak = _status_kib("VmHWM")
    del output
    mib = (peak - before) / 1024
    print(f"PEAK_MIB {mib:.1f}" if mib < 10 else f"PEAK_MIB {mib:.0f}")


def format_seconds(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1e3:.2f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.0f} µs"


def run_case(section: str, case_key: str, args: argparse.Namespace, problems: list[str]) -> None:
    case = SETUPS[section](case_key, args)
    print(f"\n== {case.title}", flush=True)
    medians, outputs, failed = interleaved_medians(
        case.methods, args.repeats if section != "dtw" else args.dtw_repeats
    )
    checks = case.check({key: value for key, value in outputs.items() if key not in failed})
    memory = {}
    if not args.no_memory:
        for key in case.methods:
            if key not in failed:
                memory[key] = probe_memory(section, case_key, key, args)
    width = max(len(method.label) for method in case.methods.values()) + 2
    rate_name = f"{case.work[1]}/s" if case.work else ""
    print(
        f"  {'method':<{width}}{'median':>10}  {rate_name:>12}  {'÷ speechgap':<36}{'peak MiB':>9}  same output"
    )
    for key, method in case.methods.items():
        if key in failed:
            print(f"  {method.label:<{width}}FAILED: {failed[key][:300]}")
            problems.append(f"{case.title}: {method.label} failed: {failed[key][:300]}")
            continue
        seconds = medians[key]
        rate = f"{case.work[0] / seconds:.1f}" if case.work else ""
        ratios = ", ".join(
            f"{seconds / medians[ref]:.2f}x {case.methods[ref].label.split(' (')[0].split()[-1]}"
            if len(method.versus) > 1
            else f"{seconds / medians[ref]:.2f}x"
            for ref in method.versus
            if ref in medians
        )
        same, text = checks.get(key, (True, "reference"))
        if not same:
            problems.append(f"{case.title}: {method.label}: output differs ({text})")
        print(
            f"  {method.label:<{width}}{format_seconds(seconds):>10}  {rate:>12}  {ratios or '-':<36}"
            f"{memory.get(key, '-'):>9}  {text}"
        )
    for note in case.notes:
        print(f"  note: {note}")
    sys.stdout.flush()


# ---------------------------------------------------------------------------------------------- models and data
def pairs(n: int) -> Any:
    """The first ``n`` questions of the mini zoo's fixed eval set (synthesised once into build/peers-data)."""
    from speechgap.mini.evalset import fixed_eval_set

    return fixed_eval_set(128, seed=0, out_dir=DATA_DIR / "pairs128").limit(n)


def random_qwen2_audio() -> Path:
    """A Qwen2-Audio of ~80M parameters with random weights (seed 0), saved with ``save_pretrained`` once.

    Decoder: 12 blocks, d = 768, 12 heads (4 key/value), MLP 2048; audio encoder: 4 layers, d = 256. It takes the
    embedded default's processor (tokenizer, chat template, Whisper features of 40 mel bins over 6 s windows):
    ``speechgap.models.tiny``'s builders make 3 s encoder windows, too short for the eval set's 3.7-5.4 s clips.
    """
    folder = DATA_DIR / RANDOM_MODEL
    if (folder / "model.safetensors").is_file():
        return folder
    import torch
    from transformers import AutoProcessor, Qwen2AudioConfig, Qwen2AudioForConditionalGeneration

    from speechgap.mini import default_model_path

    processor = AutoProcessor.from_pretrained(default_model_path())
    tokenizer = processor.tokenizer
    default = Qwen2AudioConfig.from_pretrained(default_model_path())
    config = Qwen2AudioConfig(
        audio_config={
            "model_type": "qwen2_audio_encoder",
            "num_mel_bins": default.audio_config.num_mel_bins,
            "max_source_positions": default.audio_config.max_source_positions,
            "encoder_layers": 4,
            "encoder_attention_heads": 4,
            "encoder_ffn_dim": 1024,
            "d_model": 256,
        },
        text_config={
            "model_type": "qwen2",
            "vocab_size": default.text_config.vocab_size,
            "hidden_size": 768,
            "intermediate_size": 2048,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "num_key_value_heads": 4,
            "max_position_embeddings": 1024,
            "tie_word_embeddings": False,
            "pad_token_id": tokenizer.pad_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "bos_token_id": None,
        },
        audio_token_index=default.audio_token_index,
    )
    torch.manual_seed(0)
    model = Qwen2AudioForConditionalGeneration(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial, safe_serialization=True)
    processor.save_pretrained(partial)
    partial.rename(folder)
    return folder


def load_adapter(case: str) -> Any:
    from speechgap.mini import default_model_path
    from speechgap.models import load_model

    return load_model(default_model_path() if case == "default" else random_qwen2_audio())


def describe_model(adapter: Any) -> str:
    parameters = sum(p.numel() for p in adapter.model.parameters())
    return (
        f"{parameters / 1e6:.1f}M parameters, {adapter.num_layers} blocks, d = {adapter.hidden_size}, "
        f"protocol {adapter.protocol}"
    )


def states_check(got: list[Any], want: list[Any]) -> tuple[bool, str]:
    """Whether two lists of ``(layers, tokens, dim)`` arrays agree within :data:`SAME_STATES`, and how closely
    (the largest difference, and relative to the largest state)."""
    import numpy as np

    if len(got) != len(want) or any(a.shape != b.shape for a, b in zip(got, want, strict=True)):
        return False, "NO: other shapes"
    difference = max(float(np.abs(a - b).max()) for a, b in zip(got, want, strict=True))
    scale = max(float(np.abs(b).max()) for b in want)
    same = difference <= SAME_STATES
    return (
        same,
        f"{'yes' if same else 'NO'}, max |diff| {difference:.1e} ({difference / scale:.0e} of max |state|)",
    )


# ---------------------------------------------------------------------------------------------- capture
def setup_capture(case_key: str, args: argparse.Namespace) -> Case:
    import numpy as np
    import torch

    adapter = load_adapter(case_key)
    n = (16 if args.quick else 128) if case_key == "default" else (8 if args.quick else 32)
    samples = list(pairs(n))  # audio decoded here, outside every timing
    layers = adapter.num_layers
    batch_size = 8

    def speechgap_batched(chosen: list[Any]) -> list[np.ndarray]:
        return [
            capture.hidden
            for start in range(0, len(chosen), batch_size)
            for capture in adapter.capture_batch(chosen[start : start + batch_size], "speech", layers=None)
        ]

    def speechgap_single(chosen: list[Any]) -> list[np.ndarray]:
        return [adapter.capture(sample, "speech").hidden for sample in chosen]

    def transformers_loop(chosen: list[Any]) -> list[np.ndarray]:
        states = []
        for sample in chosen:
            batch = adapter.build_inputs(sample, "speech")
            start, end = batch.spans[0]
            with torch.inference_mode():
                out = adapter.model(**batch.inputs, output_hidden_states=True)
            states.append(np.stack([hidden[0, start:end].numpy() for hidden in out.hidden_states]))
        return states

    methods = {
        "batch": Method(
            f"speechgap capture_batch (batch {batch_size})",
            lambda: speechgap_batched(samples),
            lambda: speechgap_batched(samples[:batch_size]),
        ),
        "single": Method(
            "speechgap capture (one at a time)",
            lambda: speechgap_single(samples),
            lambda: speechgap_single(samples[:2]),
            versus=("batch",),
        ),
    }
    notes = [
        "transformers' hidden_states[L] is the final norm's output (its convention); it is compared with "
        "speechgap's capture(post_norm=True).final_norm, layers 0..L-1 with speechgap's layers",
    ]
    try:
        import nnsight

        # NNsight(model) replaces the forward of every submodule it wraps: it gets its own copy (same weights),
        # so that speechgap and transformers run the untouched model
        traced = nnsight.NNsight(copy.deepcopy(adapter.model))
        path = next(
            name for name, module in adapter.model.named_modules() if module is adapter.decoder_layers
        )
        blocks = traced
        for part in path.split("."):
            blocks = getattr(blocks, part)

        def nnsight_loop(chosen: list[Any]) -> list[np.ndarray]:
            states = []
            for sample in chosen:
                batch = adapter.build_inputs(sample, "speech")
                start, end = batch.spans[0]
                with torch.inference_mode(), traced.trace(**batch.inputs):
                    first = blocks[0].input.save()
                    outputs = nnsight.save([blocks[index].output for index in range(layers)])
                hidden = [first, *(out[0] if isinstance(out, tuple) else out for out in outputs)]
                states.append(np.stack([h[0, start:end].numpy() for h in hidden]))
            return states

        methods["nnsight"] = Method(
            f"nnsight {nnsight.__version__} trace (one at a time)",
            lambda: nnsight_loop(samples),
            lambda: nnsight_loop(samples[:2]),
            versus=("batch", "single"),
        )
        notes.append(
            "nnsight saves blocks[0].input and every block's output inside `with model.trace(**inputs)`; it "
            "wraps a deep copy of the model (NNsight replaces each submodule's forward)"
        )
    except Exception as err:
        notes.append(f"nnsight NOT AVAILABLE: {type(err).__name__}: {err}")
    methods["transformers"] = Method(
        "transformers output_hidden_states (one at a time)",
        lambda: transformers_loop(samples),
        lambda: transformers_loop(samples[:2]),
        versus=("batch", "single"),
    )

    def check(outputs: dict[str, Any]) -> dict[str, tuple[bool, str]]:
        reference = outputs.get("batch")
        if reference is None:
            return {}
        normed = []
        for start in range(0, len(samples), batch_size):
            chosen = samples[start : start + batch_size]
            for capture in adapter.capture_batch(chosen, "speech", post_norm=True):
                hidden = capture.hidden.copy()
                hidden[-1] = capture.final_norm
                normed.append(hidden)
        result = {}
        for key, states in outputs.items():
            if key == "batch":
                continue
            result[key] = states_check(states, normed if key == "transformers" else reference)
        return result

    spans = [adapter.build_inputs(sample, "speech").spans[0] for sample in samples]
    tokens = statistics.mean(end - start for start, end in spans)
    title = (
        f"capture: speech-span states, layers 0..{layers}, {len(samples)} samples "
        f"(~{tokens:.0f} speech positions each) - {'embedded default' if case_key == 'default' else 'random Qwen2-Audio'}: "
        f"{describe_model(adapter)}"
    )
    return Case(title, methods, check, work=(len(samples), "samples"), notes=notes)


# ---------------------------------------------------------------------------------------------- CKA
def setup_cka(case_key: str, args: argparse.Namespace) -> Case:
    import numpy as np
    import torch
    from cka_speed import make_states  # benchmarks/cka_speed.py: the same seeded states

    from speechgap.metrics import cross_layer_cka, linear_cka

    layers, rows, dim = (13, 256, 128) if args.quick else (13, 2048, 512)
    rng = np.random.default_rng(0)
    signal = rng.standard_normal((rows, 16), dtype=np.float32)
    xs = make_states(rng, layers, rows, dim, signal)
    ys = make_states(rng, layers, rows, dim, signal)
    small = (xs[:, :64], ys[:, :64])

    def loop(x_layers: np.ndarray, y_layers: np.ndarray, debiased: bool) -> np.ndarray:
        return np.array([[linear_cka(x, y, debiased=debiased) for y in y_layers] for x in x_layers])

    methods = {}
    for debiased, name in ((False, "biased"), (True, "debiased")):
        methods[f"speechgap-{name}"] = Method(
            f"speechgap cross_layer_cka, {name}",
            lambda debiased=debiased: cross_layer_cka(xs, ys, debiased=debiased),
            lambda debiased=debiased: cross_layer_cka(*small, debiased=debiased),
        )
        methods[f"loop-{name}"] = Method(
            f"speechgap linear_cka loop ({layers * layers} calls), {name}",
            lambda debiased=debiased: loop(xs, ys, debiased),
            lambda debiased=debiased: loop(*small, debiased),
            versus=(f"speechgap-{name}",),
        )
    notes = [
        "cka-pytorch and torch-cka offer only debiased CKA (the unbiased HSIC of Song et al. 2012, as in Nguyen "
        "et al. 2021), from float32 Gram matrices of hooked module outputs accumulated per batch (minibatch "
        "CKA); here the states are module outputs (one module per layer, returning rows of its layer) and one "
        "batch holds all n rows, so both compute the full-data debiased CKA",
    ]

    class StateLayer(torch.nn.Module):
        """One layer's states as a module: ``forward(rows) -> (len(rows), d)``."""

        def __init__(self, states: np.ndarray) -> None:
            super().__init__()
            self.states = torch.from_numpy(states)

        def forward(self, rows: torch.Tensor) -> torch.Tensor:
            return self.states[rows]

    class StateBank(torch.nn.Module):
        """Every layer's states; the peers hook ``layers.0`` .. ``layers.L-1``."""

        def __init__(self, states: np.ndarray) -> None:
            super().__init__()
            self.layers = torch.nn.ModuleList(StateLayer(layer) for layer in states)

        def forward(self, rows: torch.Tensor) -> list[torch.Tensor]:
            return [layer(rows) for layer in self.layers]

    def one_batch(n: int) -> torch.utils.data.DataLoader:
        dataset = torch.utils.data.TensorDataset(torch.arange(n), torch.zeros(n))
        return torch.utils.data.DataLoader(dataset, batch_size=n)

    try:
        from cka_pytorch.cka import CKACalculator

        def cka_pytorch_matrix(x_layers: np.ndarray, y_layers: np.ndarray) -> np.ndarray:
            calculator = CKACalculator(
                StateBank(x_layers),
                StateBank(y_layers),
                model1_layers=[StateLayer],
                model2_layers=[StateLayer],
                device=torch.device("cpu"),
                verbose=False,
            )
            matrix = calculator.calculate_cka_matrix(one_batch(x_layers.shape[1]), num_epochs=1)
            calculator.reset()
            return matrix.double().numpy()

        methods["cka-pytorch"] = Method(
            f"cka-pytorch {peer_version('cka-pytorch')} CKACalculator, debiased",
            lambda: cka_pytorch_matrix(xs, ys),
            lambda: cka_pytorch_matrix(*small),
            versus=("speechgap-debiased",),
        )
        notes.append(
            "cka-pytorch: calculate_cka_matrix(loader, num_epochs=1) (its default 10 epochs passes the same rows "
            "10 times: the same matrix for 10x the work), default batched_feature_size=64 layer pairs per bmm, "
            "epsilon 1e-4 under its square root (negligible here)"
        )
    except Exception as err:
        notes.append(f"cka-pytorch NOT AVAILABLE: {type(err).__name__}: {err}")
    try:
        import torch_cka

        def torch_cka_matrix(x_layers: np.ndarray, y_layers: np.ndarray) -> np.ndarray:
            names = [f"layers.{index}" for index in range(len(x_layers))]
            comparison = torch_cka.CKA(
                StateBank(x_layers),
                StateBank(y_layers),
                model1_name="speech layers",
                model2_name="text layers",
                model1_layers=names,
                model2_layers=[f"layers.{index}" for index in range(len(y_layers))],
                device="cpu",
            )
            loader = one_batch(x_layers.shape[1])
            comparison.compare(loader, loader)
            return comparison.export()["CKA"].double().numpy()

        methods["torch-cka"] = Method(
            f"torch-cka {peer_version('torch-cka')} CKA.compare, debiased",
            lambda: torch_cka_matrix(xs, ys),
            lambda: torch_cka_matrix(*small),
            versus=("speechgap-debiased",),
        )
        notes.append(
            "torch-cka: CKA(...).compare(loader, loader); it forms each pair's Grams and n x n products anew "
            "(the y layer's Gram and HSIC(L, L) once per pair)"
        )
    except Exception as err:
        notes.append(f"torch-cka NOT AVAILABLE: {type(err).__name__}: {err}")

    def check(outputs: dict[str, Any]) -> dict[str, tuple[bool, str]]:
        result = {}
        for key, matrix in outputs.items():
            if key.startswith("speechgap-"):
                continue
            reference = outputs.get("speechgap-biased" if key.endswith("-biased") else "speechgap-debiased")
            if reference is None:
                continue
            difference = float(np.abs(matrix - reference).max())
            same = difference <= SAME_CKA
            result[key] = (same, f"{'yes' if same else 'NO'}, max |diff| {difference:.1e}")
        return result

    title = (
        f"cross-layer CKA: {layers} x {layers} layers, n = {rows} rows, d = {dim}, float32 states "
        f"(cka_speed.make_states, seed 0)"
    )
    return Case(title, methods, check, notes=notes)


# ---------------------------------------------------------------------------------------------- DTW
DTW_SIZES = ("1500x300", "500x100", "3000x600")


def setup_dtw(case_key: str, args: argparse.Namespace) -> Case:
    import numpy as np

    from speechgap.metrics.alignment import dtw_path

    frames, tokens = (int(part) for part in case_key.split("x"))
    rng = np.random.default_rng(0)
    warm = np.tanh(rng.normal(size=(50, 20)))
    sim = np.tanh(np.random.default_rng(frames * 100003 + tokens).normal(size=(frames, tokens)))
    methods = {
        "speechgap": Method(
            "speechgap dtw_path (from the similarity)", lambda: dtw_path(sim), lambda: dtw_path(warm)
        ),
    }
    notes = []
    try:
        import librosa

        # librosa keeps the first of equally cheap steps in the order diagonal, its second axis, its first:
        # on the transposed cost that is speechgap's diagonal, speech, text (dtw_speed.py explains it)
        cost = np.ascontiguousarray((1.0 - sim).T)
        warm_cost = np.ascontiguousarray((1.0 - warm).T)
        methods["librosa"] = Method(
            f"librosa {librosa.__version__} sequence.dtw (cost ready-made)",
            lambda: librosa.sequence.dtw(C=cost, backtrack=True)[1][::-1, ::-1],
            lambda: librosa.sequence.dtw(C=warm_cost, backtrack=True),
            versus=("speechgap",),
        )
        notes.append("librosa gets C = (1 - sim).T, made outside the timing; its path read as wp[::-1, ::-1]")
    except Exception as err:
        notes.append(f"librosa NOT AVAILABLE: {type(err).__name__}: {err}")

    def check(outputs: dict[str, Any]) -> dict[str, tuple[bool, str]]:
        if "librosa" not in outputs or "speechgap" not in outputs:
            return {}
        same = bool(np.array_equal(outputs["librosa"], outputs["speechgap"]))
        return {"librosa": (same, f"{'yes' if same else 'NO'} (path of {len(outputs['speechgap'])} cells)")}

    title = f"DTW on a {frames} x {tokens} similarity (tanh of seeded normals)"
    return Case(title, methods, check, notes=notes)


# ---------------------------------------------------------------------------------------------- eval
def setup_eval(case_key: str, args: argparse.Namespace) -> Case:
    import torch

    from speechgap.evaluation.run import DEFAULT_BATCH_SIZE, EvalSettings, evaluate

    adapter = load_adapter(case_key)
    n = (16 if args.quick else 128) if case_key == "default" else (8 if args.quick else 64)
    data = pairs(n)
    scratch = Path(tempfile.mkdtemp(prefix="speechgap-peers-eval-"))
    atexit.register(shutil.rmtree, scratch, True)
    runs = itertools.count()
    tokenizer = adapter.tokenizer

    def speechgap_answers(limit: int | None) -> dict[tuple[str, str], str]:
        settings = EvalSettings(max_new_tokens=8, limit=limit)
        result = evaluate(adapter, data, scratch / f"run{next(runs)}", settings, progress=False)
        return {(r["id"], r["modality"]): r["response"] for r in result.to_frame().to_dict("records")}

    def voicebench_loop(count: int) -> dict[tuple[str, str], str]:
        answers = {}
        for modality in ("speech", "text"):
            for index in range(count):
                sample = data[index]
                inputs = adapter.build_inputs(sample, modality).inputs
                with torch.inference_mode():
                    out = adapter.model.generate(**inputs, max_new_tokens=8, do_sample=False)
                new_tokens = out[0, inputs["input_ids"].shape[1] :]
                answers[(sample.id, modality)] = tokenizer.decode(new_tokens, skip_special_tokens=True)
        return answers

    methods = {
        "speechgap": Method(
            f"speechgap.evaluate (default batch {DEFAULT_BATCH_SIZE})",
            lambda: speechgap_answers(None),
            lambda: speechgap_answers(4),
        ),
        "loop": Method(
            "VoiceBench-style loop, generate one at a time",
            lambda: voicebench_loop(len(data)),
            lambda: voicebench_loop(4),
            versus=("speechgap",),
        ),
    }

    def check(outputs: dict[str, Any]) -> dict[str, tuple[bool, str]]:
        if "loop" not in outputs or "speechgap" not in outputs:
            return {}
        ours, theirs = outputs["speechgap"], outputs["loop"]
        differing = [key for key in theirs if ours.get(key) != theirs[key]]
        same = not differing and len(ours) == len(theirs)
        shown = (
            f"; first: {differing[0]}: {ours.get(differing[0])!r} vs {theirs[differing[0]]!r}"
            if differing
            else ""
        )
        return {
            "loop": (
                same,
                f"{'yes' if same else 'NO'}: {len(theirs) - len(differing)}/{len(theirs)} answers{shown}",
            )
        }

    title = (
        f"evaluation: {len(data)} questions x 2 modalities, 8 new tokens, greedy - "
        f"{'embedded default' if case_key == 'default' else 'random Qwen2-Audio'}: {describe_model(adapter)}"
    )
    notes = [
        "speechgap's time and memory include all of evaluate: the run folder, results.jsonl written and fsynced, "
        "scoring and summary.json (its bootstrap intervals draw 10,000 resamples)"
    ]
    return Case(title, methods, check, work=(2 * len(data), "answers"), notes=notes)


SETUPS: dict[str, Callable[[str, argparse.Namespace], Case]] = {
    "capture": setup_capture,
    "cka": setup_cka,
    "dtw": setup_dtw,
    "eval": setup_eval,
}


def cases(section: str, args: argparse.Namespace) -> list[str]:
    if section == "cka":
        return ["13x13"]
    if section == "dtw":
        return list(DTW_SIZES[:1] if args.quick else DTW_SIZES)
    return ["default", RANDOM_MODEL]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default=",".join(SECTIONS), help="sections to run, comma-separated")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (median kept); default 3")
    parser.add_argument("--dtw-repeats", type=int, default=None, help="timed rounds for DTW; default 21")
    parser.add_argument("--quick", action="store_true", help="small sizes and one round: a smoke test")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.dtw_repeats = args.dtw_repeats or (3 if args.quick else 21)
    chosen = [part.strip() for part in args.only.split(",") if part.strip()]
    unknown = [part for part in chosen if part not in SECTIONS]
    if unknown:
        parser.error(f"--only: unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")

    if args.probe is None:
        enter_peers_environment()
    import torch
    import transformers

    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    if args.probe is not None:
        run_probe(args.probe, args)
        return 0

    print_header(args)
    problems: list[str] = []
    for name, version in PEERS.items():
        if peer_version(name) is None:
            problems.append(f"{name} {version} is not installed: no figures for it")
    started = time.perf_counter()
    for section in chosen:
        for case_key in cases(section, args):
            run_case(section, case_key, args, problems)
    print(f"\ntotal {time.perf_counter() - started:.0f} s, load {os.getloadavg()[0]:.2f}")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
