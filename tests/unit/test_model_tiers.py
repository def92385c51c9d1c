"""The tiers are named by what their files say: the settings' default, the served names and the model
line `costmesh status` prints for each model server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from launcher import components
from launcher import stack as launcher
from launcher.model_info import MARKER, describe
from launcher.process import Component
from launcher.settings import StackSettings
from services.cli import main as cli
from services.inference.settings import InferenceSettings

LARGE = "qwen2.5-coder-1.5b-instruct"
STAND_IN = "qwen2.5-coder-0.5b-instruct-awq"


@pytest.fixture
def stack_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """StackSettings() from a clean environment (make test exports the 0.5B), with folders under tmp_path."""
    for name in ("COSTMESH_STACK_LARGE_MODEL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for key in ("models_dir", "run_dir", "data_dir"):
        monkeypatch.setenv(f"COSTMESH_STACK_{key.upper()}", str(tmp_path / key))
    return tmp_path / "models_dir"


def _prepared(models_dir: Path, folder: str, **marker: str) -> None:
    (models_dir / folder).mkdir(parents=True)
    (models_dir / folder / MARKER).write_text(json.dumps({"sha256": "ab" * 32, **marker}))


def test_the_large_tier_is_the_15b_by_default_and_the_inference_service_agrees(stack_env: Path) -> None:
    settings = StackSettings()
    assert settings.large_model == LARGE
    assert InferenceSettings().large_model == LARGE
    env = components.service(settings, "inference").env
    assert env["COSTMESH_INFERENCE_LARGE_MODEL"] == LARGE
    assert env["COSTMESH_INFERENCE_SMALL_MODEL"] == "smollm2-135m-instruct"


def test_the_05b_stand_in_is_served_under_its_own_name(stack_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSTMESH_STACK_LARGE_MODEL", STAND_IN)
    settings = StackSettings()
    command = components.vllm(settings, "large").command
    assert command[command.index("--served-model-name") + 1] == STAND_IN
    assert command[command.index("--model") + 1] == str(settings.models_dir / STAND_IN)
    monkeypatch.setenv("COSTMESH_STACK_LARGE_MODEL", "qwen2.5-0.5b-instruct")  # the old, wrong name
    with pytest.raises(ValueError, match="large_model"):
        StackSettings()


def test_describe_reads_the_gguf_name_and_quant_from_the_marker(tmp_path: Path) -> None:
    _prepared(tmp_path, LARGE, gguf_name="Qwen2.5 Coder 1.5B Instruct GGUF", quant="Q4_K_M")
    assert describe(tmp_path / LARGE) == "model Qwen2.5 Coder 1.5B Instruct GGUF, Q4_K_M"


def test_describe_copes_with_old_markers_and_missing_folders(tmp_path: Path) -> None:
    _prepared(tmp_path, "old", licence="Apache-2.0")  # converted before markers said what the GGUF is
    assert describe(tmp_path / "old") == "model unknown, unknown"
    assert describe(tmp_path / "absent") == "absent not prepared (scripts/prepare_models.py)"
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / MARKER).write_text("{")
    assert "unreadable" in describe(tmp_path / "broken")


def test_status_prints_each_model_servers_file_name_and_quant(
    stack_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _prepared(stack_env, "smollm2-135m-instruct", gguf_name="Smollm2 135M 8k Lc100K Mix1 Ep2", quant="Q4_1")
    _prepared(stack_env, LARGE, gguf_name="Qwen2.5 Coder 1.5B Instruct GGUF", quant="Q4_K_M")
    real_stack = launcher.stack

    def unprobed(settings: StackSettings) -> list[Component]:  # nothing is started: every probe says no
        parts = real_stack(settings)
        for part in parts:
            part.probe = lambda: False
        return parts

    monkeypatch.setattr(launcher, "stack", unprobed)
    assert cli.main(["status"]) == 3  # nothing healthy
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert lines["vllm-large"].rstrip().endswith("model Qwen2.5 Coder 1.5B Instruct GGUF, Q4_K_M")
    assert f"({LARGE})  down" in lines["vllm-large"]  # the address column fits the served name
    assert lines["vllm-small"].rstrip().endswith("model Smollm2 135M 8k Lc100K Mix1 Ep2, Q4_1")
    assert lines["ray-serve"].rstrip().endswith("model Smollm2 135M 8k Lc100K Mix1 Ep2, Q4_1")
