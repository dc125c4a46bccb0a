"""CycloneDX SBOM of a report's packages (cyclonedx-python-lib), with package URLs per manager."""

from __future__ import annotations

import warnings

from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output import OutputFormat, make_outputter
from cyclonedx.schema import SchemaVersion
from packageurl import PackageURL

PURL_TYPE = {"dpkg": "deb", "rpm": "rpm", "apk": "apk"}


def full_version(p: dict) -> str:
    v = f"{p['version']}-{p['release']}" if p.get("release") else p["version"]
    return f"{p['epoch']}:{v}" if p.get("epoch") else v


def purl(p: dict, os_id: str | None) -> PackageURL:
    qual = {"arch": p["arch"]} if p.get("arch") else {}
    if p.get("epoch"):
        qual["epoch"] = str(p["epoch"])
    version = f"{p['version']}-{p['release']}" if p.get("release") else p["version"]
    return PackageURL(PURL_TYPE[p["manager"]], os_id or None, p["name"], version, qual or None)


def bom(report: dict) -> Bom:
    b = Bom()
    os_info = report.get("os") or {}
    b.metadata.component = Component(
        name=report.get("hostname") or report.get("target", "image"),
        type=ComponentType.OPERATING_SYSTEM,
        version=os_info.get("version"),
        description=os_info.get("pretty_name"),
    )
    for p in report.get("packages", []):
        u = purl(p, os_info.get("id"))
        b.components.add(
            Component(
                name=p["name"],
                version=full_version(p),
                type=ComponentType.LIBRARY,
                purl=u,
                bom_ref=u.to_string(),
            )
        )
    return b


def to_json(report: dict) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "incomplete dependency graph": we list packages, not their graph
        return make_outputter(bom(report), OutputFormat.JSON, SchemaVersion.V1_6).output_as_string(indent=1)
