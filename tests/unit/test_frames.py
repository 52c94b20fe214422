import pytest

from tests.support.fakes import record
from thumbservice.domain.errors import ColorFramesNotFound, FrameNotEligible
from thumbservice.domain.frames import Frame, FrameRules, parse_color_filters

RULES = FrameRules()


def frame(**overrides: object) -> Frame:
    return Frame.from_record(record(**overrides))


def test_a_reduced_exposure_passes() -> None:
    RULES.check(frame(), color=False)
    RULES.check(frame(), color=True)


@pytest.mark.parametrize("key", ["configuration_type", "request_id", "filename"])
def test_required_keys(key: str) -> None:
    with pytest.raises(FrameNotEligible, match=key):
        RULES.check(frame(**{key: None}), color=False)


def test_required_keys_are_configurable() -> None:
    rules = FrameRules(required_keys=("filename", "target_name"))
    with pytest.raises(FrameNotEligible, match="target_name"):
        rules.check(frame(request_id=None), color=False)


def test_configuration_type_must_be_valid() -> None:
    with pytest.raises(FrameNotEligible, match="CATALOG"):
        RULES.check(frame(configuration_type="CATALOG"), color=False)


def test_color_needs_a_color_configuration_type() -> None:
    RULES.check(frame(configuration_type="SPECTRUM"), color=False)
    with pytest.raises(FrameNotEligible, match="color"):
        RULES.check(frame(configuration_type="SPECTRUM"), color=True)


def test_color_needs_a_request_id() -> None:
    rules = FrameRules(required_keys=("filename",))
    rules.check(frame(request_id=None), color=False)
    with pytest.raises(FrameNotEligible, match="request_id"):
        rules.check(frame(request_id=None), color=True)


@pytest.mark.parametrize("name", ["x.tar.gz", "x.fits.gz", "x.jpg", "fits"])
def test_only_fits_files(name: str) -> None:
    with pytest.raises(FrameNotEligible, match="fits"):
        RULES.check(frame(filename=name), color=False)


def test_plain_fits_is_accepted() -> None:
    RULES.check(frame(filename="x-e00.fits"), color=False)


def test_odd_record_values_do_not_crash() -> None:
    f = Frame.from_record({"id": "12", "request_id": True, "filename": 5})
    assert f.id == 12 and f.observing_request_id is None and f.filename == "5"
    for odd in ("²", "١٢", "1_0", "1.5", "-3"):
        assert Frame.from_record({"id": odd}).id is None, odd


def test_pick_the_first_color_frames_in_red_visual_blue_order() -> None:
    frames = [
        frame(frame_id=5, primary_optical_element="B"),
        frame(frame_id=3, primary_optical_element="V"),
        frame(frame_id=4, primary_optical_element="rp"),
        frame(frame_id=2, primary_optical_element="rp"),
        frame(frame_id=1, primary_optical_element="gp"),
    ]
    red, visual, blue = RULES.pick_color_frames(frames)
    assert (red.id, visual.id, blue.id) == (4, 3, 5)  # the first of each, as the archive lists


def test_missing_filter_is_reported() -> None:
    frames = [
        frame(frame_id=1, primary_optical_element="R"),
        frame(frame_id=2, primary_optical_element="V"),
    ]
    with pytest.raises(ColorFramesNotFound, match=r"RVB frames not found.*blue"):
        RULES.pick_color_frames(frames)


def test_color_filter_mapping_is_configurable() -> None:
    rules = FrameRules(color_filters=parse_color_filters("red=ip;visual=rp;blue=gp"))
    frames = [
        frame(frame_id=1, primary_optical_element="gp"),
        frame(frame_id=2, primary_optical_element="rp"),
        frame(frame_id=3, primary_optical_element="ip"),
    ]
    assert [f.id for f in rules.pick_color_frames(frames)] == [3, 2, 1]


@pytest.mark.parametrize("text", ["red=R", "red=R;visual=V;blue=", "pink=R;visual=V;blue=B"])
def test_bad_color_filter_mappings(text: str) -> None:
    with pytest.raises(ValueError, match="color filter"):
        parse_color_filters(text)


def test_color_frames_skip_unusable_records() -> None:
    frames = [
        frame(frame_id=1, primary_optical_element="rp", filename="cat.fits.gz"),
        frame(frame_id=2, primary_optical_element="rp", reduction_level=0),
        frame(frame_id=3, primary_optical_element="rp"),
        frame(frame_id=4, primary_optical_element="V", url=None),
        frame(frame_id=5, primary_optical_element="V"),
        frame(frame_id=6, primary_optical_element="B"),
    ]
    assert [f.id for f in RULES.pick_color_frames(frames)] == [3, 5, 6]
