"""The directories the service will write are checked before it starts (entrypoints.directories)."""

from __future__ import annotations

from pathlib import Path

import pytest

from thumbservice.adapters.archive.dev.sample_archive import INDEX_NAME
from thumbservice.entrypoints.directories import check_writable, directories_to_write
from thumbservice.entrypoints.settings import ConfigError, Settings


def test_each_chosen_adapters_directory_is_made_and_checked(tmp_path: Path) -> None:
    settings = Settings(
        archive_source="samples",
        thumbnail_store="local",
        tmp_dir=tmp_path / "scratch",
        local_store_dir=tmp_path / "store",
        sample_archive_dir=tmp_path / "samples",
    )
    names = [name for name, _ in directories_to_write(settings)]
    assert names == ["TMP_DIR", "LOCAL_STORE_DIR", "SAMPLE_ARCHIVE_DIR"]
    check_writable(settings)
    for name in ("scratch", "store", "samples"):
        assert (tmp_path / name).is_dir()
        assert list((tmp_path / name).iterdir()) == [], "the check left a file behind"


def test_s3_and_an_archive_already_generated_need_only_tmp_dir(tmp_path: Path) -> None:
    samples = tmp_path / "samples"
    samples.mkdir()
    (samples / INDEX_NAME).write_text("{}")
    settings = Settings(
        archive_source="samples",
        aws_bucket="thumbnails",
        tmp_dir=tmp_path / "scratch",
        sample_archive_dir=samples,
    )
    assert [name for name, _ in directories_to_write(settings)] == ["TMP_DIR"]


def test_a_directory_that_cannot_be_made_is_named_with_its_variable(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    settings = Settings(
        thumbnail_store="local",
        tmp_dir=tmp_path / "scratch",
        local_store_dir=tmp_path / "a-file" / "store",
    )
    with pytest.raises(ConfigError, match=r"^LOCAL_STORE_DIR must be a directory .*a-file/store"):
        check_writable(settings)
