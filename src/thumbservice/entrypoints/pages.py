"""The few fixed answers: the API page, robots.txt and the favicon."""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from functools import lru_cache

from PIL import Image, ImageDraw

from thumbservice.domain.spec import MAX_LABEL_LENGTH

ROBOTS_TXT = "User-agent: *\nDisallow: /\n"

INDEX_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>thumbservice</title>
<style>body{font-family:sans-serif;max-width:50em;margin:2em auto;line-height:1.5}
code{background:#eee;padding:0 .2em}</style></head><body>
<h1>thumbservice</h1>
<p>Thumbnails of FITS frames held in an OCS Science Archive.
<strong><a href="docs">Try the API</a></strong> on its interactive page.</p>
<h2>Endpoints</h2>
<ul>
<li><code>GET /&lt;frame_id&gt;/</code> &mdash; by the archive's frame id (faster)</li>
<li><code>GET /&lt;basename&gt;/</code> &mdash; by the frame's basename
(the file name without extension)</li>
</ul>
<h2>Query parameters</h2>
<ul>
<li><code>width</code>, <code>height</code> &mdash; the box the thumbnail fits in, in pixels
(default 200; the aspect ratio is kept)</li>
<li><code>label</code> &mdash; white text in the lower left corner (up to $max_label
characters; what does not fit is cut)</li>
<li><code>color=true</code> &mdash; a color composite of the request's red, visual and blue
frames</li>
<li><code>median=true</code>, <code>percentile</code> (default 99.5) &mdash; median-subtracted
stretch</li>
<li><code>format</code> &mdash; <code>jpeg</code> (default), <code>png</code> or
<code>webp</code></li>
<li><code>quality</code> &mdash; JPEG and WebP quality, 1-100 (default 80)</li>
<li><code>image=true</code> &mdash; answer with the image itself instead of JSON</li>
</ul>
<p>Without <code>image</code> the answer is JSON <code>{"url": ..., "propid": ...}</code>; the URL
is good for one week. Send your archive token as <code>Authorization: Token ...</code> for
proprietary data.</p>
<p>Example: <code>/3863274/?width=500&amp;height=500&amp;label=So%20many%20stars</code></p>
<h2>Deep zoom</h2>
<p>Every frame is an <a href="https://iiif.io/api/image/3.0/">IIIF Image API 3.0</a> image
(level 2) at <code>/iiif/3/&lt;frame&gt;/info.json</code>, with display options in the
identifier (<code>/iiif/3/1003;color=true/info.json</code>), and can be zoomed into in the
browser at <code>/view/&lt;frame&gt;</code>.</p>
$viewer_links
<p>Operations: <code>/healthz</code>, <code>/readyz</code>, <code>/metrics</code>;
the API as OpenAPI: <code>/openapi.json</code>, and as an interactive page:
<a href="docs"><code>/docs</code></a>.</p>
</body></html>
""".replace("$max_label", str(MAX_LABEL_LENGTH))


def index_page(viewer_links: Sequence[tuple[str, str]] = ()) -> str:
    """The API page, with links to the viewer on the given (label, path) frames."""
    items = "".join(
        f'<li><a href="{html.escape(path)}">{html.escape(label)}</a></li>'
        for label, path in viewer_links
    )
    return INDEX_HTML.replace("$viewer_links", f"<ul>{items}</ul>" if items else "")


@lru_cache(maxsize=1)
def favicon() -> bytes:
    """A small star on a night sky, drawn once."""
    image = Image.new("RGB", (32, 32), (10, 14, 40))
    draw = ImageDraw.Draw(image)
    draw.ellipse((12, 12, 20, 20), fill=(255, 244, 214))
    draw.line((16, 6, 16, 26), fill=(200, 200, 255))
    draw.line((6, 16, 26, 16), fill=(200, 200, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="ICO", sizes=[(32, 32), (16, 16)])
    return buffer.getvalue()
