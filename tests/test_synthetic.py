"""The built-in moving-square dataset: layout, caching, determinism, and that only frame order tells the label."""

import json

import numpy as np
import pytest

from tsf_hf.synthetic import (
    DIRECTIONS,
    MovingSquareConfig,
    generate_moving_square_dataset,
    read_video,
    render_moving_square,
    write_video,
)

TINY = MovingSquareConfig(num_train=8, num_validation=4, num_test=4)


def _render_many(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    config = MovingSquareConfig()
    labels = np.arange(count) % len(DIRECTIONS)
    videos = np.stack(
        [
            render_moving_square(DIRECTIONS[label], np.random.default_rng([seed, i]), config)
            for i, label in enumerate(labels)
        ]
    )
    return videos.astype(np.float64), labels


def _square_tracks(videos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame centroid (x, y) of the pixels that stand out from each video's median colour, and the square's
    mean colour: (N, T, 2) and (N, 3)."""
    median = np.median(videos.reshape(len(videos), -1, 3), axis=1)[:, None, None, None, :]
    distance = np.linalg.norm(videos - median, axis=-1)  # (N, T, H, W)
    mask = distance > 60
    size = videos.shape[2]
    grid_y, grid_x = np.mgrid[0:size, 0:size]
    weight = mask.sum(axis=(2, 3)).clip(min=1)
    tracks = np.stack([(mask * grid_x).sum(axis=(2, 3)) / weight, (mask * grid_y).sum(axis=(2, 3)) / weight], -1)
    colour = (videos * mask[..., None]).sum(axis=(1, 2, 3)) / mask.sum(axis=(1, 2, 3))[:, None].clip(min=1)
    return tracks, colour


def _fit_and_score(train_x, train_y, test_x, test_y) -> float:
    """Accuracy of a one-vs-rest ridge classifier on standardised features and their squares."""

    def expand(features):
        return np.concatenate([features, features**2, np.ones((len(features), 1))], axis=1)

    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_f, test_f = expand((train_x - mean) / std), expand((test_x - mean) / std)
    targets = np.eye(len(DIRECTIONS))[train_y]
    weights = np.linalg.solve(train_f.T @ train_f + 1e-2 * np.eye(train_f.shape[1]), train_f.T @ targets)
    return float(((test_f @ weights).argmax(1) == test_y).mean())


@pytest.fixture(scope="module")
def rendered():
    train = _render_many(1600, seed=1)
    test = _render_many(600, seed=2)
    return train, test


def test_left_is_right_played_backwards():
    config = MovingSquareConfig()
    for seed in range(5):
        right = render_moving_square("right", np.random.default_rng(seed), config)
        left = render_moving_square("left", np.random.default_rng(seed), config)
        down = render_moving_square("down", np.random.default_rng(seed), config)
        up = render_moving_square("up", np.random.default_rng(seed), config)
        np.testing.assert_array_equal(left, right[::-1])
        np.testing.assert_array_equal(up, down[::-1])
        assert right.shape == (8, 32, 32, 3) and right.dtype == np.uint8


def test_order_tells_the_label_and_nothing_else_does(rendered):
    (train_videos, train_y), (test_videos, test_y) = rendered
    train_tracks, train_colour = _square_tracks(train_videos)
    test_tracks, test_colour = _square_tracks(test_videos)

    # control: the same tracks, read in order, give the direction almost always
    def ordered(tracks, colour):
        return np.concatenate([tracks.reshape(len(tracks), -1), tracks[:, -1] - tracks[:, 0], colour], axis=1)

    assert (
        _fit_and_score(ordered(train_tracks, train_colour), train_y, ordered(test_tracks, test_colour), test_y) > 0.95
    )

    # order-blind: the same information with the frames as a set (sorted coordinates, colour, pixel statistics)
    def unordered(videos, tracks, colour):
        pixels = videos.reshape(len(videos), videos.shape[1], -1)
        stats = np.concatenate([pixels.mean(1), pixels.std(1)], axis=1)[:, ::97]
        return np.concatenate([np.sort(tracks[..., 0], 1), np.sort(tracks[..., 1], 1), colour, stats], axis=1)

    blind = _fit_and_score(
        unordered(train_videos, train_tracks, train_colour),
        train_y,
        unordered(test_videos, test_tracks, test_colour),
        test_y,
    )
    assert 0.4 < blind < 0.58  # the axis is visible in a set of frames (50%), the sign is not

    # per-frame: one frame at a time, its time unknown, scored frame by frame
    num_frames = train_tracks.shape[1]
    frame_x = np.concatenate([train_tracks.reshape(-1, 2), np.repeat(train_colour, num_frames, 0)], axis=1)
    frame_y = np.repeat(train_y, num_frames)
    per_frame = _fit_and_score(
        frame_x,
        frame_y,
        np.concatenate([test_tracks.reshape(-1, 2), np.repeat(test_colour, num_frames, 0)], 1),
        np.repeat(test_y, num_frames),
    )
    assert per_frame < 0.4  # 25% is chance; where the square is hints a little at the axis, never at the sign


def test_config_validation():
    with pytest.raises(ValueError, match="size must hold the longest path"):
        MovingSquareConfig(size=16)
    with pytest.raises(ValueError, match="num_frames must be >= 2"):
        MovingSquareConfig(num_frames=1)
    with pytest.raises(ValueError, match="direction must be one of"):
        render_moving_square("sideways", np.random.default_rng(0), MovingSquareConfig())


def test_video_round_trip_keeps_colours(tmp_path):
    frames = render_moving_square("down", np.random.default_rng(0), MovingSquareConfig())
    write_video(tmp_path / "clip.mp4", frames)
    decoded = read_video(tmp_path / "clip.mp4")
    assert decoded.shape == frames.shape
    assert np.abs(decoded.astype(int) - frames).mean() < 4  # 4:4:4 chroma: no colour blur at 32x32
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "bad.mp4", frames.astype(np.float32))


def test_dataset_layout_cache_and_determinism(tmp_path):
    folder = generate_moving_square_dataset(tmp_path / "a", TINY)
    info = json.loads((folder / "dataset_info.json").read_text())
    assert info["labels"] == list(DIRECTIONS) and info["num_train"] == 8
    for split, count in TINY.split_sizes().items():
        files = sorted(folder.glob(f"{split}/*/*.mp4"))
        assert len(files) == count
        assert {f.parent.name for f in files} == set(DIRECTIONS)
    assert not list((tmp_path / "a").glob(".moving_square-*"))  # no staging folder left behind

    # reused as it is when present
    marker = folder / "train" / "right" / "00000.mp4"
    stamp = marker.stat().st_mtime_ns
    assert generate_moving_square_dataset(tmp_path / "a", TINY) == folder
    assert marker.stat().st_mtime_ns == stamp

    # the same parameters elsewhere give the same videos; another seed gives other videos and another folder
    again = generate_moving_square_dataset(tmp_path / "b", TINY)
    assert again.name == folder.name
    for path in sorted(folder.glob("*/*/*.mp4")):
        np.testing.assert_array_equal(read_video(path), read_video(again / path.relative_to(folder)))
    other = generate_moving_square_dataset(
        tmp_path / "b", MovingSquareConfig(num_train=8, num_validation=4, num_test=4, seed=1)
    )
    assert other.name != folder.name
    assert not np.array_equal(read_video(marker), read_video(other / "train" / "right" / "00000.mp4"))


def test_videofolder_loads_without_decoding(tmp_path):
    datasets = pytest.importorskip("datasets")
    folder = generate_moving_square_dataset(tmp_path, TINY)
    dataset = datasets.load_dataset("videofolder", data_dir=str(folder)).cast_column(
        "video", datasets.Video(decode=False)
    )
    assert set(dataset) == {"train", "validation", "test"}
    assert dataset["train"].features["label"].names == sorted(DIRECTIONS)
    row = dataset["train"][0]
    assert read_video(row["video"]["path"]).shape == (8, 32, 32, 3)
