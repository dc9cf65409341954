"""Environment variables become settings: tables of cases for each parser."""

from pathlib import Path

import pytest

from dashboard import env


@pytest.mark.parametrize(
    ("raw", "default", "expected"),
    [
        (None, False, False),
        (None, True, True),
        ("1", False, True),
        ("true", False, True),
        ("TRUE", False, True),
        (" yes ", False, True),
        ("on", False, True),
        ("0", True, False),
        ("false", True, False),
        ("no", True, False),
        ("", True, False),
    ],
)
def test_parse_bool(raw, default, expected):
    assert env.parse_bool(raw, default=default) is expected


def test_parse_bool_refuses_ambiguous_words():
    with pytest.raises(ValueError, match="boolean"):
        env.parse_bool("maybe", default=False)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, ["127.0.0.1", "localhost"]),
        ("example.com", ["example.com"]),
        ("a.example, b.example ,", ["a.example", "b.example"]),
        ("", []),
    ],
)
def test_parse_list(raw, expected):
    assert env.parse_list(raw, default=["127.0.0.1", "localhost"]) == expected


def test_database_defaults_to_a_sqlite_file(tmp_path: Path):
    config = env.database_config(None, default_sqlite_path=tmp_path / "db.sqlite3")
    assert config == {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "db.sqlite3")}


def test_database_url_selects_postgresql(tmp_path: Path):
    config = env.database_config(
        "postgres://flows:pw@db.example:5433/flows", default_sqlite_path=tmp_path / "x"
    )
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"], config["USER"]) == (
        "db.example",
        5433,
        "flows",
        "flows",
    )


@pytest.mark.parametrize(
    ("url", "backend"),
    [
        (None, "channels.layers.InMemoryChannelLayer"),
        ("", "channels.layers.InMemoryChannelLayer"),
        ("memory://", "channels.layers.InMemoryChannelLayer"),
        ("redis://127.0.0.1:6379/0", "channels_redis.core.RedisChannelLayer"),
        ("rediss://cache.example:6380/1", "channels_redis.core.RedisChannelLayer"),
    ],
)
def test_channel_layer_url(url, backend):
    layers = env.channel_layers(url)
    assert layers["default"]["BACKEND"] == backend
    if url and url.startswith("redis"):
        [host] = layers["default"]["CONFIG"]["hosts"]
        assert host["address"] == url
        # Longer than channels_redis's 5 s blocking wait, or idle receives time out.
        assert host["socket_timeout"] > 5


def test_channel_layer_url_refuses_unknown_schemes():
    with pytest.raises(ValueError, match="CHANNEL_LAYER_URL"):
        env.channel_layers("amqp://127.0.0.1/")


LOCMEM = "django.core.cache.backends.locmem.LocMemCache"
REDIS_CACHE = "django.core.cache.backends.redis.RedisCache"


@pytest.mark.parametrize(
    ("cache_url", "channel_layer_url", "backend", "location"),
    [
        (None, None, LOCMEM, None),
        ("", "memory://", LOCMEM, None),
        # Several processes share a Redis channel layer: they share the cache there too.
        (None, "redis://127.0.0.1:6379/0", REDIS_CACHE, "redis://127.0.0.1:6379/0"),
        ("", "rediss://cache.example:6380/1", REDIS_CACHE, "rediss://cache.example:6380/1"),
        # A cache of its own, with or without the channel layer.
        ("redis://127.0.0.1:6379/3", "redis://127.0.0.1:6379/0", REDIS_CACHE,
         "redis://127.0.0.1:6379/3"),
        ("redis://127.0.0.1:6379/3", None, REDIS_CACHE, "redis://127.0.0.1:6379/3"),
        ("locmem://", "redis://127.0.0.1:6379/0", LOCMEM, None),
    ],
)  # fmt: skip
def test_cache_url(cache_url, channel_layer_url, backend, location):
    [(alias, cache)] = env.caches(cache_url, channel_layer_url).items()
    assert (alias, cache["BACKEND"], cache.get("LOCATION")) == ("default", backend, location)
    if backend == REDIS_CACHE:
        assert cache["KEY_PREFIX"] == "flows"  # apart from the channel layer's keys
        assert cache["OPTIONS"]["socket_timeout"] > 0  # a request never hangs on Redis
    else:
        assert cache["OPTIONS"]["MAX_ENTRIES"] > 300  # Django's default culls too soon


def test_cache_url_refuses_unknown_schemes():
    with pytest.raises(ValueError, match="CACHE_URL"):
        env.caches("memcached://127.0.0.1:11211", None)


@pytest.mark.parametrize(
    ("api_url", "amqp_url", "expected"),
    [
        # Same credentials as AMQP unless the API URL carries its own.
        (
            "http://127.0.0.1:15672/",
            "amqp://guest:guest@127.0.0.1:5672/",
            ("http://127.0.0.1:15672/", "guest", "guest"),
        ),
        (
            "http://127.0.0.1:15672",
            "amqp://ops:s%40cret@rabbit:5672/%2F",
            ("http://127.0.0.1:15672/", "ops", "s@cret"),
        ),
        (
            "https://admin:pw@rabbit.example/rabbitmq/",
            "amqp://ops:x@rabbit:5672/",
            ("https://rabbit.example/rabbitmq/", "admin", "pw"),
        ),
        ("http://[::1]:15672/", "amqp://u:p@[::1]/", ("http://[::1]:15672/", "u", "p")),
        # No AMQP credentials at all: RabbitMQ's defaults.
        ("http://h:15672/", "amqp://h/", ("http://h:15672/", "guest", "guest")),
    ],
)
def test_api_credentials(api_url, amqp_url, expected):
    assert env.api_credentials(api_url, amqp_url) == expected


@pytest.mark.parametrize("api_url", ["127.0.0.1:15672", "ftp://h/", "http:///x"])
def test_api_credentials_refuses_non_http_urls(api_url):
    with pytest.raises(ValueError, match="RABBITMQ_API_URL"):
        env.api_credentials(api_url, "amqp://h/")


def test_secret_key_is_generated_once_and_kept(tmp_path: Path):
    key_file = tmp_path / "state" / "secret_key"
    first = env.secret_key(None, key_file=key_file)
    assert len(first) >= 50
    assert env.secret_key(None, key_file=key_file) == first
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_secret_key_from_environment_wins(tmp_path: Path):
    assert env.secret_key("from-env", key_file=tmp_path / "unused") == "from-env"
    assert not (tmp_path / "unused").exists()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("", None),
        ("X-Forwarded-Proto", ("HTTP_X_FORWARDED_PROTO", "https")),
        (" x-forwarded-proto ", ("HTTP_X_FORWARDED_PROTO", "https")),
        ("X-Forwarded-Ssl", ("HTTP_X_FORWARDED_SSL", "https")),
    ],
)
def test_proxy_ssl_header(raw, expected):
    assert env.proxy_ssl_header(raw) == expected


@pytest.mark.parametrize("raw", ["X-Forwarded-Proto: https", "HTTP_X", "X Forwarded"])
def test_proxy_ssl_header_refuses_what_is_not_a_header_name(raw):
    with pytest.raises(ValueError, match="header name"):
        env.proxy_ssl_header(raw)
