"""The subtype-biology report: every section built from the run's files, written as one page."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from rdls.report import sections
from rdls.report._files import Files
from rdls.report._html import Section, notice, page
from rdls.report.captions import cfg
from rdls.report.inputs import BRANCHES, FILES
from rdls.report.provenance import provenance_section

log = logging.getLogger(__name__)

TITLE = "Subtype biology report"
# The sections in reading order: (anchor, branch that must have run or None, builder)
_ORDER = (
    ("subtypes", "subtypes", sections.subtypes_section),
    ("imaging", "imaging", sections.imaging_section),
    ("survival", "survival", sections.survival_section),
    ("pathology", "wsi", sections.pathology_section),
    ("bulk", "bulk", sections.bulk_section),
    ("scrna", "scrna", sections.scrna_section),
)


def build_report(
    *,
    inputs: Mapping[str, str | Path | Sequence[str | Path]],
    config: Mapping,
    branches: Mapping[str, bool],
    out_html: str | Path,
    title: str = TITLE,
) -> Path:
    """Write the self-contained HTML report of a run.

    Parameters
    ----------
    inputs : mapping
        The files the report reads, keyed as :data:`rdls.report.inputs.FILES` (what
        :func:`rdls.report.inputs.report_inputs` returns); per-item files as lists.
    config : mapping
        The run's validated config: captions quote its settings.
    branches : mapping of branch name to bool
        Which of :data:`rdls.report.inputs.BRANCHES` ran; a branch that did not gets a
        section that says why (from the config), and the rest still renders.
    out_html : path
        The report; its folder is created.

    A section that fails to build (a malformed table) is replaced by an error notice naming
    the problem, logged with its traceback, so one bad file does not cost the whole report.
    """
    started = time.perf_counter()
    unknown = sorted(set(branches) - set(BRANCHES))
    if unknown:
        raise ValueError(f"unknown branch(es) {unknown}; the report knows {list(BRANCHES)}")
    branches = {b: bool(branches.get(b, False)) for b in BRANCHES}
    files = Files(inputs)  # refuses keys it does not know
    # Only the branches that ran are shown, whatever else is passed.
    files = Files({k: v for k, v in inputs.items() if all(branches[b] for b in FILES[k][1])})
    built = [
        _safely(
            "overview",
            "Cohort and quality control",
            lambda: sections.overview_section(files, config, branches),
        ),
        _safely(
            "cards", "Subtypes at a glance", lambda: sections.cards_section(files, config, branches)
        ),
    ]
    for anchor, branch, builder in _ORDER:
        title_ = sections.BRANCH_TITLES[branch]
        if not branches[branch]:
            built.append(sections.off_section(branch, anchor, config, branches))
            continue
        built.append(_safely(anchor, title_, lambda b=builder: b(files, config)))
    repository = Path(__file__).resolve().parents[4]  # workflow/scripts/rdls/report/build.py
    built.append(
        _safely(
            "provenance", "Provenance", lambda: provenance_section(config, repository=repository)
        )
    )
    html = page(
        title=title, subtitle=_subtitle(config, branches), sections=built, footer=_footer(config)
    )
    out_html = Path(out_html)
    out_html.parent.mkdir(parents=True, exist_ok=True)
    out_html.write_text(html, encoding="utf-8")
    log.info(
        "wrote %s (%.1f MB, %d sections) in %.1f s",
        out_html,
        len(html) / 1e6,
        len(built),
        time.perf_counter() - started,
    )
    return out_html


def _safely(anchor: str, title: str, build: Callable[[], Section]) -> Section:
    try:
        return build()
    except Exception as error:
        log.exception("section %s could not be built", anchor)
        return Section(
            anchor,
            title,
            notice(
                f"This section could not be built: {type(error).__name__}: {error}. The log of the "
                "report rule has the details.",
                kind="error",
            ),
        )


def _subtitle(config: Mapping, branches: Mapping[str, bool]) -> str:
    if cfg(config, "demo.activate"):
        cohort = f"Synthetic demo cohort, scale {cfg(config, 'demo.scale')}"
    else:
        cohort = f"Cohort of {cfg(config, 'sheets.subjects', 'the sheets')}"
    ran = [_SHORT[b] for b, on in branches.items() if on]
    return f"{cohort}; seed {cfg(config, 'seed')}. Branches run: {', '.join(ran) or 'none'}."


_SHORT = {
    "imaging": "imaging",
    "subtypes": "subtypes",
    "survival": "survival",
    "wsi": "pathology",
    "scrna": "single-cell RNA-seq",
    "bulk": "bulk RNA-seq",
}


def _footer(config: Mapping) -> str:
    return (
        "Written by the rdls workflow (rule report_subtype_biology). Self-contained: figures "
        "are embedded, nothing is loaded from elsewhere. Full tables are under results/."
    )
