# stackwatch devcloud template, rendered into <state>/etc by stackwatch.devcloud.render.
# Ported from the real-openstack recipe (stackwatch shared reference, run-tested 2026-11-22), Apache-2.0.
# WSGI shim: neutron 29.0.0 API-only process (uwsgi) + SQLAlchemy 2.1 fails GET /v2.0/ports with
# "AttributeError: type object 'Port' has no attribute 'port_forwardings'" until ORM mappers are configured.
from neutron.wsgi.api import application  # noqa
import sqlalchemy.orm

sqlalchemy.orm.configure_mappers()
