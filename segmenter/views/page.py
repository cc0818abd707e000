"""The page's layout (Gradio): a File tab (segment an upload or a recording) and a Batch tab (an
output folder's manifest, files, failures and a file's timeline), wired to `web.Service`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from ..profiles import PROFILES
from .uploads import KEEP_DOWNLOADS_S

if TYPE_CHECKING:
    from .web import Service

TABLE_HEADERS = ["#", "start (s)", "end (s)", "duration (s)"]


ENGINE_LABELS = {"fsmn": "FSMN-VAD", "silero": "silero-vad", "fusion": "FSMN-VAD + silero-vad"}


def build(service: Service) -> gr.Blocks:
    """The page: a File tab and a Batch tab."""
    model = service.engine.vad.model_info
    with gr.Blocks(
        title="segmenter", analytics_enabled=False, delete_cache=(600, KEEP_DOWNLOADS_S)
    ) as page:
        gr.Markdown(
            f"## segmenter: speech segments\n{ENGINE_LABELS[model['engine']]},"
            f" {model['runtime']} {model['precision']}."
            f" Uploads up to {service.settings.max_upload_mb:g} MB."
        )
        with gr.Tab("File", id="file"):
            _file_tab(service)
        with gr.Tab("Batch", id="batch"):
            _batch_tab(service, page)
    return page


def _file_tab(service: Service) -> None:
    decision, options = service.settings.decision, service.engine.vad.options
    with gr.Row():
        audio = gr.Audio(
            sources=["upload", "microphone"], type="filepath", label="Recording", elem_id="audio"
        )
        with gr.Column():
            engine = service.engine.vad.engine.name
            profile = gr.Radio(
                [name for name, p in PROFILES.items() if p.reads(engine)],
                value=decision.profile,
                label="Profile",
                info="funasr: FunASR's exact segments. precise: tight, separate segments.",
                elem_id="profile",
            )
            end_silence = gr.Slider(
                0,
                3000,
                value=decision.overrides.get("max_end_silence_time", 0),
                step=50,
                label="End silence (ms)",
                info="funasr profile: silence that ends a segment; 0 keeps FunASR's schedule"
                " (2000 to 100 ms).",
                elem_id="end-silence",
            )
            max_segment = gr.Slider(
                1,
                120,
                value=decision.overrides.get(
                    "max_single_segment_time", options.max_single_segment_time
                )
                / 1000,
                step=1,
                label="Maximum segment (s)",
                info="Longer speech is cut into segments of at most this length.",
                elem_id="max-segment",
            )
            button = gr.Button("Segment", variant="primary", elem_id="segment")
    timeline = gr.HTML(elem_id="waveform")
    summary = gr.Markdown(elem_id="totals")
    with gr.Row():
        table = gr.Dataframe(headers=TABLE_HEADERS, label="Segments", elem_id="segments")
        files = gr.File(label="Downloads", file_count="multiple", elem_id="downloads")
    button.click(
        service.segment_upload,
        [audio, end_silence, max_segment, profile],
        [timeline, table, summary, files, audio],
    )


def _batch_tab(service: Service, page: gr.Blocks) -> None:
    summary = gr.Markdown(elem_id="batch-summary")
    refresh = gr.Button("Refresh", size="sm", elem_id="refresh")
    files = gr.Dataframe(
        headers=["file", "status", "audio (s)", "speech (s)", "speech %", "segments"],
        label="Files",
        elem_id="batch-files",
        max_height=320,
    )
    failures = gr.Dataframe(
        headers=["file", "reason", "attempts"],
        label="Failures",
        elem_id="batch-failures",
        wrap=True,
        column_widths=["25%", "65%", "10%"],
        max_height=320,
    )
    chosen = gr.Dropdown(label="File", elem_id="batch-file")
    timeline = gr.HTML(elem_id="batch-timeline")
    with gr.Row():
        segments = gr.Dataframe(headers=TABLE_HEADERS, label="Segments", elem_id="batch-segments")
        with gr.Column():
            segment = gr.Dropdown(label="Segment", elem_id="batch-segment")
            player = gr.Audio(label="Segment audio", interactive=False, elem_id="batch-player")
    outputs = [summary, files, failures, chosen]
    page.load(service.overview, None, outputs)
    refresh.click(service.overview, None, outputs)
    chosen.change(service.batch_file, chosen, [timeline, segments, segment])
    segment.change(service.play_segment, [chosen, segment], player)
