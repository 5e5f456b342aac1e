"""The subtype-biology report in a real browser: headless Chromium loads every image, the
console stays clean, and a screenshot is kept beside the report.

Chromium (Debian's `chromium`) is installed by scripts/install_chromium.sh when missing; the
tests skip only where it cannot be (no apt-get, or not root).
"""

import html as html_module
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from rdls.config import validate_config
from rdls.report.build import build_report
from tests.conftest import REPO
from tests.integration.conftest import snakemake
from tests.unit.report.fixtures import ALL_ON, write_results

pytestmark = pytest.mark.integration

WINDOW_WIDTH = 1400
MAX_SCREENSHOT_HEIGHT = 16000  # Chromium's largest texture
# Injected first in <head> of a copy of the report: records every error event (script errors
# and resources that fail to load, in the capture phase) and console.error/warn calls; at load
# it writes a verdict into the DOM for --dump-dom to carry out.
PROBE = """<script>
window.__problems = [];
window.addEventListener('error', function (e) {
  var t = e.target;
  window.__problems.push(t && t !== window && (t.src || t.href)
    ? 'failed to load ' + String(t.src || t.href).slice(0, 120) : 'error: ' + e.message);
}, true);
['error', 'warn'].forEach(function (level) {
  var original = console[level];
  console[level] = function () {
    window.__problems.push('console.' + level + ': ' + Array.prototype.join.call(arguments, ' '));
    original.apply(console, arguments);
  };
});
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var verdict = {
    images: images.length,
    broken: images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
      .map(function (i) { return (i.alt || i.src).slice(0, 120); }),
    problems: window.__problems,
    height: document.documentElement.scrollHeight,
    sections: document.querySelectorAll('section.main').length
  };
  var out = document.createElement('pre');
  out.id = 'report-verdict';
  out.textContent = JSON.stringify(verdict);
  document.body.appendChild(out);
});
</script>"""


@pytest.fixture(scope="session")
def config() -> dict:
    raw = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    return validate_config(raw, source="config/config.yaml")


@pytest.fixture(scope="session")
def chromium() -> str:
    """Chromium's executable, installed with apt-get by scripts/install_chromium.sh if needed."""
    found = shutil.which("chromium")
    if found:
        return found
    if shutil.which("apt-get") is None:
        pytest.skip("chromium is not installed and apt-get is not available to install it")
    if os.geteuid() != 0:
        pytest.skip("chromium is not installed and installing it with apt-get needs root")
    run = subprocess.run(["bash", str(REPO / "scripts" / "install_chromium.sh")],
                         capture_output=True, text=True, timeout=900)  # fmt: skip
    if run.returncode != 0 or shutil.which("chromium") is None:
        raise AssertionError(f"installing chromium failed:\n{run.stdout}\n{run.stderr}")
    return shutil.which("chromium")


def _chromium(binary: str, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    command = [binary, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
               "--hide-scrollbars", "--enable-logging=stderr", "--v=0", *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def check_in_browser(binary: str, report: Path, screenshot: Path) -> dict:
    """Open a probed copy of ``report`` in headless Chromium; return the verdict and the
    console lines; write a full-page screenshot of the report itself to ``screenshot``."""
    html = report.read_text(encoding="utf-8")
    probed_dir = report.parent / ".browser-check"
    probed_dir.mkdir(exist_ok=True)
    probed = probed_dir / report.name
    # In another folder, so that a relative link the report should not have would break.
    probed.write_text(html.replace("<head>", "<head>\n" + PROBE, 1), encoding="utf-8")
    run = _chromium(binary, "--virtual-time-budget=10000", "--dump-dom", probed.as_uri())
    match = re.search(r'<pre id="report-verdict">(.*?)</pre>', run.stdout, re.DOTALL)
    assert match, f"no verdict in Chromium's DOM (exit {run.returncode}):\n{run.stderr[-3000:]}"
    verdict = json.loads(html_module.unescape(match.group(1)))
    verdict["console"] = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    height = min(MAX_SCREENSHOT_HEIGHT, max(800, int(verdict["height"])))
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    shot = _chromium(binary, f"--screenshot={screenshot}", f"--window-size={WINDOW_WIDTH},{height}",
                     "--virtual-time-budget=5000", report.as_uri())  # fmt: skip
    assert screenshot.is_file(), f"no screenshot (exit {shot.returncode}):\n{shot.stderr[-3000:]}"
    shutil.rmtree(probed_dir)
    return verdict


def assert_clean(verdict: dict, *, min_images: int) -> None:
    assert verdict["images"] >= min_images, verdict
    assert verdict["broken"] == [], f"images that did not load: {verdict['broken']}"
    assert verdict["problems"] == [], f"errors in the page: {verdict['problems']}"
    assert verdict["console"] == [], "console messages:\n" + "\n".join(verdict["console"])
    assert verdict["sections"] == 9  # the eight sections of results and the provenance


def assert_screenshot(path: Path) -> None:
    from PIL import Image

    with Image.open(path) as image:
        assert image.width == WINDOW_WIDTH and image.height >= 800
        grey = image.convert("L")
        # text, tables and figures: far from a blank page
        dark = sum(grey.histogram()[:128]) / (grey.width * grey.height)
        assert dark > 0.002, f"screenshot {path} looks blank ({dark:.4f} dark pixels)"


def test_report_of_a_fixture_run_in_chromium(tmp_path, chromium, config):
    results = tmp_path / "results"
    inputs = write_results(results)
    report = results / "report" / "subtype_biology.html"
    build_report(inputs=inputs, config=config, branches=ALL_ON, out_html=report)
    screenshot = results / "report" / "subtype_biology.png"
    verdict = check_in_browser(chromium, report, screenshot)
    assert_clean(verdict, min_images=30)
    assert_screenshot(screenshot)


def test_a_broken_image_is_caught(tmp_path, chromium, config):
    """The probe itself: a report with an image that cannot load fails the check."""
    results = tmp_path / "results"
    inputs = write_results(results)
    report = results / "report" / "subtype_biology.html"
    build_report(inputs=inputs, config=config, branches=ALL_ON, out_html=report)
    html = report.read_text(encoding="utf-8")
    report.write_text(html.replace("<footer>", '<img src="missing.png" alt="x"><footer>', 1))
    verdict = check_in_browser(chromium, report, results / "report" / "broken.png")
    assert verdict["broken"] == ["x"]
    assert any("failed to load" in p for p in verdict["problems"])


def test_report_of_the_tiny_run_in_chromium(request, chromium):
    if "report.smk" not in (REPO / "Snakefile").read_text():
        pytest.skip("the Snakefile does not include workflow/rules/report.smk yet")
    tiny_run = request.getfixturevalue("tiny_run")  # minutes: only once the rule exists
    target = "results/report/subtype_biology.html"
    snakemake(tiny_run, target, "--cores", "2", "--configfile", "override.yaml")
    report = tiny_run / target
    screenshot = tiny_run / "results" / "report" / "subtype_biology.png"
    verdict = check_in_browser(chromium, report, screenshot)
    assert_clean(verdict, min_images=20)
    assert_screenshot(screenshot)
    html = report.read_text(encoding="utf-8")
    assert 'class="notice error"' not in html
    assert html.count('<article class="card"') >= 2
