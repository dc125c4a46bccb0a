"""The one masker: worked examples, and hypothesis properties that a random password never survives masking."""

from __future__ import annotations

import ast
import json
import string

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from stackwatch.masking import MASK, is_secret_key, mask, mask_text, mask_url

EXAMPLES = [
    ("amqp://guest:guest@127.0.0.1:5672/", "amqp://guest:***@127.0.0.1:5672/"),
    ("amqp://:pw@h/", "amqp://:***@h/"),  # empty user
    ("amqp://u:p@ss@h/", "amqp://u:***@h/"),  # raw @ in the password
    ("amqp://u:p%40ss%2Fx@h:5672/vh", "amqp://u:***@h:5672/vh"),  # percent-encoded
    ("amqp://u:pw@[::1]:5672/", "amqp://u:***@[::1]:5672/"),  # IPv6 host
    ("postgresql+psycopg://sw:pw@db.example/sw", "postgresql+psycopg://sw:***@db.example/sw"),
    ("a amqp://u:a@h1/ and amqp://v:b@h2/", "a amqp://u:***@h1/ and amqp://v:***@h2/"),
    ("urls=['amqp://u:a@h1/', 'amqp://v:b@h2/']", "urls=['amqp://u:***@h1/', 'amqp://v:***@h2/']"),
    ("amqp://a:1@h1/,amqp://b:2@h2/", "amqp://a:***@h2/"),  # no separator: over-masked, nothing leaks
    ("http://h:8080/i?token=a@b", "http://h:***@b"),  # `@` after a port: over-masked, nothing leaks
    ("rabbit://u:p@h1:5672,u2:p2@h2:5672/", "rabbit://u:***@h2:5672/"),  # oslo's multi-host transport URL
    ("http://h/?next=http://u:pw@h2/", "http://h/?next=http://u:***@h2/"),  # a URL in another's query
    ("amqp://u:a://b@h/", "amqp://u:***@h/"),  # a `://` in the password
    (
        "ConnectionError('cannot reach amqp://u:pw@h:5672/ now')",
        "ConnectionError('cannot reach amqp://u:***@h:5672/ now')",
    ),
    ("http://h/x?token=abc&limit=5&PASSWORD=xyz", "http://h/x?token=***&limit=5&PASSWORD=***"),
    ("GET /img?Secret=s3&x=1 HTTP/1.1", "GET /img?Secret=***&x=1 HTTP/1.1"),
    ("X-Auth-Token: gAAAAAB-xyz_12= next", "X-Auth-Token: *** next"),
    ("{'X-Subject-Token': 'gAAAAA9'}", "{'X-Subject-Token': '***'}"),
    ("Authorization: Bearer abc.def", "Authorization: Bearer ***"),
    ('{"password": "se cret", "user": "u"}', '{"password": "***", "user": "u"}'),
    ('{"password":"a\\"b"}', '{"password":"***"}'),
    ("{'auth': {'password': 'zz', 'username': 'admin'}}", "{'auth': {'password': '***', 'username': 'admin'}}"),
    ("{'password': b'raw'}", "{'password': b'***'}"),
    ('"application_credential_secret": "q", "application_credential_id": "i"',
     '"application_credential_secret": "***", "application_credential_id": "i"'),
    ("password: hunter2", "password: ***"),  # YAML
    ("OS_PASSWORD=x PWD=/root", "OS_PASSWORD=*** PWD=/root"),
    ('password="cut off at the end', 'password="***" off at the end'),
    ("password=[abc", "password=***"),
    (
        '"methods": ["password"], "password": {"user": {"name": "admin", "password": "SEKRIT"}}',
        '"methods": ["password"], "password": {"user": {"name": "admin", "password": "***"}}',
    ),
]
UNCHANGED = [
    "http://127.0.0.1:5000/v3",
    "http://user@host/",
    "http://h/a:b@c",  # `:` and `@` in the path
    "sqlite:////var/lib/stackwatch/stackwatch.db",
    "no password given",
    "token expired: retrying",
    "http://token:***@h/",
    "token_url=http://x/ application_credential_id=abc",
    '"token": {"expires_at": "2026-12-07"}',
]


@pytest.mark.parametrize(("text", "expected"), EXAMPLES)
def test_examples(text, expected):
    assert mask_text(text) == expected
    assert mask_text(expected) == expected  # masking is idempotent


@pytest.mark.parametrize("text", UNCHANGED)
def test_what_is_not_a_secret_is_left_alone(text):
    assert mask_text(text) == text


def test_mask_url_takes_the_whole_string_as_one_url():
    # free text would stop at the space; one URL may hold anything in its password
    assert mask_url("amqp://u:p ss'x@h/?token=z&a=1") == "amqp://u:***@h/?token=***&a=1"
    assert mask_url("sqlite:///x.db") == "sqlite:///x.db"


def test_nested_structures():
    clouds = {
        "clouds": {
            "lab": {
                "auth": {
                    "auth_url": "http://k:5000/v3",
                    "username": "admin",
                    "password": "pw1",
                    "application_credential_id": "acid",
                    "application_credential_secret": "acs",
                },
                "extra": [{"token": "tok"}, "amqp://u:pw2@h/", ("x", {"X-Auth-Token": "t2"})],
                "unset": {"password": None, "secret": ""},
            }
        }
    }
    out = mask(clouds)
    lab = out["clouds"]["lab"]
    assert lab["auth"] == {
        "auth_url": "http://k:5000/v3",
        "username": "admin",
        "password": MASK,
        "application_credential_id": "acid",
        "application_credential_secret": MASK,
    }
    assert lab["extra"] == [{"token": MASK}, "amqp://u:***@h/", ("x", {"X-Auth-Token": MASK})]
    assert lab["unset"] == {"password": None, "secret": ""}  # unset stays visible as unset
    assert clouds["clouds"]["lab"]["auth"]["password"] == "pw1"  # the input is not modified


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("password", True), ("OS_PASSWORD", True), ("X-Auth-Token", True), ("application_credential_secret", True),
        ("client_secret", True), ("api_key", True), ("passphrase", True), ("credentials", True), ("adminPass", True),
        ("Authorization", True), ("username", False), ("auth", False), ("auth_url", False),
        ("application_credential_id", False), ("token_url", False), ("region_name", False), ("PWD", False),
    ],
)
def test_secret_keys(key, secret):
    assert is_secret_key(key) is secret


# --- properties: hypothesis draws passwords with the characters that break naive maskers ---

# free text ends a URL at whitespace and quotes; everything else may be in a password, raw
_PW_CHARS = "".join(c for c in string.printable if c not in string.whitespace + "\"'<>`")
passwords = st.text(alphabet=_PW_CHARS, min_size=1, max_size=40)
users = st.text(alphabet=string.ascii_letters + string.digits + "._-", max_size=12)
hosts = st.sampled_from(["127.0.0.1", "[::1]", "[fe80::1%25eth0]", "rabbit.example", "h"])
ports = st.sampled_from(["", ":5672", ":15671"])
paths = st.sampled_from(["", "/", "/vhost", "/a/b?x=1", "/nova?heartbeat=30"])
schemes = st.sampled_from(["amqp", "amqps", "rabbit", "postgresql+psycopg", "http", "https"])


@settings(max_examples=400, deadline=None)
@given(schemes, users, passwords, hosts, ports, paths, passwords)
@example("amqp", "u", "p@ss", "h", "", "/", "x")
@example("amqp", "", "pw", "h", "", "/", "x")
@example("amqp", "u", "a:b/c%40d@e", "[::1]", ":5672", "/", "@:/%")
def test_url_password_never_survives(scheme, user, pw, host, port, path, pw2):
    url = f"{scheme}://{user}:{pw}@{host}{port}{path}"
    url2 = f"amqp://other:{pw2}@h2/"
    masked = f"{scheme}://{user}:{MASK}@{host}{port}{path}"
    masked2 = f"amqp://other:{MASK}@h2/"
    assert mask_url(url) == masked
    for template in (
        "{u}",
        "connecting to {u} now",
        "ConnectionError('cannot reach {u}: [Errno 111] Connection refused')",
        'AMQPConnectionError("{u}")',
        "urls=['{u}', '{u2}']",
        "first {u} then {u2}",
        "redirected to http://portal.example/login?next={u}",  # after a port it would be over-masked
    ):
        out = mask_text(template.format(u=url, u2=url2))
        assert out == template.format(u=masked, u2=masked2)


# a raw `@` in a query after `host:port` reads as user-info and hides the host too (over-masking, tested above)
_VALUE_CHARS = "".join(c for c in string.printable if c not in string.whitespace + "\"'<>&@")
values = st.text(alphabet=_VALUE_CHARS, min_size=1, max_size=40)
secret_keys = st.sampled_from(
    ["password", "PASSWORD", "token", "Token", "secret", "os_password", "application_credential_secret",
     "X-Auth-Token", "access_token", "client_secret", "api_key"]
)


@settings(max_examples=300, deadline=None)
@given(secret_keys, values, values)
def test_secret_parameters_never_survive(key, value, value2):
    query = f"http://h:8080/img.qcow2?{key}={value}&limit=5&password={value2}"
    assert mask_url(query) == f"http://h:8080/img.qcow2?{key}={MASK}&limit=5&password={MASK}"
    assert mask_text(f"GET {query} HTTP/1.1") == f"GET {mask_url(query)} HTTP/1.1"
    assert mask_text(f"{key}={value} user=admin") == f"{key}={MASK} user=admin"
    assert mask_text(f"{key}: {value}\nregion: r1") == f"{key}: {MASK}\nregion: r1"


@settings(max_examples=300, deadline=None)
@given(secret_keys, st.text(max_size=40), st.text(max_size=10))
def test_json_and_repr_secrets_never_survive(key, value, other):
    doc = {"user": other, key: value, "auth": {"password": value, "project": other}}
    as_json = json.loads(mask_text(json.dumps(doc)))
    as_repr = ast.literal_eval(mask_text(repr(doc)))
    for out in (as_json, as_repr, mask(doc)):
        hidden = MASK if value else ""  # an empty secret stays visibly unset
        assert out[key] == hidden and out["auth"]["password"] == hidden
        assert out["user"] == mask_text(other) and out["auth"]["project"] == mask_text(other)


json_leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.text(alphabet=string.ascii_letters, max_size=8))


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        json_leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(st.sampled_from(["name", "auth", "region", "items", "password", "token", "secret"]),
                            inner, max_size=4),
        ),
        max_leaves=20,
    ),
    passwords,
)
def test_nested_secrets_never_survive(tree, pw):
    secret = f"S3CR3T{pw}"
    wrapped = {"clouds": [tree, {"auth": {"password": secret, "nested": [{"token": secret}]}}],
               "url": f"amqp://u:{secret}@h/"}
    out = json.dumps(mask(wrapped))
    assert "S3CR3T" not in out


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_masked_idempotently(text):
    once = mask_text(text)
    assert mask_text(once) == once


# --- event payloads: what the store keeps and the API returns ---

# the shape of Nova's scheduler.select_destinations.start payload as devcloud's Nova sent it (2026-12-07),
# trimmed; the token is replaced by a made-up one of the same form
SELECT_DESTINATIONS = {
    "request_spec": {
        "num_instances": 1,
        "image": {"id": "2ff0696c-0fa1-4f6a-9d04-c5353a1ec216", "name": "cirros-fake", "disk_format": "raw"},
        "instance_properties": {
            "pci_requests": {
                "_changed_fields": ["requests"],
                "_context": {
                    "user_id": "c2850b754af94d9a9ee253b6997d7b11",
                    "project_id": "ef167ba0515149c68ea4b9139e32e9cd",
                    "auth_token": "gAAAAABmadeUpTokenOfTheSameForm-xyz_0123456789abcdefghijklmnopqrstuvwxyz",
                    "service_token": None,
                    "roles": ["admin", "member"],
                },
            }
        },
    }
}


def test_payload_text_masks_the_token_nova_puts_in_select_destinations():
    from stackwatch.events.model import payload_text

    stored = json.loads(payload_text(SELECT_DESTINATIONS))
    ctx = stored["request_spec"]["instance_properties"]["pci_requests"]["_context"]
    assert ctx["auth_token"] == MASK and ctx["service_token"] is None and ctx["user_id"].startswith("c2850b")
    assert stored["request_spec"]["image"] == SELECT_DESTINATIONS["request_spec"]["image"]
    assert "gAAAAAB" not in payload_text(SELECT_DESTINATIONS)


def test_payload_text_keeps_payloads_without_secrets_byte_for_byte():
    import orjson

    from stackwatch.events.convert import decode_json, parse_notification
    from stackwatch.events.model import payload_text
    from tests.conftest import SAMPLES

    compared = 0
    for path in sorted((SAMPLES / "nova_versioned").glob("*.json")):
        payload = parse_notification(decode_json(path.read_bytes())).payload
        if payload is not None:
            assert payload_text(payload) == orjson.dumps(payload).decode()
            compared += 1
    assert compared > 10
    location = {"locations": [{"url": "swift+https://glance:s3cret@swift.example/v1/AUTH_x/glance/img"}]}
    assert payload_text(location) == '{"locations":[{"url":"swift+https://glance:***@swift.example/v1/AUTH_x/glance/img"}]}'


def test_an_amqp_url_that_cannot_be_parsed_is_refused_without_its_password():
    from stackwatch.events.monitors.amqp_config import MonitorConfigError, parse_amqp_section

    with pytest.raises(MonitorConfigError) as err:
        parse_amqp_section({"urls": ["amqp://stackwatch:se/cret@broker:5672/"]})
    assert "amqp://stackwatch:***@broker:5672/: cannot read the host and port; percent-encode" in str(err.value)
    assert "se/" not in str(err.value) and "cret" not in str(err.value)
