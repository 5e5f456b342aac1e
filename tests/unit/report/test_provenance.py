"""rdls.report.provenance: the report says what produced it, when, and with which config."""

from __future__ import annotations

import copy

from rdls.report.provenance import config_digest, provenance, provenance_section
from tests.conftest import REPO


def test_the_facts_name_version_commit_python_packages_and_config(config):
    facts = provenance(config, repository=REPO)
    assert facts["rdls"] and facts["python"].startswith("3.")
    assert {"numpy", "pandas", "lifelines", "snakemake"} <= set(facts["packages"])
    assert facts["written"].endswith("UTC")
    assert len(facts["config_sha256"]) == 64
    assert facts["commit"] != "unknown"


def test_equal_configs_share_a_digest_and_any_change_alters_it(config):
    same = copy.deepcopy(config)
    assert config_digest(same) == config_digest(config)
    same["seed"] = config["seed"] + 1
    assert config_digest(same) != config_digest(config)


def test_outside_a_git_checkout_the_commit_is_said_to_be_unknown(config, tmp_path):
    assert provenance(config, repository=tmp_path)["commit"] == "unknown (not a git checkout)"
    assert provenance(config)["commit"] == "unknown"


def test_the_section_lists_the_packages(config):
    section = provenance_section(config, repository=REPO)
    assert section.anchor == "provenance"
    assert "Config SHA-256" in section.body and "lifelines" in section.body
