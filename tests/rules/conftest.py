"""The rules tests share the delivery tests' migrated store fixture (`engine`)."""

from tests.delivery.conftest import engine  # noqa: F401
