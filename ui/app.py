"""The operator page (``streamlit run ui/app.py``; ``diecast ui`` starts it): one part, a batch, this session's history.

Every number shown is the back end's answer, rounded once by ``ui.form.shown``. The back end is built once per
server from the environment (``ui.client.from_env``): the handler embedded on ``MODEL_PATH`` or
``models_onnx/<MODEL_VERSION>``, or the deployed API at ``DIECAST_API_URL``. Any failure is shown as a message,
never a traceback.
"""

from __future__ import annotations

import logging
import os
import random
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from batch.job import BatchInputError
from runtime.exceptions import ConfigurationError, ModelArtifactError
from serving.settings import Settings
from ui import client as clients
from ui import form, parts

logger = logging.getLogger("diecast.ui")
KEY = form.KEY_PREFIX


@st.cache_resource(show_spinner="Loading the model…")
def backend() -> tuple[clients.Client, form.Readings]:
    """The back end and the served model's readings, built once per server process."""
    model_dir = Settings.from_env(os.environ).model_dir
    return clients.from_env(os.environ, model_dir), form.Readings.of(model_dir)


def main() -> None:
    st.set_page_config(page_title="Die-casting defect prediction", layout="wide")
    st.title("Die-casting defect prediction")
    try:
        client, readings = backend()
    except (clients.BackendError, ConfigurationError, ModelArtifactError) as exc:
        st.error(f"The back end could not start: {exc}")
        st.stop()
    st.caption(f"Back end: {client.description}. Training ranges from model {readings.model_version}.")
    _init_state(readings)
    one, batch, history = st.tabs(["One part", "Batch", "History"])
    with one:
        _guarded(_one_part, client, readings)
    with batch:
        _guarded(_batch, client, readings)
    with history:
        _history()


def _guarded(section: Any, *args: Any) -> None:
    """A section of the page; a failure is a message on it (logged with its traceback), not a traceback."""
    try:
        section(*args)
    except clients.BackendError as exc:
        st.error(str(exc))
    except Exception:
        logger.exception("the page failed")
        st.error("Something went wrong on this page; it has been logged. Try again, or reload the page.")


def _init_state(readings: form.Readings) -> None:
    state = st.session_state
    if "history" not in state:
        state.history = []
        state.warned = set()
        state.rng = random.Random()
        state.on_form = form.sample_part()  # the inputs' value=: what a browser draws when it first mounts them


def _load_random(readings: form.Readings) -> None:
    """A row of the data on the form. Its readings become the inputs' ``value=`` and are written to their keys:
    a write reaches inputs the browser has already drawn (Streamlit sends it as a one-shot update), and the
    ``value=`` is what an input drawn afresh shows, so the browser never falls back to the bare default 0."""
    state = st.session_state
    state.on_form = form.random_part(readings.names, state.rng)
    for name, value in state.on_form.items():
        state[KEY + name] = value
    state.warned = set()


# --- one part ------------------------------------------------------------------------------------------------------


def _one_part(client: clients.Client, readings: form.Readings) -> None:
    st.button("Load a random part from the data", on_click=_load_random, args=(readings,))
    with st.form("part"):
        for title, features in readings.grouped().items():
            st.subheader(title)
            columns = st.columns(4)
            for i, feature in enumerate(features):
                with columns[i % 4]:
                    _reading_input(feature)
        submitted = st.form_submit_button("Predict", type="primary")
    if submitted:
        _predict(client, readings)
    if "last" in st.session_state:
        _show_answer(*st.session_state.last)


def _reading_input(feature: Any) -> None:
    text = form.label(feature)
    if feature.name in st.session_state.warned:
        text = f":red[{text} — outside the training range]"
    value = st.session_state.on_form[feature.name]
    st.number_input(text, value=value, key=KEY + feature.name, format="%g", help=form.range_help(feature))


def _predict(client: clients.Client, readings: form.Readings) -> None:
    payload = {"features": {name: st.session_state[KEY + name] for name in readings.names}}
    reply = client.predict(payload)
    if not reply.ok:
        st.session_state.warned = set()
        st.session_state.pop("last", None)
        st.error(reply.error_text())
        return
    st.session_state.warned = {w["feature"] for w in reply.body.get("warnings", [])}
    try:
        explanation, note = client.explain(payload), client.explain_note
    except clients.BackendError as exc:  # the prediction stands; only its explanation is missing
        explanation, note = None, f"explanations are not available: {exc}"
    st.session_state.last = (reply.body, explanation, note)
    st.session_state.history.append({"source": "one part", **form.prediction_row(reply.body)})
    st.rerun()  # redraw the form with the handler's warnings highlighted


def _show_answer(body: dict[str, Any], explanation: clients.Reply | None, note: str) -> None:
    prediction = body["prediction"]
    st.subheader("Prediction")
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Class", prediction["class"])
    c2.metric("Probability of a defect", form.shown(prediction["probability"]))
    c3.metric("Confidence", prediction["confidence"])
    c4.metric("Model version", body["model_version"])
    for w in body.get("warnings", []):
        low, high = w["range"]
        st.warning(f"{w['feature']} = {w['value']:g} is outside the training range [{low:g}, {high:g}]")
    attention = pd.DataFrame(
        {"reading": list(body["attention_weights"]), "weight": list(body["attention_weights"].values())}
    )
    st.markdown("**Attention weights** (the encoder's, close to uniform: not an explanation)")
    st.altair_chart(_bars(attention, "weight"), use_container_width=True)
    _show_explanation(explanation, note)


def _show_explanation(explanation: clients.Reply | None, note: str) -> None:
    st.markdown("**Contributions** (how each reading moved the log-odds of a defect)")
    if explanation is None:
        st.info(note or "explanations are not available")
        return
    if not explanation.ok:
        st.error(explanation.error_text())
        return
    contributions = explanation.body["explanation"]["contributions"]
    st.write(form.explanation_words(contributions))
    frame = pd.DataFrame({"reading": list(contributions), "contribution": list(contributions.values())})
    frame["direction"] = ["toward defect" if v > 0 else "toward normal" for v in frame["contribution"]]
    st.altair_chart(_bars(frame, "contribution", color="direction"), use_container_width=True)


def _bars(frame: pd.DataFrame, value: str, color: str | None = None) -> alt.Chart:
    """Horizontal bars, largest magnitude on top."""
    order = frame.reindex(frame[value].abs().sort_values(ascending=False).index)["reading"].tolist()
    y = alt.Y("reading", sort=order, axis=alt.Axis(labelLimit=260, title=None))
    chart = alt.Chart(frame).mark_bar().encode(x=alt.X(value, type="quantitative"), y=y)
    if color:
        chart = chart.encode(color=alt.Color(color, type="nominal"))
    return chart.properties(height=18 * len(frame))


# --- batch ---------------------------------------------------------------------------------------------------------


def _batch(client: clients.Client, readings: form.Readings) -> None:
    st.write(
        f"Upload a CSV with the {len(readings.names)} reading columns (named as in the form) and any id columns; "
        f"at most {parts.MAX_ROWS} rows."
    )
    upload = st.file_uploader("CSV of parts", type=["csv"])
    if upload is None:
        return
    data = upload.getvalue()
    key = (upload.name, hash(data))
    if st.session_state.get("batch_key") != key:
        try:
            scored = parts.score_upload(client, data, readings.names, upload.name)
        except (BatchInputError, parts.BatchAnswerError) as exc:
            st.error(str(exc))
            return
        st.session_state.batch_key, st.session_state.batch = key, scored
        rows = [{"source": f"{upload.name} row {p['row']}", **_history_row(p, scored)} for p in scored.parts]
        st.session_state.history.extend(rows)
    _show_batch(st.session_state.batch, upload.name)


def _history_row(part: dict[str, Any], scored: parts.Scored) -> dict[str, Any]:
    return {**form.answer_fields(part), "model_version": scored.model_version}


def _show_batch(scored: parts.Scored, name: str) -> None:
    defects = sum(p["class"] == "defect" for p in scored.parts)
    st.write(f"{len(scored.parts)} parts scored ({defects} defects), {len(scored.rejects)} rejected.")
    if scored.rejects:
        st.error("Rows not scored, with the reason:")
        st.table(pd.DataFrame(scored.rejects))
    if not scored.parts:
        return
    ordered = parts.ordered(scored.parts)
    table = pd.DataFrame([{**p, "probability": form.shown(p["probability"])} for p in ordered])
    st.dataframe(table, hide_index=True, use_container_width=True)
    hist = pd.DataFrame({"probability": [p["probability"] for p in scored.parts]})
    chart = (
        alt.Chart(hist).mark_bar().encode(alt.X("probability", bin=alt.Bin(step=0.05)), alt.Y("count()", title="parts"))
    )
    st.altair_chart(chart, use_container_width=True)
    download = pd.DataFrame([{**p, "model_version": scored.model_version} for p in scored.parts])
    stem = name.rsplit(".", 1)[0]
    st.download_button("Download the scored CSV", download.to_csv(index=False), f"{stem}.scored.csv", "text/csv")


# --- history -------------------------------------------------------------------------------------------------------


def _history() -> None:
    rows = st.session_state.history
    if not rows:
        st.write("No predictions in this session yet.")
        return
    frame = pd.DataFrame(rows)
    frame.insert(0, "n", range(1, len(frame) + 1))
    frame["defect rate so far"] = (frame["class"] == "defect").cumsum() / frame["n"]
    st.write(f"{len(frame)} predictions in this session, {int((frame['class'] == 'defect').sum())} defects.")
    chart = alt.Chart(frame).mark_line().encode(x="n", y=alt.Y("defect rate so far", scale=alt.Scale(domain=[0, 1])))
    st.altair_chart(chart, use_container_width=True)
    shown = frame.assign(probability=frame["probability"].map(form.shown))
    st.dataframe(shown, hide_index=True, use_container_width=True)


main()
