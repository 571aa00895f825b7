"""The operator page's logic under Streamlit's AppTest (no browser): predict, warnings highlighted, errors as the
handler's message, the batch table with its rejects, the history, and the deployed back end through the SigV4
stub. Every number the page shows is the handler's, rounded by ``ui.form.shown``."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests import ui_stub
from tests.conftest import REPO_ROOT, make_app
from ui import form, parts

PAGE = str(REPO_ROOT / "ui" / "app.py")
SAMPLE = form.sample_part()


@pytest.fixture
def page(monkeypatch):
    """The page on the embedded back end, run once (the back end is built afresh for each test)."""
    monkeypatch.delenv("DIECAST_API_URL", raising=False)
    return _fresh()


def _fresh() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    at.session_state  # noqa: B018  (the state exists after the first run)
    return at


@pytest.fixture(autouse=True)
def _fresh_backend():
    import streamlit as st

    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def _predict(at: AppTest) -> AppTest:
    next(b for b in at.button if b.label == "Predict").click()
    return at.run()


def _key(name: str) -> str:
    return form.KEY_PREFIX + name


def _type(at: AppTest, name: str, value: float) -> None:
    """Enter ``value`` in ``name``'s input, as an operator would (the form sends it on Predict)."""
    at.number_input(key=_key(name)).set_value(value)


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_the_form_is_prefilled_with_the_sample_part_and_grouped(page):
    assert not page.exception
    assert {k: page.session_state[_key(k)] for k in SAMPLE} == SAMPLE
    # The readings are also each input's value= (its proto's default): what a browser draws when it mounts the
    # input, whether or not it applies the one-shot value a session-state write sends.
    assert {k: page.number_input(key=_key(k)).proto.default for k in SAMPLE} == SAMPLE
    assert [s.value for s in page.subheader][:2] == ["Process parameters", "Sensors"]
    inputs = {n.label: n for n in page.number_input}
    temperature = inputs["Temperature (degC) 599.26–692.79"]  # v1.0's training range
    assert temperature.help.startswith("Melt temperature in the holding furnace. Training range 599.26 to 692.79 degC")


def test_predict_shows_the_handlers_answer_rounded_once(page):
    at = _predict(page)
    answer = make_app().handle({"features": SAMPLE})["prediction"]
    assert not at.exception
    assert not at.error
    assert _metric(at, "Probability of a defect") == form.shown(answer["probability"])
    assert _metric(at, "Class") == answer["class"]
    assert _metric(at, "Confidence") == answer["confidence"]
    assert _metric(at, "Model version") == "v1.0_12D_GB"
    assert len(at.session_state.history) == 1


def test_a_reading_outside_the_training_range_is_warned_and_highlighted(page):
    feature = form.Readings.of(str(REPO_ROOT / "models_onnx" / "v1.0")).features[0]
    _type(page, feature.name, feature.max + 5.0)  # inside the envelope, past training
    at = _predict(page)
    assert not at.exception
    assert any(feature.name in w.value and "outside the training range" in w.value for w in at.warning)
    highlighted = [n.label for n in at.number_input if n.label.startswith(":red[")]
    assert highlighted == [f":red[{form.label(feature)} — outside the training range]"]


def test_a_reading_beyond_the_envelope_shows_the_handlers_message_naming_it(page):
    _type(page, "Sensor_Vibration", 1e9)
    at = _predict(page)
    assert not at.exception
    message = make_app().handle({"features": {**SAMPLE, "Sensor_Vibration": 1e9}})["error"]["message"]
    assert [e.value for e in at.error] == [f"ReadingOutOfEnvelope: {message} (fields: Sensor_Vibration)"]
    assert "last" not in at.session_state


def test_random_part_loads_a_row_of_the_data(page):
    next(b for b in page.button if b.label.startswith("Load a random part")).click()
    at = page.run()
    values = {k: at.session_state[_key(k)] for k in SAMPLE}
    assert values != SAMPLE
    assert all(isinstance(v, float) for v in values.values())
    assert {k: at.number_input(key=_key(k)).proto.default for k in SAMPLE} == values  # what is drawn
    assert {k: at.session_state.on_form[k] for k in SAMPLE} == values


def test_without_the_explanation_service_the_page_says_so_and_still_predicts(page):
    at = _predict(page)
    if at.session_state.last[1] is None:  # no explain package in this checkout
        assert any("explanations are not available" in i.value for i in at.info)
    else:
        assert any(m.value.startswith("Readings that moved this prediction most") for m in at.markdown)


def test_history_counts_this_sessions_predictions(page):
    at = _predict(_predict(page))
    assert any(m.value.startswith("2 predictions in this session") for m in at.markdown)


def test_the_deployed_back_end_through_the_signing_stub_shows_contributions(monkeypatch):
    with ui_stub.StubApi(make_app()) as api:
        monkeypatch.setenv("DIECAST_API_URL", api.url)
        monkeypatch.setenv("AWS_REGION", ui_stub.REGION)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", ui_stub.ACCESS_KEY)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ui_stub.SECRET_KEY)
        monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        at = _predict(_fresh())
        assert not at.exception
        assert not at.error, [e.value for e in at.error]
        assert [signed for _, signed, _ in api.requests] == [True, True]  # /predict and /explain, both signed
    answer = make_app().handle({"features": SAMPLE})["prediction"]
    assert _metric(at, "Probability of a defect") == form.shown(answer["probability"])
    words = form.explanation_words(ui_stub.explanation_of(SAMPLE)["contributions"])
    assert words in [m.value for m in at.markdown]


def test_an_uploaded_csv_is_scored_on_the_page_with_its_rejects_and_history(page):
    rows = [{"part_id": "a", **SAMPLE}, {"part_id": "b", **SAMPLE, "Process_Pressure": ""}]
    page.file_uploader[0].upload("plant.csv", _csv(rows), "text/csv")
    at = page.run()
    assert not at.exception
    assert any(m.value == "1 parts scored (1 defects), 1 rejected." for m in at.markdown)
    assert at.table[0].value.to_dict("records") == [{"row": 2, "reason": "Process_Pressure: missing"}]
    table = at.dataframe[0].value
    expected = make_app().handle({"features": SAMPLE})["prediction"]
    assert table.to_dict("records") == [
        {
            "row": 1,
            "part_id": "a",
            "probability": form.shown(expected["probability"]),
            "class": expected["class"],
            "confidence": expected["confidence"],
        }
    ]
    assert [h["source"] for h in at.session_state.history] == ["plant.csv row 1"]


def test_an_unexpected_failure_is_one_sentence_not_a_traceback(page, monkeypatch):
    from ui.client import Embedded

    def broken(self, payload):
        raise RuntimeError("an internal detail at /srv/app.py")

    monkeypatch.setattr(Embedded, "predict", broken)
    at = _predict(page)
    assert not at.exception
    assert [e.value for e in at.error] == [
        "Something went wrong on this page; it has been logged. Try again, or reload the page."
    ]


def test_an_unreachable_api_is_a_message_naming_the_fix(monkeypatch):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    monkeypatch.setenv("DIECAST_API_URL", f"http://127.0.0.1:{port}/prod")
    monkeypatch.setenv("AWS_REGION", ui_stub.REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ui_stub.ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ui_stub.SECRET_KEY)
    at = _predict(_fresh())
    assert not at.exception
    (error,) = [e.value for e in at.error]
    assert error.startswith(f"cannot reach the API at http://127.0.0.1:{port}/prod: ")
    assert "DIECAST_API_URL" in error


# --- the batch, on the same functions the page calls -------------------------------------------------------------


def _csv(rows: list[dict[str, object]]) -> bytes:
    names = ["part_id", *SAMPLE]
    lines = [",".join(names)] + [",".join(str(r.get(n, "")) for n in names) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def test_a_batch_lists_every_row_scored_or_rejected_with_the_scorers_reason():
    from ui.client import Embedded

    client = Embedded(str(REPO_ROOT / "models_onnx" / "v1.0"))
    rows = [
        {"part_id": "a", **SAMPLE},
        {"part_id": "b", **SAMPLE, "Process_Pressure": "abc"},
        {"part_id": "c", **SAMPLE, "Sensor_Vibration": 1e9},
        {"part_id": "d", **SAMPLE, "Process_Temperature": SAMPLE["Process_Temperature"] + 30},
    ]
    scored = parts.score_upload(client, _csv(rows), list(SAMPLE))
    assert [p["part_id"] for p in scored.parts] == ["a", "d"]
    assert scored.rejects[0] == {"row": 2, "reason": "Process_Pressure: not a number ('abc')"}
    assert scored.rejects[1]["row"] == 3
    assert scored.rejects[1]["reason"].startswith("Sensor_Vibration: 1e+09 is beyond")
    app = make_app()
    for part, row in zip(scored.parts, (rows[0], rows[3]), strict=True):
        features = {k: float(row[k]) for k in SAMPLE}
        assert part["probability"] == app.handle({"features": features})["prediction"]["probability"]


def test_a_csv_without_the_readings_is_refused_naming_them():
    from batch.job import BatchInputError
    from ui.client import Embedded

    client = Embedded(str(REPO_ROOT / "models_onnx" / "v1.0"))
    with pytest.raises(
        BatchInputError, match=r"^plant\.csv: missing feature column\(s\): Process_BiscuitThickness, .*needs all 30$"
    ):
        parts.score_upload(client, b"part_id,Process_Temperature\nx,650\n", list(SAMPLE), "plant.csv")
    with pytest.raises(BatchInputError, match=r"^plant\.csv: a header but no rows$"):
        parts.score_upload(client, _csv([]), list(SAMPLE), "plant.csv")


def test_ordered_puts_defects_first_then_by_probability():
    got = parts.ordered(
        [
            {"class": "normal", "probability": 0.2},
            {"class": "defect", "probability": 0.3},
            {"class": "defect", "probability": 0.9},
        ]
    )
    assert [p["probability"] for p in got] == [0.9, 0.3, 0.2]
