"""The config is checked against its schema at start: unknown keys, types, ranges, defaults."""

import re

import pytest
import yaml

from rdls.config import load_schema, validate_config
from rdls.errors import InputError


@pytest.fixture
def shipped_config(repo):
    with open(repo / "config" / "config.yaml") as handle:
        return yaml.safe_load(handle)


def test_shipped_config_is_valid_and_selects_the_default_demo(shipped_config):
    config = validate_config(shipped_config)
    assert config["demo"] == {"activate": True, "scale": "default", "outdir": "results/demo",
                              "mri_signal": "mixed", "centre_case_mix": False}  # fmt: skip
    assert config["seed"] == 42


def test_defaults_fill_an_empty_config():
    config = validate_config({})
    assert config["demo"]["activate"] is True
    assert config["sheets"]["subjects"] == "config/subjects.tsv"
    assert config["clinical"]["covariates"] == ["age", "sex", "t_stage", "n_stage", "cea_ng_ml"]
    assert config["qc"]["allow_exclusions"] is True


def test_validation_does_not_modify_its_argument():
    config = {"demo": {"scale": "tiny"}}
    validate_config(config)
    assert config == {"demo": {"scale": "tiny"}}


def test_unknown_nested_key_is_named_with_its_path_and_the_allowed_keys():
    with pytest.raises(InputError) as error:
        validate_config({"demo": {"scal": "tiny"}}, source="config/config.yaml")
    message = str(error.value)
    assert "config/config.yaml" in message
    assert "unknown key(s) 'demo.scal'" in message
    assert "allowed here: activate, centre_case_mix, mri_signal, outdir, scale" in message


def test_unknown_top_level_key_is_refused():
    with pytest.raises(InputError, match=r"unknown key\(s\) 'imaging_typo'"):
        validate_config({"imaging_typo": {}})


def test_wrong_type_names_the_key_and_its_meaning():
    with pytest.raises(InputError) as error:
        validate_config({"seed": "forty-two"})
    message = str(error.value)
    assert "key 'seed': 'forty-two' is not of type 'integer'" in message
    assert "every random step" in message  # the description tells what the key is for


def test_value_outside_the_enum_lists_the_allowed_values():
    with pytest.raises(InputError) as error:
        validate_config({"demo": {"scale": "huge"}})
    expected = "key 'demo.scale': 'huge' is not allowed; use one of 'tiny', 'default', 'paper'"
    assert expected in str(error.value)


def test_out_of_range_value_is_refused():
    with pytest.raises(InputError, match="key 'seed': -1 is less than the minimum of 0"):
        validate_config({"seed": -1})


def test_every_problem_is_reported_at_once():
    with pytest.raises(InputError, match=r"^3 problem\(s\)"):
        validate_config({"seed": "x", "demo": {"scale": "huge"}, "typo": 1})


def _walk(schema, path=""):
    for key, sub in schema.get("properties", {}).items():
        yield f"{path}{key}", sub
        yield from _walk(sub, f"{path}{key}.")


def test_every_config_key_is_described_and_objects_are_closed():
    schema = load_schema("config")
    assert schema["additionalProperties"] is False
    for key, sub in _walk(schema):
        assert sub.get("description"), f"config key {key} has no description"
        if sub.get("type") == "object":
            assert sub.get("additionalProperties") is False, f"{key} accepts unknown keys"


def test_every_schema_key_appears_in_the_shipped_config(shipped_config):
    """config/config.yaml shows and comments every key, so users see what they can set."""

    def keys(node, path=""):
        for key, value in node.items():
            yield f"{path}{key}"
            if isinstance(value, dict):
                yield from keys(value, f"{path}{key}.")

    schema_keys = {key for key, _ in _walk(load_schema("config"))}
    assert schema_keys == set(keys(shipped_config))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"subtypes": {"consensus": {"k_min": 5, "k_max": 3}}}, "k_min (5) is larger than k_max"),
        ({"subtypes": {"consensus": {"k": 9}}}, "k (9) lies outside k_min..k_max (2..6)"),
        ({"subtypes": {"consensus": {"pac_interval": [0.9, 0.1]}}}, "must be increasing"),
    ],
)
def test_settings_that_contradict_each_other_are_refused(override, message):
    with pytest.raises(InputError, match=re.escape(message)):
        validate_config(override)


def test_typed_values_nested_in_a_command_line_mapping_are_read_as_yaml():
    """snakemake --config demo='{activate: false}' passes the nested values as strings."""
    config = validate_config({
        "demo": {"activate": "false", "scale": "tiny"},
        "subtypes": {"consensus": {"k": "3", "pac_interval": ["0.1", "0.9"]}},
        "imaging": {"encoder": {"checkpoint": "null"}},
    })  # fmt: skip

    assert config["demo"]["activate"] is False
    assert config["subtypes"]["consensus"]["k"] == 3
    assert config["subtypes"]["consensus"]["pac_interval"] == [0.1, 0.9]
    assert config["imaging"]["encoder"]["checkpoint"] is None


@pytest.mark.parametrize(
    ("override", "key"),
    [({"demo": {"activate": "maybe"}}, "demo.activate"),
     ({"subtypes": {"consensus": {"k": "true"}}}, "subtypes.consensus.k")],
)  # fmt: skip
def test_a_command_line_string_of_the_wrong_type_is_still_refused(override, key):
    with pytest.raises(InputError, match=re.escape(f"key '{key}'")):
        validate_config(override)
