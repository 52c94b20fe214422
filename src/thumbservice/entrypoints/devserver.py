"""`make run`: the service on its embedded default, with example URLs to try at once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from thumbservice.entrypoints.app import load_settings, serve
from thumbservice.entrypoints.containers import Container, viewer_links
from thumbservice.entrypoints.settings import Settings


def print_examples(settings: Settings, records: Sequence[Mapping[str, Any]]) -> None:
    base = settings.base_url
    first = records[0]
    color = next((r for r in records if r.get("primary_optical_element") == "V"), first)
    private = next((r for r in records if str(r.get("public_date", "")) > "2090"), None)
    lines = [
        "",
        f"thumbservice on {base}: {len(records)} sample frames in {settings.sample_archive_dir}",
        "Try:",
        f"  curl '{base}/{first['id']}/?width=300&image=true' > t.jpg",
        f"  curl '{base}/{first['id']}/?width=500&height=500&label=So%20many%20stars'",
        f"  curl '{base}/{first['basename']}/?width=400'",
        f"  curl '{base}/{color['id']}/?color=true&width=600&height=600&image=true' > color.jpg",
    ]
    if private is not None:
        lines.append(
            f"  curl -H 'Authorization: Token sample-owner-token' "
            f"'{base}/{private['id']}/?image=true' > private.jpg"
        )
    lines += ["Zoom in (IIIF deep zoom, OpenSeadragon):"]
    lines += [f"  {base}{path}   {label}" for label, path in viewer_links(records)]
    lines += [f"  {base}/docs  (try the API)   {base}/metrics   {base}/readyz", ""]
    print("\n".join(lines), flush=True)


def run() -> None:
    container = Container(settings=load_settings())
    container.logs()
    settings: Settings = container.settings()
    if settings.archive_source == "samples":
        print_examples(settings, container.sample_frames())
    serve(container)


if __name__ == "__main__":
    run()
