"""14x14 feature extraction: the original route against ours, on the same clips, in one run.

Original route, as the original scripts: ffmpeg decodes every frame into a pipe as raw RGB, the
frames at the 1 fps frame numbers are saved as JPEG files (the original's moviepy reader and imsave); then
each JPEG is opened with PIL, resized and normalised one at a time, and each clip's frames go
through a plain float32 ResNet-18 (layer4 at stride 1). Ours: frames decoded in memory (FFmpeg's
libraries) straight to a ResNet with BatchNorm folded into the convolutions, channels-last,
each CPU core taking whole clips (decoding and network); optionally in bfloat16. Both networks
are built before the clock starts. By default the clips are synthetic, at 640x360 like much of
the real data.

    python benchmarks/bench_features.py                   # 24 synthetic clips of 10 s at 640x360
    python benchmarks/bench_features.py --videos data/videos --limit 20
"""
import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import torch
from PIL import Image
from torchvision import transforms

from avqa.features import backbones as B
from avqa.features.extract import extract_visual
from avqa.features.files import list_inputs
from avqa.media import sample_frame_numbers, VIDEO_EXTENSIONS
from avqa.machine import describe_machine


def original_route(videos, seconds, work: Path) -> tuple[float, dict]:
    """ffmpeg raw frames through a pipe -> JPEG files -> PIL one image at a time -> plain ResNet per clip."""
    import av
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    model, _ = B.build("res18_14x14", None, 0)  # the same weights as ours, nothing folded
    tf = transforms.Compose([transforms.Resize([224, 224]), transforms.ToTensor(),
                             transforms.Normalize(B.MEAN_14, B.STD_14)])
    feats = {}
    t0 = time.time()
    for v in videos:
        with av.open(str(v)) as c:
            s = c.streams.video[0]
            n_frames, fps, w, h = s.frames, float(s.average_rate), s.codec_context.width, s.codec_context.height
        wanted = sample_frame_numbers(n_frames, fps, seconds)
        folder = work / v.stem
        folder.mkdir(parents=True)
        pipe = subprocess.Popen([ffmpeg, "-v", "quiet", "-i", str(v), "-f", "image2pipe", "-pix_fmt", "rgb24",
                                 "-vcodec", "rawvideo", "-"], stdout=subprocess.PIPE)
        frame_bytes, number, saved = w * h * 3, 0, {}
        need = set(wanted)
        while len(saved) < len(need):
            raw = pipe.stdout.read(frame_bytes)
            if len(raw) < frame_bytes:
                break
            number += 1
            if number in need:
                path = folder / f"{number:08d}.jpg"
                Image.fromarray(np.frombuffer(raw, np.uint8).reshape(h, w, 3)).save(path, quality=75)
                saved[number] = path
        pipe.stdout.close()
        pipe.kill()
        pipe.wait()
        images = torch.stack([tf(Image.open(saved[n]).convert("RGB")) for n in wanted])
        with torch.no_grad():
            feats[v.stem] = model(images).numpy()
    return time.time() - t0, feats


def our_route(video_dir: Path, seconds: int, out: Path, device: str, bf16: bool, used_segments: int | None = None) -> float:
    report = extract_visual("res18_14x14", video_dir, out, seconds, None, 0, device, bf16, None, 2, True,
                            used_segments=used_segments)
    assert not report.failed, report.summary()
    return report.seconds  # from the moment the network is built


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", default=None, help="folder of videos (default: generate synthetic clips)")
    p.add_argument("--clips", type=int, default=24, help="synthetic clips to generate when --videos is not given")
    p.add_argument("--limit", type=int, default=None, help="use at most this many videos")
    p.add_argument("--seconds", type=int, default=10, help="frames per clip (T)")
    p.add_argument("--size", default="640x360", help="frame size of the synthetic clips (default: 640x360)")
    p.add_argument("--used_seconds", action="store_true",
                   help="also time --used_seconds (only the seconds AVST and grounding read; use --seconds 60 "
                        "as the real data) against all seconds, both ours in float32")
    a = p.parse_args()
    print(f"machine: {describe_machine()}", flush=True)  # every timing names its machine
    tmp = Path(tempfile.mkdtemp(prefix="avqa-bench-feat-"))
    try:
        if a.videos:
            video_dir = Path(a.videos)
        else:
            from avqa.synthetic.generate import generate, parse_args
            w, h = a.size.split("x")
            generate(parse_args(["--out", str(tmp / "set"), "--num_clips", str(a.clips), "--seconds", str(a.seconds),
                                 "--width", w, "--height", h]), log=lambda *_: None)
            video_dir = tmp / "set" / "videos"
        videos = [v for v in list_inputs(video_dir) if v.suffix.lower() in VIDEO_EXTENSIONS][: a.limit]
        if a.limit:
            sub = tmp / "subset"
            sub.mkdir()
            for v in videos:
                (sub / v.name).symlink_to(v.resolve())
            video_dir = sub
        frames = len(videos) * a.seconds
        torch.set_num_threads(torch.get_num_threads())
        print(f"{len(videos)} clips x {a.seconds} frames = {frames} frames, CPU threads {torch.get_num_threads()}")
        t_orig, f_orig = original_route(videos, a.seconds, tmp / "jpeg")
        print(f"  original route (ffmpeg pipe, JPEG files, PIL, plain float32): {frames / t_orig:7.1f} frames/s")
        t_ours = our_route(video_dir, a.seconds, tmp / "fp32", "cpu", False)
        print(f"  ours, float32                                               : {frames / t_ours:7.1f} frames/s  "
              f"({t_orig / t_ours:.2f}x the original)")
        t_bf16 = our_route(video_dir, a.seconds, tmp / "bf16", "cpu", True)
        rel = []
        for v in videos:
            x, y = np.load(tmp / "fp32" / f"{v.stem}.npy"), np.load(tmp / "bf16" / f"{v.stem}.npy")
            rel.append(np.linalg.norm(y - x) / np.linalg.norm(x))
        print(f"  ours, bfloat16                                              : {frames / t_bf16:7.1f} frames/s  "
              f"({t_orig / t_bf16:.2f}x the original; relative difference from float32 {100 * np.mean(rel):.2f}%)")
        same = np.mean([np.linalg.norm(np.load(tmp / "fp32" / f"{v.stem}.npy") - f_orig[v.stem]) /
                        np.linalg.norm(f_orig[v.stem]) for v in videos])
        print(f"  ours vs original route, float32: relative difference {100 * same:.2f}% (JPEG round trip only)")
        if a.used_seconds:
            from avqa.features.seconds import used_seconds
            n_used = len(used_seconds(a.seconds, 10))
            t_used = our_route(video_dir, a.seconds, tmp / "used", "cpu", False, used_segments=10)
            print(f"  ours, float32, --used_seconds ({n_used} of {a.seconds} seconds)           : {t_used:7.1f} s "
                  f"against {t_ours:.1f} s for all seconds: {100 * t_used / t_ours:.0f}% of the time")
        if torch.cuda.is_available():
            for bf16 in (False, True):
                t = our_route(video_dir, a.seconds, tmp / f"cuda{bf16}", "cuda", bf16)
                print(f"  ours on {torch.cuda.get_device_name()}, {'bfloat16' if bf16 else 'float32'}: "
                      f"{frames / t:7.1f} frames/s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
