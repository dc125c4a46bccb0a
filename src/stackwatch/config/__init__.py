"""Configuration: one YAML file validated with pydantic, environment overrides, data-dir defaults.

May import: nothing else of stackwatch.
"""
