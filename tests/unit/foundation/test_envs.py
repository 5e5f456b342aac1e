"""The conda env of every rule holds what its script imports, pinned as in the lock file.

Conda cannot run here, so this test keeps the env files honest instead: it follows each rule's
script into the rdls modules it imports (lazy imports inside functions included) and checks
that every third-party distribution they need is in the rule's env at the locked version.
"""

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

SCRIPTS = REPO / "workflow" / "scripts"
RULE = re.compile(r"^\s*rule (\w+):\n(.*?)(?=^\s*rule \w+:|\Z)", re.MULTILINE | re.DOTALL)
DIRECTIVE = r"^\s*{}:\s*\n\s*\"([^\"]+)\""


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements" / "lock.txt").read_text().splitlines():
        name, _, version = line.partition("==")
        pins[normalise(name)] = version.split("+")[0]
    return pins


def rules() -> list[tuple[str, str, str]]:
    """(rule, env file, script) for every rule with a script."""
    found = []
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for name, body in RULE.findall(smk.read_text()):
            script = re.search(DIRECTIVE.format("script"), body, re.MULTILINE)
            conda = re.search(DIRECTIVE.format("conda"), body, re.MULTILINE)
            assert conda, f"rule {name} in {smk.name} has no conda: directive"
            if script:
                found.append((name, conda.group(1), script.group(1)))
    return found


def imported_modules(path: Path, seen: set[Path] | None = None) -> set[str]:
    """Top-level names of every module imported by ``path`` and the rdls modules it uses."""
    seen = set() if seen is None else seen
    if path in seen:
        return set()
    seen.add(path)
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for module in modules:
            if module.split(".")[0] != "rdls":
                names.add(module.split(".")[0])
                continue
            for candidate in (SCRIPTS / f"{module.replace('.', '/')}.py",
                              SCRIPTS / module.replace(".", "/") / "__init__.py"):  # fmt: skip
                if candidate.is_file():
                    names |= imported_modules(candidate, seen)
    return names


def env_pins(env_file: Path) -> dict[str, str]:
    spec = yaml.safe_load(env_file.read_text())
    pins = {}
    for entry in spec["dependencies"]:
        if isinstance(entry, dict):
            for requirement in entry.get("pip", []):
                name, _, version = requirement.partition("==")
                pins[normalise(name)] = version
    return pins


RULES = rules()


def test_rules_are_found():
    assert {"demo_mri", "demo_slides", "cohort_overview"} <= {name for name, _, _ in RULES}


@pytest.mark.parametrize(("rule", "env", "script"), RULES, ids=[r[0] for r in RULES])
def test_env_holds_every_import_of_the_rule(rule, env, script):
    rules_dir = REPO / "workflow" / "rules"
    env_file, script_file = rules_dir / env, rules_dir / script
    distributions = packages_distributions()
    needed = set()
    for module in imported_modules(script_file.resolve()):
        if module in sys.stdlib_module_names:
            continue
        assert module in distributions, f"{script}: no installed distribution provides {module}"
        needed |= {normalise(d) for d in distributions[module]}
    missing = needed - set(env_pins(env_file.resolve()))
    assert not missing, f"rule {rule}: {env} lacks {sorted(missing)}"


@pytest.mark.parametrize("env_file", sorted((REPO / "workflow" / "envs").glob("*.yaml")),
                         ids=lambda p: p.name)  # fmt: skip
def test_env_pins_match_the_lock_file(env_file):
    spec = yaml.safe_load(env_file.read_text())
    assert "python=3.11" in spec["dependencies"]
    lock = locked()
    for name, version in env_pins(env_file).items():
        assert name in lock, f"{env_file.name}: {name} is not in requirements/lock.txt"
        assert version == lock[name], f"{env_file.name}: {name}=={version}, lock {lock[name]}"
