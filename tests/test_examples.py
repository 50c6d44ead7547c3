"""The example pipelines work as written: each YAML parses, every `pal-orchestrator …` line they run names a
command and options the CLI has, and they react to the exit codes as the README says (resume on 130 and 3,
a report step on 1, validate never blocks, the journal kept between runs)."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from orchestrator.cli import app

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
GITHUB = ["github-quarterly-pal.yml", "github-pipeline-self-link.yml"]
AZURE = ["azure-pipelines-quarterly.yml"]
_SHELL_ENDS = {"||", "&&", ";", "|", ">", ">>", "2>", "&", ")", "then", "fi"}


def load(name: str) -> dict[Any, Any]:
    data = yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict), name
    return data


def scripts(doc: Any) -> Iterator[str]:
    """Every shell script of a workflow or pipeline: GitHub `run:`, Azure `script:`/`bash:`/`inlineScript:`."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key in ("run", "script", "bash", "inlineScript") and isinstance(value, str):
                yield value
            else:
                yield from scripts(value)
    elif isinstance(doc, list):
        for item in doc:
            yield from scripts(item)


def command_lines(script: str) -> Iterator[list[str]]:
    """The words of each `pal-orchestrator …` command in a script (continuations joined, shell syntax cut off)."""
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
        while "pal-orchestrator" in words:
            start = words.index("pal-orchestrator")
            if start and words[start - 1] not in _SHELL_ENDS | {"set", "+e"} and words[0] != "pal-orchestrator":
                words = words[start + 1:]  # an argument (pip install pal-orchestrator), not a command
                continue
            rest = words[start + 1:]
            end = next((i for i, w in enumerate(rest) if w in _SHELL_ENDS), len(rest))
            yield ["pal-orchestrator", *rest[:end]]
            words = rest[end:]


def check_command(words: list[str]) -> None:
    group = typer.main.get_command(app)
    name = words[1]
    command = getattr(group, "commands", {}).get(name)
    assert command is not None, f"`pal-orchestrator {name}` is not a command ({' '.join(words)})"
    known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
    for word in words[2:]:
        if word.startswith("--"):
            assert word.split("=", 1)[0] in known, f"`{name}` has no option {word} ({' '.join(words)})"


@pytest.mark.parametrize("name", GITHUB + AZURE)
def test_every_pal_orchestrator_line_names_a_real_command_and_options(name: str) -> None:
    """Each command line an example runs exists in the CLI with exactly those options."""
    lines = [words for script in scripts(load(name)) for words in command_lines(script)]
    assert lines, f"{name} runs no pal-orchestrator command"
    for words in lines:
        check_command(words)


def test_the_checker_catches_a_wrong_option() -> None:
    """The check above is not vacuous: an unknown option or command is reported."""
    with pytest.raises(AssertionError, match="has no option --yes"):
        check_command(["pal-orchestrator", "link", "inv.csv", "--yes"])
    with pytest.raises(AssertionError, match="is not a command"):
        check_command(["pal-orchestrator", "sync", "inv.csv"])
    script = 'set +e\npip install pal-orchestrator\npal-orchestrator link "$I" \\\n  --resume || x'
    assert list(command_lines(script)) == [["pal-orchestrator", "link", "$I", "--resume"]]


def test_the_github_workflow_keeps_the_journal_and_reacts_to_exit_codes() -> None:
    """OIDC, the journal restored before and saved after (always), resume only on 130/3, a report step on 1."""
    doc = load("github-quarterly-pal.yml")
    assert doc["permissions"]["id-token"] == "write"
    steps = doc["jobs"]["link"]["steps"]
    by_name = {s.get("name", ""): s for s in steps}
    text = "\n".join(scripts(doc))
    assert "az storage blob download --auth-mode login" in text and "az storage blob upload --auth-mode login" in text
    save = next(s for n, s in by_name.items() if n.startswith("Save the journal"))
    assert save["if"] == "always()"
    validate = next(s for n, s in by_name.items() if n.startswith("Validate"))
    assert validate["continue-on-error"] is True
    resume = next(s for n, s in by_name.items() if n.startswith("Resume"))
    assert "'130'" in resume["if"] and "'3'" in resume["if"] and "'1'" not in resume["if"]
    report = next(s for n, s in by_name.items() if n.startswith("Report what changed"))
    assert "== '1'" in report["if"]


def test_the_azure_pipeline_uses_a_federated_connection_and_shows_the_summary() -> None:
    """Scheduled, AzureCLI@2 on a service connection, reports published, the Markdown summary on the run page."""
    doc = load("azure-pipelines-quarterly.yml")
    assert doc["schedules"][0]["cron"] and doc["trigger"] == "none"
    tasks = [s for s in doc["steps"] if "task" in s]
    cli_tasks = [t for t in tasks if t["task"] == "AzureCLI@2"]
    assert cli_tasks and all(t["inputs"]["azureSubscription"] for t in cli_tasks)
    assert any(t["task"] == "PublishPipelineArtifact@1" and t["condition"] == "always()" for t in tasks)
    text = "\n".join(scripts(doc))
    assert "##vso[task.uploadsummary]" in text and "--summary-md" in text
    assert '"$code" = 130 ] || [ "$code" = 3 ]' in text and "--resume" in text
    assert "az storage blob upload --auth-mode login" in text


def test_the_readme_quarterly_walkthrough_types_real_commands() -> None:
    """Every `pal-orchestrator …` line of README's "The quarterly run" walkthrough is a command with those options."""
    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The quarterly run", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    lines = [words for words in command_lines(block.replace("#", "; #"))]
    assert {w[1] for w in lines} >= {"validate", "plan", "link", "unlink", "runs", "report"}
    for words in lines:
        check_command([w for w in words if not w.startswith("#")])
