"""Fixtures of the sweep tests: a zoo of tiny random models, a small paired dataset, one Ray instance."""

from __future__ import annotations

import json

import pytest
from sweep_data import write_pairs


@pytest.fixture(scope="session")
def tiny_zoo(tmp_path_factory):
    """A zoo folder with two tiny Qwen2-Audio checkpoints (different weights), as `speechgap mini train`
    writes one."""
    from speechgap.models.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("sweep-zoo")
    entries = []
    for k, name in enumerate(("full-a", "lora-b")):
        build_tiny_model("qwen2_audio", root / name, seed=10 + k)
        entries.append({"name": name, "variant": name.split("-")[0], "step": k + 1})
    (root / "zoo.json").write_text(json.dumps({"checkpoints": entries}))
    return root


@pytest.fixture(scope="session")
def pairs(tmp_path_factory):
    return write_pairs(tmp_path_factory.mktemp("sweep-pairs"), 7)


@pytest.fixture(scope="session")
def ray_instance():
    """One local Ray instance (2 CPUs) for the whole test session, stopped at its end."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    yield ray
    ray.shutdown()
