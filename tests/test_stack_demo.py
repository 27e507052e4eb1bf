"""`make run` loads a two-round demo panel: both round files, in round order, generated once."""

from __future__ import annotations

from pathlib import Path

from tasks.ingest.generate import generate_panel, write_panel
from tasks.stack import demo_files


def test_demo_files_are_generated_once_and_come_in_round_order(tmp_path: Path) -> None:
    calls: list[tuple[str, ...]] = []

    def run(*command: str) -> None:
        """Stands in for `rtv generate`: the same panel, only smaller, written the same way."""
        calls.append(command)
        out = Path(command[command.index("--out") + 1])
        rounds = int(command[command.index("--rounds") + 1])
        write_panel(generate_panel(40, rounds, seed=int(command[command.index("--seed") + 1])), out)

    first = demo_files(tmp_path, run)
    assert len(calls) == 1
    command = calls[0]
    assert command[1:2] == ("generate",) and command[-1] == str(tmp_path / "demo")
    assert command[command.index("--households") + 1] == "2000"
    assert command[command.index("--rounds") + 1] == "2"
    assert command[command.index("--seed") + 1] == "7"
    assert command[command.index("--bad-rate") + 1] == "0.03"
    assert [p.name for p in first] == ["households-2025-Q1.csv", "households-2026-Q1.csv"]
    assert all(p.is_file() for p in first)

    again = demo_files(tmp_path, run)  # a restart: the files are there, nothing is regenerated
    assert again == first and len(calls) == 1
