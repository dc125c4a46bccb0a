"""Command line (typer + rich): one module per command group, assembled in cli.main, which imports a group's
module only when the command line names it.

May import: any layer.
"""
