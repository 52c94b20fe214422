"""The OpenAPI document holds: schemathesis drives the running service from it.

The service runs as `make run` runs it (sample archive, local store, the real renderer) in its
own process. For every operation, requests are generated from the document, valid and invalid
ones, and every answer is checked against it: no server error, a documented status, content
type and headers, a body that fits its schema, and invalid input refused with a 4xx.

Not checked: that every schema-valid request is accepted. Some rules span parameters and so
are stated in words rather than in the schema (a `percentile` above 50 with `median=true`,
`color` only for colour frames); those requests are refused with a documented 400.

Frame ids are mapped onto the sample archive's frames, so requests reach the archive, the
renderer and the store rather than stopping at a 404; a second run aims valid thumbnail
requests at frames they suit, so that most are rendered and answered with a 200 (JSON or an
image in each format). Generation is deterministic (a fixed seed, no example database), so a
run finds the same things every time.
"""

from __future__ import annotations

import copy
import json
import math
import urllib.request
from typing import Any

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.e2e.conftest import SampleService
from thumbservice.adapters.archive.dev.sample_archive import (
    COLOR_SAMPLE_FRAME_IDS,
    SAMPLE_FRAME_IDS,
)
from thumbservice.entrypoints.openapi import openapi
from thumbservice.entrypoints.settings import Settings

# Each operation is one test of up to MAX_EXAMPLES requests, some of them renders.
pytestmark = pytest.mark.timeout(300)

MAX_EXAMPLES = 40
RENDERED_EXAMPLES = 30

DOCUMENT = copy.deepcopy(openapi(Settings().max_thumbnail_size))
CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 20261127,
        "generation": {
            "mode": "all",
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
        },
        "request-timeout": 60,
    }
)
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)
rendered = schemathesis.openapi.from_dict(
    DOCUMENT,
    config=SchemathesisConfig.from_dict(
        {
            "seed": 20261128,
            "generation": {
                "mode": "positive",
                "max-examples": RENDERED_EXAMPLES,
                "deterministic": True,
                "database": "none",
            },
            "request-timeout": 60,
        }
    ),
).include(path="/{frame}/")


@schema.hook
def map_path_parameters(
    context: Any, path_parameters: dict[str, Any] | None
) -> dict[str, Any] | None:
    """A generated frame id becomes one of the sample archive's frames (strings stay: they
    exercise basenames and the 400s and 404s)."""
    frame = (path_parameters or {}).get("frame")
    if isinstance(frame, int) and not isinstance(frame, bool) and frame > 0:
        assert path_parameters is not None
        path_parameters["frame"] = SAMPLE_FRAME_IDS[frame % len(SAMPLE_FRAME_IDS)]
    return path_parameters


@schema.parametrize()
def test_the_service_answers_as_its_document_says(
    case: schemathesis.Case, sample_service: SampleService
) -> None:
    case.call_and_validate(base_url=sample_service.url, excluded_checks=[positive_data_acceptance])


@rendered.hook("map_case")
def suited(context: Any, case: schemathesis.Case) -> schemathesis.Case:
    """A valid request made to suit a frame it names: a colour frame for `color=true`, another
    for the rest, and the rules stated in words kept (a `percentile` above 50 with
    `median=true`; written in digits with a decimal point, never as `1e-05`)."""
    query = case.query if case.query is not None else {}
    if "percentile" in query:
        query["percentile"] = min(100.0, max(0.001, round(float(query["percentile"]), 3)))
    if query.get("median") is True and query.get("percentile", 99.5) <= 50:
        query["median"] = False
    color = query.get("color") is True
    # The display options' rules: no colour map on a composite, a joint interval only on one,
    # an interval only with a stretch of astropy's, median only with fits2image's.
    query.pop("cmap" if color else "joint_interval", None)
    if query.get("stretch", "fits2image") == "fits2image":
        for name in ("interval", "min_cut", "max_cut", "contrast", "joint_interval"):
            query.pop(name, None)
    else:
        query["median"] = False
    if query.get("min_cut", -math.inf) >= query.get("max_cut", math.inf):
        query.pop("max_cut")
    frames = [i for i in SAMPLE_FRAME_IDS if (i in COLOR_SAMPLE_FRAME_IDS) == color]
    frame = (case.path_parameters or {}).get("frame", 0)
    index = frame if isinstance(frame, int) else len(str(frame))
    case.path_parameters = {"frame": frames[index % len(frames)]}
    case.query = query
    return case


@rendered.parametrize()
def test_valid_thumbnail_requests_are_rendered_and_answered_as_documented(
    case: schemathesis.Case, sample_service: SampleService
) -> None:
    case.call_and_validate(base_url=sample_service.url, excluded_checks=[positive_data_acceptance])


def test_the_service_serves_the_document_it_is_held_to(sample_service: SampleService) -> None:
    with urllib.request.urlopen(f"{sample_service.url}/openapi.json") as response:
        assert json.load(response) == DOCUMENT
