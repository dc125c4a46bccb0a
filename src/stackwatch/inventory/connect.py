"""An openstacksdk connection for a provider: its ``cloud`` from clouds.yaml, or the OS_* variables."""

from __future__ import annotations

from typing import Any

from stackwatch.config.settings import ProviderConfig


class ProviderConnectError(Exception):
    """The provider's cloud is not configured or authentication failed (message never holds a secret)."""


def connect(provider: ProviderConfig) -> Any:
    import openstack
    from keystoneauth1 import exceptions as ks_exc
    from openstack import exceptions as os_exc

    try:
        conn = openstack.connect(cloud=provider.cloud) if provider.cloud else openstack.connect()
        conn.authorize()
    except os_exc.ConfigException as exc:
        raise ProviderConnectError(f"provider {provider.name}: cloud configuration: {exc}") from None
    except (os_exc.SDKException, ks_exc.ClientException) as exc:
        raise ProviderConnectError(f"provider {provider.name}: cannot authenticate: {exc.__class__.__name__}") from None
    return conn
