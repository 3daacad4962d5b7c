"""The CartPole pictures: frames of the right shape whose pole leans the way theta says and whose cart follows x, an
episode's frames and return, the GIF and the strip on disk, and the error messages."""

import numpy as np
import pytest

from dlbasics.rl.envs import CartPole
from dlbasics.rl.render import CART, POLE, draw_cartpole, episode_frames, frame_strip, save_gif

Image = pytest.importorskip("PIL.Image")


def columns_of(img, colour):
    """The column indices of the pixels of exactly ``colour``."""
    return np.nonzero(np.all(img == np.array(colour, np.uint8), axis=-1))[1]


def test_frame_shape_and_colours():
    img = draw_cartpole(np.zeros(4), width=300, height=200)
    assert img.shape == (200, 300, 3) and img.dtype == np.uint8
    assert columns_of(img, CART).size > 0 and columns_of(img, POLE).size > 0
    assert np.all(img[0] == 255)  # the top row: sky


@pytest.mark.parametrize("theta, side", [(0.2, 1), (-0.2, -1)])
def test_pole_leans_the_way_of_theta(theta, side):
    img = draw_cartpole([0.0, 0.0, theta, 0.0], width=300, height=200)
    pole = columns_of(img, POLE)
    assert pole.size > 100
    cart_centre = 150  # x = 0 is the middle of a 300-px picture
    assert np.sign(pole.mean() + 0.5 - cart_centre) == side
    assert abs(pole.mean() + 0.5 - cart_centre) > 5
    upright = columns_of(draw_cartpole(np.zeros(4)), POLE)
    assert abs(upright.mean() + 0.5 - cart_centre) < 1


def test_cart_moves_with_x():
    centres = [columns_of(draw_cartpole([x, 0.0, 0.0, 0.0]), CART).mean() for x in (-1.0, 0.0, 1.0)]
    assert centres[0] < centres[1] < centres[2]
    scale = 300 / 4.8  # px per metre at width 300
    assert centres[2] - centres[1] == pytest.approx(scale, abs=1.5)


@pytest.mark.parametrize("x", [3.0, -3.0, 2.5, 100.0])
def test_state_outside_the_picture_is_clipped(x):
    img = draw_cartpole([x, 0.0, 1.5, 0.0], width=120, height=80)
    assert img.shape == (80, 120, 3)
    if abs(x) >= 3.0:
        assert columns_of(img, CART).size == 0  # the cart is off screen


def test_episode_frames_constant_policy():
    frames, ret = episode_frames(CartPole(), lambda obs: 0, seed=0, every=1, width=120, height=80)
    steps = len(frames) - 1
    assert 10 <= steps <= 60  # always pushing left: the pole falls quickly
    assert ret == steps
    assert all(f.shape == (80, 120, 3) and f.dtype == np.uint8 for f in frames)
    assert not np.array_equal(frames[0], frames[-1])
    sparse, ret2 = episode_frames(CartPole(), lambda obs: 0, seed=0, every=4, width=120, height=80)
    assert ret2 == ret
    assert len(sparse) == 1 + steps // 4 + (steps % 4 != 0)  # the start, every 4th step, and the last
    np.testing.assert_array_equal(sparse[-1], frames[-1])


def test_episode_frames_max_steps():
    frames, ret = episode_frames(CartPole(), lambda obs: int(obs[2] + 0.5 * obs[3] > 0), seed=1, max_steps=7,
                                 width=64, height=48)
    assert ret == 7 and len(frames) == 8


def test_save_gif_and_frame_strip(tmp_path):
    frames = [draw_cartpole([0.3 * i, 0.0, 0.05 * i, 0.0]) for i in range(5)]
    gif = tmp_path / "run" / "episode.gif"
    save_gif(frames, gif, fps=20)
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames == 5 and im.size == (300, 200)
        assert im.info.get("loop") == 0
        im.seek(2)
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), frames[2])  # exact colours, no dithering

    png = tmp_path / "strip.png"
    strip = frame_strip(frames, n=4, path=png)
    # 1-px grey border drawn over each frame's edge, 4 px of white between frames
    assert strip.shape == (200, 4 * 300 + 3 * 4, 3) and strip.dtype == np.uint8
    assert np.all(strip[:, 300:304] == 255)
    assert np.all(strip[:, 0] == 160) and np.all(strip[:, -1] == 160)
    np.testing.assert_array_equal(strip[1:-1, 1:299], frames[0][1:-1, 1:-1])  # the first frame
    np.testing.assert_array_equal(strip[1:-1, -299:-1], frames[-1][1:-1, 1:-1])  # the last frame
    with Image.open(png) as im:
        assert im.format == "PNG"
        np.testing.assert_array_equal(np.asarray(im), strip)
    assert frame_strip(frames[:2], n=8).shape == (200, 2 * 300 + 4, 3)  # fewer frames than n: all of them


def test_errors():
    with pytest.raises(ValueError, match=r"draw_cartpole: state must have 4 values .* got shape \(3,\)"):
        draw_cartpole(np.zeros(3))
    with pytest.raises(ValueError, match="draw_cartpole: width and height must be >= 16, got 10 x 200"):
        draw_cartpole(np.zeros(4), width=10)
    with pytest.raises(ValueError, match="frame_strip: no frames"):
        frame_strip([])
    with pytest.raises(ValueError, match="save_gif: no frames"):
        save_gif([], "unused.gif")
    with pytest.raises(ValueError, match="episode_frames: every must be >= 1, got 0"):
        episode_frames(CartPole(), lambda obs: 0, every=0)
