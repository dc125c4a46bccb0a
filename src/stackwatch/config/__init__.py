"""Configuration: one YAML file validated with pydantic, environment overrides, data-dir defaults; env.py
holds the names alone (variables, the monitor entry-point group) for a fast CLI start.

May import: nothing else of stackwatch.
"""
