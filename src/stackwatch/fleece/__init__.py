"""Fleece (SmartState analysis): blockio -> container -> volume -> fs -> inspect, reading only needed blocks.

Holds the sources (blockio, http, sftp, openstack, targets, and backing: where a backing file may be read),
the format readers (container, qcow2, vmdk, volume, mbr, lvm, fs, inspect/), one image's analysis
(analyze), its isolation (worker) and many targets at once (runner), the SBOM writer (sbom), and the
kept reports (models: their table, reports: save/list/get).

May import: the analysis path (everything but models and reports; what a worker child loads) imports
nothing of stackwatch outside fleece/ but stackwatch.masking (stdlib only), so a child starts with no
database or configuration code (tests/fleece/test_imports.py checks it). models and reports import
stackwatch.store (the shared declarative Base, column types and store errors), and only the CLI and the API
import them.
"""
