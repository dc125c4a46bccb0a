"""What the fleece package's docstring promises about imports: the analysis path loads no stackwatch
module outside fleece/ (nor SQLAlchemy or the CLI's libraries), so a worker child stays small and fast."""

from __future__ import annotations

import json
import subprocess
import sys

ANALYSIS = [
    "stackwatch.fleece.worker",
    "stackwatch.fleece.runner",
    "stackwatch.fleece.targets",
    "stackwatch.fleece.sbom",
]


def _loaded_after(modules: list[str]) -> list[str]:
    code = f"import sys, json\nfor m in {modules!r}: __import__(m)\nprint(json.dumps(sorted(sys.modules)))"
    return json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)


def test_analysis_path_imports_nothing_outside_fleece():
    loaded = _loaded_after(ANALYSIS)
    assert "stackwatch.fleece.worker" in loaded
    # stackwatch.masking (stdlib only) keeps credentials out of reports
    outside = [m for m in loaded if m.startswith("stackwatch.") and not m.startswith("stackwatch.fleece")
               and m != "stackwatch.masking"]
    assert outside == []
    heavy = [m for m in ("sqlalchemy", "typer", "rich", "openstack", "paramiko", "requests") if m in loaded]
    assert heavy == []  # a source's client library is imported by the child that needs it


def test_kept_reports_import_the_store():
    loaded = _loaded_after(["stackwatch.fleece.reports"])
    assert "stackwatch.store.models" in loaded and "stackwatch.fleece.models" in loaded
