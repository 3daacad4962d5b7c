"""Pictures of CartPole: a rendered episode for the README and for run folders, without a display or pygame.

``draw_cartpole(state)`` draws one state with the geometry of gymnasium's CartPole renderer (a 600 x 400 screen,
4.8 m of track across it, a 50 x 30 px cart, a 10 px pole of 2 * length metres, the track 100 px above the bottom),
scaled to the requested size. Each shape is a vectorised NumPy boolean mask over the pixel grid, computed in
gymnasium's screen coordinates (y up), so parts that leave the picture are clipped, never an error.

    frames, ret = episode_frames(CartPole(), policy, seed=0, every=2)   # policy: obs (4,) float32 -> 0 or 1
    save_gif(frames, "runs/dqn/episode.gif")                            # animated, looping, palette-compressed
    frame_strip(frames, n=8, path="runs/dqn/episode.png")               # 8 evenly spaced frames side by side
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dlbasics.io import atomic_write_bytes
from dlbasics.rl.envs import CartPole

# gymnasium's screen (pixels) and colours
SCREEN_W, SCREEN_H = 600, 400
CART_W, CART_H, POLE_W, TRACK_Y = 50.0, 30.0, 10.0, 100.0
AXLE_OFFSET = CART_H / 4
BACKGROUND, TRACK, CART = (255, 255, 255), (0, 0, 0), (40, 40, 40)
POLE, AXLE, BORDER = (202, 152, 101), (129, 132, 203), (160, 160, 160)


def draw_cartpole(state: Any, width: int = 300, height: int = 200) -> np.ndarray:
    """The cart-pole in ``state`` (x, x_dot, theta, theta_dot; only x and theta are drawn) as an RGB image
    (height, width, 3) uint8, row 0 at the top; theta > 0 leans the pole to the right (+x)."""
    s = np.asarray(state, dtype=np.float64)
    if s.shape != (4,):
        raise ValueError(f"draw_cartpole: state must have 4 values (x, x_dot, theta, theta_dot), got shape {s.shape}")
    if width < 16 or height < 16:
        raise ValueError(f"draw_cartpole: width and height must be >= 16, got {width} x {height}")
    x, theta = s[0], s[2]
    sx, sy = width / SCREEN_W, height / SCREEN_H
    # pixel centres in gymnasium's screen coordinates, y up
    X = (np.arange(width) + 0.5)[None, :] / sx
    Y = (height - np.arange(height) - 0.5)[:, None] / sy
    scale = SCREEN_W / (2 * CartPole.x_threshold)
    cart_x, axle_y = x * scale + SCREEN_W / 2, TRACK_Y + AXLE_OFFSET
    pole_len = scale * 2 * CartPole.length

    img = np.empty((height, width, 3), np.uint8)
    img[:] = BACKGROUND
    above_track = Y[:, 0] - TRACK_Y
    img[(above_track >= -0.5 / sy) & (above_track < 0.5 / sy)] = TRACK  # exactly one row at any size
    cart = (np.abs(X - cart_x) <= CART_W / 2) & (np.abs(Y - TRACK_Y) <= CART_H / 2)
    img[cart] = CART
    # the pole: a rectangle along (sin theta, cos theta) from the axle, POLE_W wide, POLE_W / 2 behind the axle
    dx, dy = X - cart_x, Y - axle_y
    along = dx * np.sin(theta) + dy * np.cos(theta)
    across = dx * np.cos(theta) - dy * np.sin(theta)
    img[(along >= -POLE_W / 2) & (along <= pole_len - POLE_W / 2) & (np.abs(across) <= POLE_W / 2)] = POLE
    img[dx**2 + dy**2 <= (POLE_W / 2) ** 2] = AXLE
    return img


def _state(env: Any) -> np.ndarray:
    """The physical state of ``env``: ``env.state`` (CartPole) or that of a wrapped gymnasium env (GymEnv)."""
    for obj in (env, getattr(getattr(env, "env", None), "unwrapped", None)):
        if getattr(obj, "state", None) is not None:
            return np.asarray(obj.state, dtype=np.float64)
    raise ValueError(f"episode_frames: {type(env).__name__} has no .state (x, x_dot, theta, theta_dot) to draw")


def episode_frames(env: Any, policy: Callable[[np.ndarray], int], seed: int = 0, max_steps: int = 500,
                   every: int = 1, width: int = 300, height: int = 200) -> tuple[list[np.ndarray], float]:
    """Run one episode of ``policy`` (obs (4,) float32 -> action) on ``env`` reset with ``seed``, for at most
    ``max_steps`` steps; return its frames (each (height, width, 3) uint8: the start, every ``every``-th step, and
    the last step) and the episode return."""
    if every < 1:
        raise ValueError(f"episode_frames: every must be >= 1, got {every}")
    if max_steps < 0:
        raise ValueError(f"episode_frames: max_steps must be >= 0, got {max_steps}")
    obs, _ = env.reset(seed=seed)
    frames, ret, steps, done = [draw_cartpole(_state(env), width, height)], 0.0, 0, False
    while not done and steps < max_steps:
        obs, reward, terminated, truncated, _ = env.step(int(policy(obs)))
        ret, steps, done = ret + float(reward), steps + 1, terminated or truncated
        if steps % every == 0 or done or steps == max_steps:
            frames.append(draw_cartpole(_state(env), width, height))
    return frames, ret


def _check_frames(frames: Sequence[np.ndarray], name: str) -> None:
    if len(frames) == 0:
        raise ValueError(f"{name}: no frames")
    shape = np.shape(frames[0])
    if len(shape) != 3 or shape[2] != 3:
        raise ValueError(f"{name}: frames must be (H, W, 3) RGB, got shape {shape}")
    bad = next((np.shape(f) for f in frames if np.shape(f) != shape), None)
    if bad is not None:
        raise ValueError(f"{name}: frames must all have the shape {shape}, got {bad}")


def save_gif(frames: Sequence[np.ndarray], path: str | os.PathLike, fps: float = 25) -> None:
    """Write ``frames`` (each (H, W, 3) uint8) to ``path`` as an animated GIF looping forever, at ``fps`` frames a
    second; one palette for all frames (taken from up to 8 of them, no dithering) keeps the file small."""
    from PIL import Image

    _check_frames(frames, "save_gif")
    if fps <= 0:
        raise ValueError(f"save_gif: fps must be > 0, got {fps}")
    sample = [frames[i] for i in np.linspace(0, len(frames) - 1, min(8, len(frames))).round().astype(int)]
    palette = Image.fromarray(np.concatenate(sample).astype(np.uint8)).quantize(colors=256,
                                                                                  dither=Image.Dither.NONE)
    images = [Image.fromarray(np.asarray(f, np.uint8)).quantize(palette=palette, dither=Image.Dither.NONE)
              for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    atomic_write_bytes(path, buf.getvalue())


def frame_strip(frames: Sequence[np.ndarray], n: int = 8, path: str | os.PathLike | None = None) -> np.ndarray:
    """``n`` evenly spaced frames (the first and last included; all of them if fewer) side by side, each (H, W, 3)
    inside a 1-px grey border drawn over its edge, with 4 px of white between: (H, k * W + (k - 1) * 4, 3) uint8
    for k frames; saved as PNG to ``path`` if given."""
    _check_frames(frames, "frame_strip")
    if n < 1:
        raise ValueError(f"frame_strip: n must be >= 1, got {n}")
    h, w, _ = np.shape(frames[0])
    k = min(n, len(frames))
    strip = np.full((h, k * w + (k - 1) * 4, 3), 255, np.uint8)
    for j, i in enumerate(np.linspace(0, len(frames) - 1, k).round().astype(int)):
        tile = strip[:, j * (w + 4): j * (w + 4) + w]
        tile[:] = frames[i]
        tile[[0, -1]], tile[:, [0, -1]] = BORDER, BORDER
    if path is not None:
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(strip).save(buf, format="PNG")
        atomic_write_bytes(path, buf.getvalue())
    return strip


__all__ = ["draw_cartpole", "episode_frames", "frame_strip", "save_gif"]
