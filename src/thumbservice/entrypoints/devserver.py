"""`make run`: the service on its embedded default, with example URLs to try at once."""

from __future__ import annotations

from thumbservice.__main__ import main
from thumbservice.entrypoints.config import Settings


def print_examples(settings: Settings) -> None:
    from thumbservice.adapters.archive.dev.sample_archive import build_sample_archive

    records = build_sample_archive(settings.sample_archive_dir)
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
    lines += [f"  {base}/  (the API)   {base}/metrics   {base}/readyz", ""]
    print("\n".join(lines), flush=True)


def run() -> None:
    settings = Settings.from_env()
    if settings.archive_source == "samples":
        print_examples(settings)
    main()


if __name__ == "__main__":
    run()
