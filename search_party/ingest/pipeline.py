"""A clip file in, sighting drafts out, all in memory: probe → decode → sample → motion → detect →
track → embed.  Nothing here stores anything; full frames never outlive the loop iteration.

Most of a clip's cost is decoding it, so little is spent beyond that: FFmpeg skips frames nothing
refers to, only a few frames a second are looked at, each is first shrunk to a small grey image
for the motion test (all in the feed's own thread, search_party.ingest.video.feed), and only frames that
moved (at most ``detect_fps`` a second while motion goes on), or that the detector has not seen
for ``max_gap_seconds``, are converted to full-size RGB and shrunk to the detector's input, still
in the feed's thread, so the detector's thread does little but run the detector.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np

from embeddings.detector import Shrunk
from embeddings.embedder import crop_box
from embeddings.redact import blurred_frame, thumbnail_jpeg
from embeddings.species import likely_species
from embeddings.vectors import aggregate, unit_rows
from search_party.community.filming_time import choose_start
from search_party.ingest.options import IngestOptions
from search_party.ingest.second_look import second_look
from search_party.ingest.stage_timer import StageTimer
from search_party.ingest.tracking import CropCandidate, Track, Tracker, box_quality, crop_quality
from search_party.ingest.video.decode import ClipInfo, probe_clip, upright_rgb
from search_party.ingest.video.feed import FrameFeed
from search_party.store.clip_results import ClipResult, IngestStats, SightingDraft

if TYPE_CHECKING:
    from embeddings.detector import Box, Detection
    from search_party.vision import Models

# Skipping non-reference frames is worth it only when far more frames arrive than are looked at.
SKIP_NONREF_FACTOR = 4


def clip_start(info: ClipInfo, given: datetime | None, source: str = "given") -> tuple[datetime, str]:
    """The wall-clock time of the clip's first frame, in UTC, and where it came from
    (search_party.community.filming_time.choose_start: a naive ``given`` time is taken as UTC)."""
    stated = None
    if given is not None:
        stated = (given.replace(tzinfo=UTC) if given.tzinfo is None else given, source)
    return choose_start(given=stated, container=info.creation_time,
                        file_date=datetime.fromtimestamp(os.stat(info.path).st_mtime, tz=UTC))


@dataclass(frozen=True)
class _Animal:
    """An ended track kept as an animal: its crops' unit vectors and P(dog) (the species head's,
    not COCO's label)."""

    track: Track
    crop_vectors: np.ndarray
    p_dog: float


@dataclass(frozen=True)
class _Look:
    """A frame the detector must see: upright full-size RGB (for crops) and the detector's input."""

    rgb: np.ndarray
    shrunk: Shrunk


class _ClipRun:
    """One clip's pass over the frames the feed hands over: detector, tracker, best crops, and
    the crops' vectors, embedded as soon as a track ends (while the feed decodes on)."""

    def __init__(self, info: ClipInfo, models: Models, options: IngestOptions, timer: StageTimer) -> None:
        self.info = info
        self.detector = models.detector
        self.embedder = models.embedder
        self.species = models.species
        self.options = options
        self.timer = timer
        self.tracker = Tracker(options.track_max_age_seconds)
        self.tracks_ended = 0
        self.animals: list[_Animal] = []
        self.feed = FrameFeed(
            info, sample_fps=options.sample_fps, detect_fps=options.detect_fps,
            max_gap_seconds=options.max_gap_seconds,
            motion_threshold=options.motion_threshold, motion_width=options.motion_width,
            skip_nonref=info.fps >= SKIP_NONREF_FACTOR * options.sample_fps,
            prepare=self.prepare, decode_threads=options.decode_threads,
            keyframe_gate=options.keyframe_gate,
        )

    def prepare(self, frame: av.VideoFrame) -> _Look:
        """Made in the feed's thread, which has time to spare while the detector works."""
        rgb = upright_rgb(frame, self.info.rotation)
        return _Look(rgb, self.detector.shrink(rgb))

    def run(self, progress: Callable[[float], None] | None) -> None:
        duration = self.info.duration_seconds or 1.0
        for item in self.feed:
            if item.look is not None:
                self.look(item.seconds, item.look, item.changed)
            with self.timer("track"):
                ended = self.tracker.expire(item.seconds)
            self.keep_animals(ended)
            if progress is not None:
                progress(min(1.0, item.seconds / duration))
        self.keep_animals(self.tracker.finish())
        for stage, ms in self.feed.timer.ms.items():  # timed in the feed's own thread
            self.timer.ms[stage] += ms

    def keep_animals(self, tracks: list[Track]) -> None:
        """Embed the crops of the ended tracks that are animals (while the feed decodes on);
        drop the rest."""
        self.tracks_ended += len(tracks)
        animals = [t for t in tracks if _is_animal(t, self.options)]
        if not animals:
            return
        with self.timer("embed"):
            vectors = unit_rows(self.embedder.predict([c.rgb for t in animals for c in t.crops]))
        offset = 0
        for track in animals:
            mine = vectors[offset:offset + len(track.crops)]
            offset += len(track.crops)
            with self.timer("species"):
                # The species head reads ImageNet features: the embedder's own when it is that one.
                same = self.embedder.version == self.species.features.version
                p_dog = self.species.of_animal([c.rgb for c in track.crops], mine if same else None)
            self.animals.append(_Animal(track, mine, p_dog))

    def look(self, seconds: float, look: _Look, changed: np.ndarray | None) -> None:
        with self.timer("detect"):
            pets = self.detector.predict(look.shrunk)
            persons = self.detector.person_boxes(look.shrunk)  # the same forward pass
        if not pets and self.options.second_look_regions:
            with self.timer("second_look"):
                pets, closer_persons = second_look(self.detector, look.rgb, changed, self.info.rotation,
                                                   self.options.second_look_regions)
            persons = persons + closer_persons  # every person seen, by either look, is blurred
        if pets:
            self.track(seconds, look.rgb, pets, persons)

    def track(self, seconds: float, rgb: np.ndarray, pets: list[Detection],
              persons: list[Box]) -> None:
        with self.timer("track"):
            joined = self.tracker.update(seconds, [(p.label, p.score, p.box) for p in pets])
            shown_frame: np.ndarray | None = None
            height, width = rgb.shape[:2]
            keep, margin = self.options.crops_per_track, self.options.crop_margin
            for (_, score, box), track in joined:
                base = box_quality(box, score, width, height)
                if not track.wants(base, keep):  # sharpness can only lower the quality
                    continue
                crop = crop_box(rgb, box, margin)
                quality = crop_quality(base, crop)
                if not track.wants(quality, keep):
                    continue
                if shown_frame is None:
                    with self.timer("redact"):
                        shown_frame = blurred_frame(rgb, persons)
                # Quality is judged on the raw crop (blurring would fake low sharpness), but only
                # the crop with person regions blurred is kept, embedded and stored.
                track.offer(CropCandidate(quality, seconds, box, score,
                                          crop_box(shown_frame, box, margin).copy()), keep)


def _is_animal(track: Track, options: IngestOptions) -> bool:
    """Enough detections to be an animal rather than a detector's passing mistake; a track that
    never moved must also be confident (things that stay put and only look a bit like a dog)."""
    hits = options.min_track_hits
    if len(track.observations) < hits or not track.crops:
        return False
    if track.travel >= options.still_travel:
        return True
    best = sorted((o.score for o in track.observations), reverse=True)[:hits]
    return sum(best) / hits >= options.min_still_score


def _sightings(animals: list[_Animal], model_version: str, start: datetime) -> list[SightingDraft]:
    drafts = []
    for animal in sorted(animals, key=lambda a: a.track.observations[0].seconds):
        track, crop_vectors = animal.track, animal.crop_vectors
        best = track.crops[0]
        drafts.append(SightingDraft(
            label=likely_species(animal.p_dog),
            p_dog=animal.p_dog,
            first_time=start + timedelta(seconds=track.observations[0].seconds),
            last_time=start + timedelta(seconds=track.last.seconds),
            box=best.box,
            score=track.best_score,
            thumbnail_jpeg=thumbnail_jpeg(best.rgb, []),  # blurred already
            vector=aggregate(crop_vectors),
            crop_vectors=crop_vectors,
            model_version=model_version,
        ))
    return drafts


def process_clip(
    path: str | Path,
    *,
    start_time: datetime | None,
    start_source: str = "given",
    models: Models,
    options: IngestOptions | None = None,
    progress: Callable[[float], None] | None = None,
) -> ClipResult:
    """Every dog and cat the clip shows, one ``SightingDraft`` per tracked animal.

    Raises ClipError (a UserError) for a file that is not a usable clip, before any model runs
    when the container already tells; ``progress`` receives the fraction of the clip done.
    """
    options = options or IngestOptions()
    wall_start = time.perf_counter()
    timer = StageTimer()
    with timer("probe"):
        info = probe_clip(path, max_clip_seconds=options.max_clip_seconds,
                          max_pixels=options.max_pixels)
    start, source = clip_start(info, start_time, start_source)
    run = _ClipRun(info, models, options, timer)
    run.run(progress)
    with timer("thumbnail"):
        drafts = _sightings(run.animals, models.embedder.version, start)
    if progress is not None:
        progress(1.0)
    stats = IngestStats(
        clip_seconds=info.duration_seconds,
        wall_seconds=time.perf_counter() - wall_start,
        frames_decoded=run.feed.counts.decoded,
        frames_motion_checked=run.feed.counts.motion_checked,
        frames_detected=run.feed.counts.detected,
        crops_embedded=sum(len(a.crop_vectors) for a in run.animals),
        ms_per_stage=dict(timer.ms),
        width=info.width,
        height=info.height,
        codec=info.codec,
        frames_in_clip=info.frame_count,
        frames_corrupt=run.feed.counts.corrupt,
        tracks=run.tracks_ended,
        gops=run.feed.gate_counts.gops,
        gops_decoded=run.feed.gate_counts.active,
    )
    return ClipResult(drafts, stats, start_time=start, start_source=source)
