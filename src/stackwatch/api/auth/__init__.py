"""Authenticators behind `api.identity`: local API tokens (stored hashed), Keystone token validation, and the
request authenticator that turns either into a `Caller` (401/403 otherwise).

May import: stackwatch.api.identity, stackwatch.config, stackwatch.store, stackwatch.masking; keystoneauth1.
"""
