"""Command line (typer + rich): one module per command group, assembled in cli.main.

May import: any layer.
"""
