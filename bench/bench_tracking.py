"""Tracking benchmark: IDF1 and ID switches on synthetic videos of real faces on known paths.

Each scenario pastes real faces (the astronaut's, from ``skimage.data.astronaut``, and
faces of ``skimage.data.lfw_subset``, enlarged with a border as in bench_detect.py) on a
background photo without faces and moves them along known paths: one face drifting at
60 px/s (issue 16's clip), at 150 and 250 px/s, turning at the frame's edges; a face
hidden behind a card for 1 s, moving and still; two people crossing (at an angle and
head-on), one overtaking another, and three crossing, the later ones passing in front
(the earlier ones are hidden for up to 0.8 s). Each scenario runs through the real
detector, model and tracker in two ways:

- video: written to an MJPG file at 25 fps and read by ``src.streams.video.analyze_video``
  at its default sampling (every 0.5 s; ``--every`` for others);
- live: frames at 15 and 30 fps (``--live-fps``) through the live camera's
  ``FramePipeline`` with its default settings (detection every 3rd frame on a 320 px
  copy), scored on the frames where detection ran (the others repeat its boxes). The
  faces are 1.75 times larger (a webcam's faces are; on the 320 px copy they are then
  38-56 px), on the same paths at the same speeds.

Scoring, computed here from the standard definitions (Ristani et al. 2016 for IDF1,
the CLEAR MOT convention for ID switches): a ground-truth face counts in a frame when at
least half of it is visible (not under the card or a face in front); a track's box
matches it at IoU >= 0.5. IDF1 = 2 IDTP / (ground-truth boxes + track boxes), where IDTP
comes from the one-to-one assignment of ground-truth people to track ids that maximises
the frames they share (``scipy.optimize.linear_sum_assignment``). An ID switch is a
frame where a person is matched to another track id than the last one it was matched
to (per-frame matching keeps last frame's pairs when they still overlap). The overall
IDF1 pools the boxes of all runs. Per run the table also gives the people and the track
ids seen, the ground-truth and track boxes, ``recall`` (ground-truth boxes matched in
their frame) and ``gap s``, the longest time between two scored frames showing the same
person (the time hidden plus one gap between frames).

Usage: python bench/bench_tracking.py [--every 0.5] [--live-fps 15 30] [--only NAME]
The last line reads ``idf1=... id_switches=...``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment
from skimage import data

from src import config
from src.engine.faces import get_detector, iou
from src.engine.inference import get_recognizer
from src.streams import video
from src.streams.live import FramePipeline

WIDTH, HEIGHT = 640, 360
VIDEO_FPS = 25.0
MATCH_IOU = 0.5
MIN_VISIBLE = 0.5
# A webcam sees faces larger than a shop camera, and the live detector works on a 320 px
# copy (half these frames): live runs enlarge every face by this much.
LIVE_FACE_SCALE = 1.75

Box = tuple[float, float, float, float]
Point = tuple[float, float]


@dataclass(frozen=True)
class Sprite:
    """A face photo and where its face is (a square, in the photo's pixels)."""

    name: str
    image: np.ndarray  # RGB
    face: tuple[int, int, int]  # x, y, side

    def render(self, size: int) -> tuple[np.ndarray, int, int]:
        """The photo scaled so that its face is ``size`` px, and the face's offset in it."""
        scale = size / self.face[2]
        w, h = round(self.image.shape[1] * scale), round(self.image.shape[0] * scale)
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        return (
            cv2.resize(self.image, (w, h), interpolation=interp),
            round(self.face[0] * scale),
            round(self.face[1] * scale),
        )


@cache
def sprites() -> dict[str, Sprite]:
    """The astronaut (with her surroundings) and a few LFW faces the detector finds at every size used."""
    out = {"astronaut": Sprite("astronaut", data.astronaut()[40:190, 150:300], (26, 26, 97))}
    detector = get_detector()
    lfw = (data.lfw_subset()[:100] * 255).astype(np.uint8)
    for i, face in enumerate(lfw):
        pad = 6
        gray = cv2.copyMakeBorder(face, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        sprite = Sprite(f"lfw{i}", np.dstack([gray] * 3), (pad, pad, face.shape[0]))
        ok = True
        for size in (56, 64, 72):
            canvas = background().copy()
            patch, ox, oy = sprite.render(size)
            canvas[100 : 100 + patch.shape[0], 200 : 200 + patch.shape[1]] = patch
            found = detector.detect_faces(canvas)
            truth = (200 + ox, 100 + oy, size, size)
            ok &= len(found) == 1 and iou(found[0].box, truth) >= 0.6
        if ok:
            out[f"lfw{len(out)}"] = sprite
        if len(out) == 4:
            break
    return out


@cache
def background() -> np.ndarray:
    """A faceless photo (scikit-image's coffee), dimmed so the faces stand out a little."""
    photo = cv2.resize(data.coffee(), (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
    return (photo * 0.6 + 60).astype(np.uint8)


@dataclass(frozen=True)
class Person:
    """A face moving at ``speed`` px/s through ``waypoints`` (face centres), then standing still."""

    sprite: str
    size: int
    waypoints: tuple[Point, ...]
    speed: float = 0.0

    def centre(self, t: float) -> Point:
        travelled = self.speed * t
        for a, b in zip(self.waypoints, self.waypoints[1:]):
            leg = float(np.hypot(b[0] - a[0], b[1] - a[1]))
            if travelled <= leg:
                f = travelled / leg if leg else 0.0
                return a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])
            travelled -= leg
        return self.waypoints[-1]

    def box(self, t: float) -> Box:
        cx, cy = self.centre(t)
        return cx - self.size / 2, cy - self.size / 2, float(self.size), float(self.size)


@dataclass(frozen=True)
class Scenario:
    """People pasted in order (later ones in front); ``hidden`` puts a card over a person for a time."""

    name: str
    people: tuple[Person, ...]
    duration: float
    hidden: tuple[tuple[int, float, float], ...] = ()  # (person, from s, to s)


SCENARIOS = (
    Scenario("drift 60 px/s", (Person("astronaut", 44, ((60, 180), (580, 180)), 60),), 8.0),
    Scenario("drift 150 px/s", (Person("astronaut", 56, ((60, 180), (580, 180), (60, 180)), 150),), 7.0),
    Scenario(
        "drift 250 px/s zigzag",
        (Person("lfw1", 64, ((60, 60), (580, 300), (60, 300), (580, 60)), 250),),
        6.0,
    ),
    Scenario("hidden 1 s, moving", (Person("astronaut", 56, ((60, 180), (580, 180)), 80),), 7.0, ((0, 3.0, 4.0),)),
    Scenario("hidden 1 s, still", (Person("lfw2", 64, ((320, 180),)),), 5.0, ((0, 2.0, 3.0),)),
    Scenario(
        "2 crossing",
        (
            Person("lfw1", 64, ((60, 170), (580, 185)), 120),
            Person("astronaut", 64, ((580, 185), (60, 170)), 120),
        ),
        5.0,
    ),
    Scenario(
        "2 crossing, head-on",
        (
            Person("lfw3", 60, ((60, 180), (580, 180)), 150),
            Person("lfw1", 60, ((580, 180), (60, 180)), 150),
        ),
        4.0,
    ),
    Scenario(
        "2 overtaking",
        (
            Person("astronaut", 56, ((200, 200), (440, 200)), 60),
            Person("lfw2", 60, ((40, 190), (600, 190)), 260),
        ),
        4.0,
    ),
    Scenario(
        "3 crossing",
        (
            Person("lfw1", 60, ((40, 100), (600, 260)), 180),
            Person("astronaut", 60, ((300, 20), (340, 340)), 150),
            Person("lfw3", 60, ((600, 110), (40, 250)), 180),
        ),
        4.0,
    ),
)


def _paste(canvas: np.ndarray, patch: np.ndarray, x: int, y: int) -> tuple[int, int, int, int] | None:
    """Paste ``patch`` with its top-left at (x, y), clipped to the canvas; returns the covered rectangle."""
    h, w = patch.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(canvas.shape[1], x + w), min(canvas.shape[0], y + h)
    if x1 <= x0 or y1 <= y0:
        return None
    canvas[y0:y1, x0:x1] = patch[y0 - y : y1 - y, x0 - x : x1 - x]
    return x0, y0, x1 - x0, y1 - y0


@cache
def _card(side: int) -> np.ndarray:
    """The occluder: a piece of the coffee photo, as a card held in front of the face."""
    piece = data.coffee()[40:240, 200:400]
    return cv2.resize(piece, (side, side), interpolation=cv2.INTER_AREA)


def render(scenario: Scenario, t: float) -> tuple[np.ndarray, dict[int, Box]]:
    """The frame at ``t`` and the visible faces' true boxes, by person."""
    canvas = background().copy()
    patches: list[tuple[int, int, int, int] | None] = []
    cards: list[tuple[int, int, int, int]] = []
    for person in scenario.people:
        patch, ox, oy = sprites()[person.sprite].render(person.size)
        x, y, _, _ = person.box(t)
        patches.append(_paste(canvas, patch, round(x) - ox, round(y) - oy))
    for i, start, end in scenario.hidden:
        if start <= t < end:
            x, y, w, _ = scenario.people[i].box(t)
            side = round(w * 1.6)
            card = _paste(canvas, _card(side), round(x + w / 2 - side / 2), round(y + w / 2 - side / 2))
            cards += [card] if card else []
    visible = {}
    for i, person in enumerate(scenario.people):
        box = person.box(t)
        in_front = [c for c in patches[i + 1 :] if c is not None] + cards
        if _visible_share(box, in_front) >= MIN_VISIBLE:
            visible[i] = box
    return canvas, visible


def _visible_share(box: Box, covers: Sequence[tuple[int, int, int, int]]) -> float:
    x, y, w, h = (round(v) for v in box)
    mask = np.ones((h, w), bool)
    for cx, cy, cw, ch in covers:
        mask[max(0, cy - y) : max(0, cy + ch - y), max(0, cx - x) : max(0, cx + cw - x)] = False
    return float(mask.mean())


@dataclass
class Frames:
    """Ground truth and tracker output per scored frame: {person: box} and {track id: box}."""

    times: list[float] = field(default_factory=list)
    truth: list[dict[int, Box]] = field(default_factory=list)
    found: list[dict[int, Box]] = field(default_factory=list)

    def add(self, t: float, truth: dict[int, Box], found: dict[int, Box]) -> None:
        self.times.append(t)
        self.truth.append(truth)
        self.found.append(found)

    def longest_gap(self) -> float:
        """The longest time between two scored frames showing the same person (hidden time plus one gap)."""
        gaps = [0.0]
        for person in {p for truth in self.truth for p in truth}:
            seen = [t for t, truth in zip(self.times, self.truth) if person in truth]
            gaps += [b - a for a, b in zip(seen, seen[1:])]
        return max(gaps)


def run_video(recognizer, scenario: Scenario, every_s: float, folder: Path) -> Frames:
    path = folder / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), VIDEO_FPS, (WIDTH, HEIGHT))
    for i in range(round(scenario.duration * VIDEO_FPS)):
        frame, _ = render(scenario, i / VIDEO_FPS)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    result = video.analyze_video(recognizer, path, every_s=every_s)
    frames = Frames()
    for index in result.timeline["frame"]:
        _, truth = render(scenario, index / VIDEO_FPS)
        rows = result.faces[result.faces["frame"] == index]
        frames.add(index / VIDEO_FPS, truth, {int(r.track_id): (r.x, r.y, r.w, r.h) for r in rows.itertuples()})
    return frames


class _CountingDetector:
    """The live pipeline's own detector, counting its calls (to score only the frames it ran on)."""

    def __init__(self, detect_width: int):
        self.detect_width = detect_width
        self.calls = 0

    def detect_faces(self, rgb: np.ndarray) -> list:
        self.calls += 1
        return get_detector(max_side=max(self.detect_width, 0)).detect_faces(rgb)


def run_live(recognizer, scenario: Scenario, fps: float) -> Frames:
    people = tuple(replace(p, size=round(p.size * LIVE_FACE_SCALE)) for p in scenario.people)
    scenario = replace(scenario, people=people)
    detector = _CountingDetector(config.LIVE_DETECT_WIDTH)
    pipeline = FramePipeline(recognizer, detector_factory=lambda: detector)
    frames = Frames()
    for i in range(round(scenario.duration * fps)):
        t = i / fps
        rgb, truth = render(scenario, t)
        calls = detector.calls
        tracks = pipeline.classify(rgb, t)
        if detector.calls > calls:
            frames.add(t, truth, {track.id: track.box for track in tracks})
    return frames


@dataclass(frozen=True)
class Score:
    idtp: int
    truth_boxes: int
    found_boxes: int
    matched_boxes: int  # per-frame matches (detection and tracking both right at that frame)
    switches: int
    people: int
    track_ids: int
    longest_gap: float

    @property
    def idf1(self) -> float:
        total = self.truth_boxes + self.found_boxes
        return 2 * self.idtp / total if total else 1.0


def score(frames: Frames) -> Score:
    """IDF1's parts and ID switches of one run (see the module docstring)."""
    people = sorted({p for truth in frames.truth for p in truth})
    ids = sorted({t for found in frames.found for t in found})
    shared = np.zeros((len(people), len(ids)))
    last: dict[int, int] = {}
    switches = matched = 0
    for truth, found in zip(frames.truth, frames.found):
        overlap = {(p, t): iou(truth[p], found[t]) for p in truth for t in found}
        for (p, t), value in overlap.items():
            if value >= MATCH_IOU:
                shared[people.index(p), ids.index(t)] += 1
        # Per-frame matching: last frame's pairs stand while they still overlap.
        pairs = {p: last[p] for p in truth if last.get(p) in found and overlap[p, last[p]] >= MATCH_IOU}
        rest_p = [p for p in truth if p not in pairs]
        rest_t = [t for t in found if t not in pairs.values()]
        if rest_p and rest_t:
            cost = np.array([[1.0 - overlap[p, t] for t in rest_t] for p in rest_p])
            for r, c in zip(*linear_sum_assignment(cost)):
                if cost[r, c] <= 1.0 - MATCH_IOU:
                    p, t = rest_p[r], rest_t[c]
                    switches += p in last and last[p] != t
                    pairs[p] = t
        last.update(pairs)
        matched += len(pairs)
    idtp = 0
    if shared.size:
        rows, cols = linear_sum_assignment(shared, maximize=True)
        idtp = int(shared[rows, cols].sum())
    return Score(
        idtp=idtp,
        truth_boxes=sum(len(t) for t in frames.truth),
        found_boxes=sum(len(f) for f in frames.found),
        matched_boxes=matched,
        switches=switches,
        people=len(people),
        track_ids=len(ids),
        longest_gap=frames.longest_gap(),
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=float, nargs="+", default=[0.5], help="video sampling, seconds")
    parser.add_argument("--live-fps", type=float, nargs="+", default=[15.0, 30.0], help="live frame rates")
    parser.add_argument("--only", default="", help="run the scenarios whose name contains this")
    args = parser.parse_args(argv)

    recognizer = get_recognizer()
    print(f"faces: {', '.join(sprites())}; detection every {config.LIVE_DETECT_EVERY} live frames")
    print(f"tracker: max_age {config.TRACK_MAX_AGE} s, speed {config.TRACK_SPEED} sizes/s, gate {config.TRACK_GATE} sd")
    header = f"{'scenario':<24}{'run':<14}{'people':>7}{'ids':>5}{'truth':>7}{'found':>7}{'recall':>8}{'gap s':>7}{'IDF1':>7}{'IDSW':>6}"
    print(header)
    scores: list[Score] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_tracking_") as tmp:
        for scenario in SCENARIOS:
            if args.only and args.only not in scenario.name:
                continue
            runs = [("video", e) for e in args.every] + [("live", f) for f in args.live_fps]
            for kind, rate in runs:
                if kind == "video":
                    label, frames = f"video {rate:g} s", run_video(recognizer, scenario, rate, Path(tmp))
                else:
                    label, frames = f"live {rate:g} fps", run_live(recognizer, scenario, rate)
                s = score(frames)
                scores.append(s)
                recall = s.matched_boxes / s.truth_boxes if s.truth_boxes else 1.0
                print(
                    f"{scenario.name:<24}{label:<14}{s.people:>7}{s.track_ids:>5}{s.truth_boxes:>7}"
                    f"{s.found_boxes:>7}{recall:>8.3f}{s.longest_gap:>7.2f}{s.idf1:>7.3f}{s.switches:>6}"
                )
    idtp = sum(s.idtp for s in scores)
    total = sum(s.truth_boxes + s.found_boxes for s in scores)
    switches = sum(s.switches for s in scores)
    print(f"{len(scores)} runs in {time.perf_counter() - started:.0f} s")
    print(f"idf1={2 * idtp / total if total else 1.0:.3f} id_switches={switches}")


if __name__ == "__main__":
    main()
