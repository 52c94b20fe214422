"""The image engine: fits2image's picture of a frame, computed band by band.

Decode: `framefile` (the image HDU and its header, as fits2image picks them), `layout` (extra
axes, cubes, fallbacks), `tiles` (RICE tiles through astropy's codec without its per-tile
Python). Samples and cuts: `zscale`, `intervals`. Stretch and colour: `stretch`, `display`,
`colourmaps`. Reduce: `blocks` (Pillow's `reduce` and `thumbnail` steps on block sums).
Colour frames: `registration`, `alignment`. The label: `labels` (and its font). Put together:
`fast`, the renderer. `memory` turns the engine's failures into domain errors, `result` is
what a render returns.

Nothing here knows of worker processes, pools or the frame cache (`adapters.rendering`
holds those); import-linter keeps it so.
"""
