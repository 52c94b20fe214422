from pathlib import Path

import pytest

from thumbservice.entrypoints.settings import ConfigError, Settings


def test_defaults_are_the_seed_readmes() -> None:
    s = Settings.from_env({})
    assert s.archive_api_url == "http://localhost/"
    assert s.tmp_dir == Path("/tmp/")
    assert (s.aws_bucket, s.aws_access_key_id, s.aws_secret_access_key) == ("changeme",) * 3
    assert s.storage_url is None
    assert s.required_frame_validation_keys == ("configuration_type", "request_id", "filename")
    assert "TRAILED" in s.valid_configuration_types and len(s.valid_configuration_types) == 14
    assert s.valid_configuration_types_for_color_thumbs == ("EXPOSE", "STANDARD")
    assert s.port == 8080
    assert s.store_kind == "local"


def test_a_real_bucket_selects_s3_and_a_variable_can_force_either() -> None:
    assert Settings.from_env({"AWS_BUCKET": "thumbs"}).store_kind == "s3"
    assert Settings.from_env({"AWS_BUCKET": "thumbs", "THUMBNAIL_STORE": "local"}).store_kind == (
        "local"
    )
    with pytest.raises(ConfigError, match="AWS_BUCKET"):
        Settings.from_env({"THUMBNAIL_STORE": "s3"})


def test_values_written_as_in_the_seed_readme() -> None:
    s = Settings.from_env(
        {
            "TMP_DIR": "'/var/tmp/'",
            "STORAGE_URL": "None",
            "ARCHIVE_API_URL": "https://archive-api.lco.global",
            "VALID_CONFIGURATION_TYPES": "EXPOSE, STANDARD",
        }
    )
    assert s.tmp_dir == Path("/var/tmp/")
    assert s.storage_url is None
    assert s.archive_api_url == "https://archive-api.lco.global/"
    assert s.valid_configuration_types == ("EXPOSE", "STANDARD")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "eighty"),
        ("PORT", "70000"),
        ("ARCHIVE_API_URL", "ftp://archive"),
        ("STORAGE_URL", "localhost:9000"),
        ("RENDER_WORKERS", "0"),
        ("ARCHIVE_TIMEOUT", "-1"),
        ("DOWNLOAD_TIMEOUT", "soon"),
        ("URL_EXPIRY", "604801"),
        ("THUMBNAIL_STORE", "dropbox"),
        ("COLOR_FILTERS", "red=R"),
        ("COLOR_ALIGNMENT", "sometimes"),
        ("LOG_LEVEL", "LOUD"),
        ("RENDERER", "gpu"),
        ("RENDER_MEMORY_LIMIT", "lots"),
        ("RENDER_MEMORY_LIMIT", "64MiB"),
        ("RENDER_MEMORY_LIMIT", "1.5GiB"),
        ("STORE_TIMEOUT", "0"),
        ("CACHE_EXISTENCE_TTL", "-1"),
        ("MEMORY_CACHE_BYTES", "a lot"),
        ("PORT", "٨٠"),
        ("LEASES", "zookeeper"),
        ("LEASE_TTL", "0"),
        ("LEASE_PREFIX", "../up"),
    ],
)
def test_a_bad_value_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_base_url_for_local_store_urls() -> None:
    assert Settings.from_env({"PORT": "9000"}).base_url == "http://localhost:9000"
    assert Settings.from_env({"PUBLIC_URL": "https://thumbs.example/"}).base_url == (
        "https://thumbs.example"
    )


def test_the_renderer_and_its_memory_limit() -> None:
    default = Settings.from_env({})
    assert (default.renderer, default.render_memory_limit) == ("fast", None)
    chosen = Settings.from_env({"RENDERER": "fits2image", "RENDER_MEMORY_LIMIT": "2GiB"})
    assert (chosen.renderer, chosen.render_memory_limit) == ("fits2image", 2 * 1024**3)
    assert Settings.from_env({"RENDER_MEMORY_LIMIT": "off"}).render_memory_limit == 0
    assert Settings.from_env({"RENDER_MEMORY_LIMIT": "536870912"}).render_memory_limit == 2**29


def test_leases_live_in_the_chosen_store_unless_off() -> None:
    assert Settings.from_env({}).lease_kind == "local"
    s3 = Settings.from_env({"AWS_BUCKET": "thumbs", "LEASES": "S3"})
    assert s3.lease_kind == "s3" and s3.lease_prefix == "leases/" and s3.lease_ttl == 30
    assert Settings.from_env({"AWS_BUCKET": "thumbs", "LEASES": "off"}).lease_kind is None
    assert Settings.from_env({"LEASE_PREFIX": "/thumbservice/leases"}).lease_prefix == (
        "thumbservice/leases/"
    )
    with pytest.raises(ConfigError, match="LEASES=s3 needs the s3 thumbnail store"):
        Settings.from_env({"LEASES": "s3"})
