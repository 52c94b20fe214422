"""The full-resolution picture of a frame: what every view of it is drawn from.

fits2image makes a thumbnail by scaling the whole frame to 8 bits, turning it north-up and
letting Pillow shrink it. Everything before the shrinking depends only on the file's content
and on how values become pixels (`ThumbnailSpec.picture_options`); the size, the label, the
format and the quality are drawn from it. So one picture serves every view of a frame, and its
key names exactly those two things: the content of each source file, and the picture options.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from thumbservice.domain.frames import Frame
from thumbservice.domain.spec import RENDER_VERSION, ThumbnailSpec

IDENTITY_KEYS = ("size", "filesize", "md5", "checksum", "version_id", "last_modified")
"""Keys of a frame record that, where present, say something about the file's content."""

VERSION_KEYS = ("id", "md5", "key", "created")
"""What each entry of a record's `version_set` contributes: a re-reduction adds or changes one."""


def content_identity(frame: Frame) -> str:
    """What identifies the bytes of the frame's file, as far as its archive record tells.

    The archive's `version_set` (each version's id and md5) changes when a frame is reduced
    again; with the id and the filename it names one file's content. Records without versions
    fall back on the id, the filename and whatever size or checksum they carry. The download
    URL is left out: it is presigned, so it changes on every lookup.
    """
    record = frame.record
    parts = [f"id={frame.id}", f"filename={frame.filename}"]
    for key in IDENTITY_KEYS:
        if record.get(key) not in (None, ""):
            parts.append(f"{key}={record[key]}")
    versions = record.get("version_set")
    if isinstance(versions, list):
        for version in _mappings(versions):
            fields = ",".join(f"{k}:{version.get(k)}" for k in VERSION_KEYS if k in version)
            parts.append(f"version=({fields})")
    return "&".join(parts)


def _mappings(items: Iterable[Any]) -> list[Mapping[str, Any]]:
    found = [item for item in items if isinstance(item, Mapping)]
    # In a stable order whatever order the archive lists them in.
    return sorted(found, key=lambda v: (str(v.get("id")), str(v.get("md5"))))


def picture_key(sources: Sequence[Frame], spec: ThumbnailSpec) -> str:
    """The key of the full-resolution picture that every view of these sources is drawn from.

    Two requests share a picture exactly when their files' contents and their picture options
    agree (and the render version has not changed): 32 hexadecimal digits, usable as a file
    name.
    """
    if not sources:
        raise ValueError("a picture needs at least one source frame")
    options = spec.picture_options()
    canonical = "&".join(f"{k}={options[k]}" for k in sorted(options))
    canonical += "".join(f"&source[{i}]=({content_identity(f)})" for i, f in enumerate(sources))
    canonical += f"&v={RENDER_VERSION}"
    return hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()
