"""The workflow's configuration: validated against its schema, defaults filled in."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from rdls.errors import InputError

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"


def load_schema(name: str) -> dict:
    """Read one of the workflow's JSON schemas (written as YAML) by its file stem."""
    with open(SCHEMA_DIR / f"{name}.schema.yaml") as handle:
        return yaml.safe_load(handle)


def _fill_defaults(validator_class):
    """Extend a validator so that it writes each property's default into the instance.

    The defaults live in the schema only, so the config file, the docs and the code can
    never disagree about them.
    """
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, subschema in properties.items():
                if "default" in subschema and key not in instance:
                    instance[key] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_DefaultFillingValidator = _fill_defaults(jsonschema.Draft7Validator)


def validate_config(config: dict[str, Any], *, source: str = "the config") -> dict[str, Any]:
    """Check a config against ``config.schema.yaml`` and return a copy with defaults filled.

    Raises
    ------
    InputError
        Listing every unknown key, wrong type and out-of-range value, each with its key
        path and what the schema allows.
    """
    schema = load_schema("config")
    filled = _typed_command_line_values(copy.deepcopy(dict(config)), schema)
    errors = sorted(
        _DefaultFillingValidator(schema).iter_errors(filled), key=lambda e: list(e.path)
    )
    problems = [_describe(error, schema) for error in errors]
    if not problems:
        problems = _cross_key_problems(filled)
    if problems:
        raise InputError(
            f"{len(problems)} problem(s) in {source}:\n" + "\n".join(f"- {p}" for p in problems)
        )
    return filled


_BOOLEANS = ("true", "false")
_YAML_TYPES = {"boolean": bool, "integer": int, "number": (int, float), "null": type(None)}


def _typed_command_line_values(value, schema: dict):
    """Strings where the schema wants no string, read as YAML scalars: ``'false'`` -> False.

    Snakemake reads ``--config demo='{activate: false}'`` with YAML's base loader, which keeps
    every nested scalar a string; ``--config seed=7`` and the config file are typed already.
    A string that is not a value of the wanted type stays as it is and is refused with the
    schema's message.
    """
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        return {
            key: _typed_command_line_values(item, properties.get(key, {}))
            for key, item in value.items()
        }
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_typed_command_line_values(item, schema["items"]) for item in value]
    wanted = schema.get("type")
    wanted = [wanted] if isinstance(wanted, str) else list(wanted or [])
    if not isinstance(value, str) or not wanted:
        return value
    if "string" in wanted:
        # A path or a name, unless it is YAML's null where null is allowed.
        return None if "null" in wanted and value in ("null", "Null", "NULL", "~") else value
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    types = tuple(_YAML_TYPES[name] for name in wanted if name in _YAML_TYPES)
    # Only true and false are booleans (YAML 1.2): a quoted 'yes' or 'on' is a mistake to
    # report, not a value to guess; and bool is an int in Python.
    if isinstance(parsed, bool) and ("boolean" not in wanted or value.lower() not in _BOOLEANS):
        return value
    return parsed if types and isinstance(parsed, types) else value


def _cross_key_problems(config: dict[str, Any]) -> list[str]:
    """Rules between keys that a JSON schema cannot state."""
    problems = []
    consensus = config["subtypes"]["consensus"]
    if consensus["k_min"] > consensus["k_max"]:
        problems.append(
            f"subtypes.consensus.k_min ({consensus['k_min']}) is larger than k_max "
            f"({consensus['k_max']}); set k_min <= k_max."
        )
    k = consensus["k"]
    if k is not None and not consensus["k_min"] <= k <= consensus["k_max"]:
        problems.append(
            f"subtypes.consensus.k ({k}) lies outside k_min..k_max "
            f"({consensus['k_min']}..{consensus['k_max']}); widen the range or change k."
        )
    low, high = consensus["pac_interval"]
    if low >= high:
        problems.append(
            f"subtypes.consensus.pac_interval {[low, high]} must be increasing, e.g. [0.1, 0.9]."
        )
    classifier = config["wsi"]["quantify"]["classifier"]
    if classifier["checkpoint"] and not classifier["classes"]:
        problems.append(
            "wsi.quantify.classifier.checkpoint is set but classes is empty; list the model's "
            "output classes in order, each as {name: ..., compartment: ...}."
        )
    return problems


def _describe(error: jsonschema.ValidationError, schema: dict) -> str:
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        prefix = f"{where}." if error.absolute_path else ""
        return (
            f"unknown key(s) {', '.join(repr(prefix + k) for k in unknown)}; "
            f"allowed here: {', '.join(allowed)}. Fix the spelling or remove the key "
            "(config/config.yaml lists every key with its meaning)."
        )
    description = _description_at(schema, list(error.absolute_path))
    hint = f" ({description})" if description else ""
    if error.validator == "enum":
        allowed = ", ".join(repr(v) for v in error.validator_value)
        return f"key '{where}': {error.instance!r} is not allowed; use one of {allowed}{hint}."
    if error.validator == "type":
        return f"key '{where}': {error.instance!r} is not of type '{error.validator_value}'{hint}."
    return f"key '{where}': {error.message}{hint}."


def _description_at(schema: dict, path: list) -> str:
    node = schema
    for part in path:
        if isinstance(part, int):
            node = node.get("items", {})
        else:
            node = node.get("properties", {}).get(part, {})
    return " ".join(node.get("description", "").split())
