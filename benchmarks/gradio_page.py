"""The demo's inputs and outputs as a Gradio page, only to compare page loads (docs/demo.md): it answers
nothing. Run it with a Python that has Gradio (not a requirement of this project):

    python benchmarks/gradio_page.py 7861      # then: python benchmarks/bench_page_load.py http://127.0.0.1:7861/
"""
import sys

import gradio as gr

with gr.Blocks(title="avqa: ask a video") as page:
    gr.Markdown("# Ask a video")
    with gr.Row():
        with gr.Column():
            gr.Gallery(label="a clip")
            gr.File(label="or upload a video", file_types=[".mp4", ".mov", ".webm"])
            gr.Dropdown(["AVST, the bundled checkpoint"], label="model")
            gr.Dropdown([f"template {i}" for i in range(33)], label="from a template")
            question = gr.Textbox(label="question")
            ask = gr.Button("Ask")
        with gr.Column():
            gr.Video(label="where it looked")
            gr.Label(num_top_classes=5, label="answer")
            gr.Gallery(label="second by second")
            gr.HTML()

page.launch(server_name="127.0.0.1", server_port=int(sys.argv[1]) if len(sys.argv) > 1 else 7861)
