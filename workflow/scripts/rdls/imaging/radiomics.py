"""Radiomic features with pyradiomics: parameter files, the extractor and one subject's features.

The workflow's default parameter file is ``config/radiomics.yaml``. :func:`load_params` reads
and checks a parameter file with pyradiomics' own schema, :func:`make_extractor` builds the
extractor once per job, and :func:`extract_features` runs it on one image and mask held in
memory. Reading files and deciding what to do with a subject whose mask pyradiomics refuses
is the caller's business.

This module shares its name with pyradiomics' package ``radiomics``; absolute imports keep the
two apart (``import radiomics`` always means pyradiomics).
"""

from __future__ import annotations

import copy
import difflib
import functools
import logging
import re
import warnings
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pykwalify.core
import pykwalify.errors
import SimpleITK as sitk
import yaml
from radiomics import featureextractor, getImageTypes, getParameterValidationFiles
from threadpoolctl import threadpool_limits

from rdls.errors import InputError

# pyradiomics logs every step at INFO; the workflow's logs keep its warnings and errors only.
_RADIOMICS_LOG_LEVEL = logging.WARNING

_FIX = (
    "Correct the key or value named; pyradiomics documents every setting at "
    "https://pyradiomics.readthedocs.io/en/latest/customization.html, and "
    "config/radiomics.yaml is a working example."
)


def load_params(path) -> dict:
    """Read a pyradiomics parameter file and check it against pyradiomics' schema.

    Parameters
    ----------
    path : str or pathlib.Path
        A YAML parameter file with the top-level keys ``imageType``, ``featureClass`` and
        ``setting`` (each optional), as documented by pyradiomics.

    Returns
    -------
    dict
        The parameters as read, ready for :func:`make_extractor`.

    Raises
    ------
    rdls.errors.InputError
        The file does not exist, cannot be read, is not YAML, or names a setting, image type,
        feature class or feature that pyradiomics does not know (or gives one a value of the
        wrong type or range). The message names the file, the offending key and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"{path}: pyradiomics parameter file does not exist. Fix the path, or use the "
            "workflow's default config/radiomics.yaml."
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(
            f"{path}: cannot read the pyradiomics parameter file ({error}). Make it a readable "
            "UTF-8 text file."
        ) from error
    try:
        params = yaml.safe_load(text)
    except yaml.YAMLError as error:
        where = ""
        mark = getattr(error, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(error, "problem", None) or str(error)
        raise InputError(
            f"{path}: not valid YAML{where} ({problem}). Fix the syntax; "
            "config/radiomics.yaml is a working example."
        ) from error
    _check_params(params, source=str(path))
    return params


def make_extractor(params: dict) -> featureextractor.RadiomicsFeatureExtractor:
    """Build a pyradiomics feature extractor from checked parameters.

    Parameters
    ----------
    params : dict
        Parameters as returned by :func:`load_params`: ``imageType``, ``featureClass`` and
        ``setting``. Image types and feature classes left out take pyradiomics' defaults
        (``Original`` only; every feature class, shape2D included, which pyradiomics
        computes only with ``force2D``).

    Returns
    -------
    radiomics.featureextractor.RadiomicsFeatureExtractor
        The configured extractor. pyradiomics' logger is set to WARNING, so that a job's log
        holds its warnings and errors but not its progress messages.

    Raises
    ------
    rdls.errors.InputError
        The parameters do not pass pyradiomics' schema.
    """
    _check_params(params, source="radiomics parameters")
    logging.getLogger("radiomics").setLevel(_RADIOMICS_LOG_LEVEL)
    with _quiet_pykwalify():
        return featureextractor.RadiomicsFeatureExtractor(copy.deepcopy(params))


def extract_features(
    extractor: featureextractor.RadiomicsFeatureExtractor,
    image: sitk.Image,
    mask: sitk.Image,
    *,
    label: int = 1,
) -> dict[str, float]:
    """Compute one subject's radiomic features.

    Parameters
    ----------
    extractor : radiomics.featureextractor.RadiomicsFeatureExtractor
        From :func:`make_extractor`.
    image : SimpleITK.Image
        The image, as read (the extractor normalises and resamples it as configured).
    mask : SimpleITK.Image
        The region of interest on the image's grid.
    label : int, default 1
        The mask value that marks the region of interest.

    Returns
    -------
    dict of str to float
        Feature name (``<imageType>_<featureClass>_<feature>``, for example
        ``original_shape_VoxelVolume`` or ``wavelet-LLH_glcm_Contrast``) to value, in
        pyradiomics' order, without pyradiomics' ``diagnostics_*`` entries. A feature that
        pyradiomics cannot compute for this region is NaN.

    Raises
    ------
    TypeError
        ``image`` or ``mask`` is not a SimpleITK image.
    ValueError
        pyradiomics refuses the region of interest (label absent, too few voxels or
        dimensions, image and mask geometry differ). The caller knows the files and turns
        this into an error that names them.

    Notes
    -----
    BLAS is held to one thread while pyradiomics runs: its linear algebra (the GLCM's MCC
    feature) is on matrices of a few dozen rows, where threads only compete with each other
    and with the other jobs on the node. With OpenBLAS's default threads on two busy cores,
    extraction took 7 times as long.
    """
    for role, value in (("image", image), ("mask", mask)):
        if not isinstance(value, sitk.Image):
            raise TypeError(f"{role} must be a SimpleITK.Image, got {type(value).__name__}")
    with threadpool_limits(limits=1, user_api="blas"):
        result = extractor.execute(image, mask, label=int(label))
    return {
        name: float(value) for name, value in result.items() if not name.startswith("diagnostics_")
    }


def feature_table(rows: list[dict], subject_ids) -> pd.DataFrame:
    """Stack per-subject features into one table, one row per subject.

    Parameters
    ----------
    rows : list of dict
        Outputs of :func:`extract_features`, all with the same features.
    subject_ids : sequence of str
        One identifier per row, in the same order.

    Returns
    -------
    pandas.DataFrame
        Index ``subject_id``; columns the features in the first row's order.

    Raises
    ------
    ValueError
        The numbers of rows and identifiers differ, an identifier repeats, or a row's
        features differ from the first row's.
    """
    subject_ids = [str(s) for s in subject_ids]
    if len(rows) != len(subject_ids):
        raise ValueError(f"{len(rows)} feature rows but {len(subject_ids)} subject ids")
    repeated = sorted({s for s in subject_ids if subject_ids.count(s) > 1})
    if repeated:
        raise ValueError(f"subject ids repeat: {', '.join(repeated)}")
    columns = list(rows[0]) if rows else []
    for subject, row in zip(subject_ids, rows, strict=True):
        if list(row) != columns:
            missing = sorted(set(columns) - set(row))
            extra = sorted(set(row) - set(columns))
            raise ValueError(
                f"subject {subject}: features differ from subject {subject_ids[0]}'s "
                f"(missing {missing[:5]}, extra {extra[:5]}); extract every subject with "
                "the same parameters"
            )
    table = pd.DataFrame.from_records(rows, columns=columns, index=subject_ids)
    table.index.name = "subject_id"
    return table


def _check_params(params, *, source: str) -> None:
    """Raise InputError unless ``params`` passes pyradiomics' schema and our own checks."""
    if params is None:
        raise InputError(
            f"{source}: the parameter file is empty. Give at least 'imageType', "
            "'featureClass' or 'setting'; config/radiomics.yaml is a working example."
        )
    if not isinstance(params, dict):
        raise InputError(
            f"{source}: expected a mapping with keys 'imageType', 'featureClass' and "
            f"'setting', got a {type(params).__name__}. {_FIX}"
        )
    _, schema_funcs = getParameterValidationFiles()
    core = None
    try:
        with _quiet_pykwalify():
            core = pykwalify.core.Core(
                source_data=copy.deepcopy(params),
                schema_data=copy.deepcopy(_schema()),
                extensions=[schema_funcs],
            )
            core.validate(raise_exception=True)
    except pykwalify.errors.SchemaError as error:
        messages = core.validation_errors if core is not None else None
        problems = [_explain(message) for message in messages or [error.msg]]
        raise InputError(f"{source}: {_sentence('; '.join(problems))} {_FIX}") from None
    except pykwalify.errors.PyKwalifyException as error:
        raise InputError(f"{source}: {_sentence(str(error.msg))} {_FIX}") from None
    except (ValueError, TypeError) as error:
        # pyradiomics' own checks (image types, feature classes and names, interpolator,
        # wavelet, weighting) raise these with a message that lists the valid choices.
        raise InputError(f"{source}: {_sentence(_suggest(str(error)))} {_FIX}") from error
    image_types = params.get("imageType") or {}
    settings = params.get("setting") or {}
    if "LoG" in image_types and not (image_types["LoG"] or {}).get("sigma", settings.get("sigma")):
        raise InputError(
            f"{source}: image type 'LoG' has no 'sigma', so pyradiomics would compute no LoG "
            "features. Give the filter widths in mm, for example 'LoG: {sigma: [2.0, 4.0]}'."
        )


def _explain(message: str) -> str:
    """Reword one pykwalify message; suggest the setting meant where a key is unknown."""
    unknown = re.match(r"Key '(.+)' was not defined\. Path: '(.*)'", message)
    if not unknown:
        return message
    key, where = unknown.groups()
    if where == "":
        return (
            f"unknown top-level key '{key}' (pyradiomics knows 'imageType', 'featureClass', "
            "'setting' and 'voxelSetting')"
        )
    hint = difflib.get_close_matches(key, _setting_names(), n=1)
    did_you_mean = f"; did you mean '{hint[0]}'?" if hint else ""
    return f"unknown setting '{key}' under '{where.strip('/')}'{did_you_mean}"


def _suggest(message: str) -> str:
    """Add the closest image type to pyradiomics' 'Image Type X is not recognized'."""
    unknown = re.match(r"Image Type (\S+) is not recognized", message)
    if unknown:
        hint = difflib.get_close_matches(unknown.group(1), getImageTypes(), n=1)
        if hint:
            return f"{message.rstrip('.')}; did you mean '{hint[0]}'?"
    return message


def _sentence(text: str) -> str:
    return text if text.endswith((".", "?")) else text + "."


def _setting_names() -> list[str]:
    mapping = _schema()["mapping"]
    return list(mapping["setting"]["mapping"]) + list(mapping["voxelSetting"]["mapping"])


@functools.cache
def _schema() -> dict:
    """pyradiomics' parameter schema, parsed once (pykwalify would parse it on every check)."""
    schema_file, _ = getParameterValidationFiles()
    with open(schema_file, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@contextmanager
def _quiet_pykwalify():
    """Silence what pykwalify says besides the error it raises.

    It logs each problem at ERROR before raising, and imports pyradiomics' schema functions
    with a loader method that Python deprecates; neither is for the user to act on.
    """
    logger = logging.getLogger("pykwalify")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message="the load_module", category=DeprecationWarning
            )
            yield
    finally:
        logger.setLevel(level)
