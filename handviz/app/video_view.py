"""The camera image with each hand's 2D keypoints, bones and (optionally) its projected mesh.

The frame is scaled to the widget first (cv2.resize on the worker thread instead of a smooth
QPainter scale on the GUI thread), then the mesh overlay is painted into it with OpenCV (the
triangles filled into a mask around the hand, then a blend): about 2.7 ms per frame for one hand
in a 417-pixel-wide view against 4.0 ms when painted at the camera's size and then scaled.
Keypoints and bones are drawn with QPainter on top, scaled with the image.
"""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from handviz.geometry import project
from handviz.io.video import scale_to
from handviz.pipeline.intrinsics import rescale_intrinsics
from handviz.types import BONES, Detection, FrameResult, HandEstimate

HAND_QCOLOURS = {"Right": QColor(238, 158, 115), "Left": QColor(115, 173, 238)}
OVERLAY_RGB = {"Right": (238, 158, 115), "Left": (115, 173, 238)}
OVERLAY_ALPHA = 0.45
#: A message with no image (an error, "opening ...") wraps inside the widget, never clipped.
MESSAGE_FLAGS = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
MESSAGE_MARGIN = 16


def _silhouette_mask(uv: np.ndarray, faces: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Filled silhouette of the projected mesh: uv (V, 2) px, faces (F, 3) -> (H, W) uint8 mask.

    Only triangles facing the camera are drawn: for a closed surface they cover the same
    silhouette as all of them, at half the cost. One drawContours call fills each triangle as
    its own contour (a single fillPoly over all of them is even-odd, so overlapping triangles
    would cancel); one C call instead of a Python loop per triangle: a third faster, and the GIL
    is released for the whole fill (this runs on the worker thread, beside MediaPipe).
    """
    a, b, c = uv[faces[:, 0]], uv[faces[:, 1]], uv[faces[:, 2]]
    signed_area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    front = faces[signed_area > 0] if np.count_nonzero(signed_area > 0) >= len(faces) // 4 else faces
    tris = np.round(uv[front]).astype(np.int32)
    mask = np.zeros(shape, np.uint8)
    cv2.drawContours(mask, tris, -1, 255, thickness=cv2.FILLED, lineType=cv2.LINE_8)
    return mask


def paint_mesh_overlay(image: np.ndarray, hands: list[HandEstimate], faces: np.ndarray, K: np.ndarray) -> np.ndarray:
    """A copy of image (H, W, 3) uint8 with each hand's mesh silhouette blended in its colour.

    Only the hand's bounding box is masked and blended, so the cost follows the hand's size.
    """
    out = image.copy()
    h, w = image.shape[:2]
    for hand in hands:
        verts = np.asarray(hand.vertices)
        if len(verts) == 0 or faces is None or faces.max() >= len(verts):
            continue
        uv = project(verts, K, min_depth_mm=1.0)
        if not np.all(np.isfinite(uv)):
            continue
        x0, y0 = np.clip(np.floor(uv.min(axis=0)).astype(int), 0, [w, h])
        x1, y1 = np.clip(np.ceil(uv.max(axis=0)).astype(int) + 1, 0, [w, h])
        if x1 <= x0 or y1 <= y0:
            continue
        mask = _silhouette_mask(uv - [x0, y0], faces, (y1 - y0, x1 - x0))
        roi = out[y0:y1, x0:x1]
        colour = np.empty_like(roi)
        colour[:] = OVERLAY_RGB.get(hand.handedness, OVERLAY_RGB["Right"])
        blended = cv2.addWeighted(roi, 1 - OVERLAY_ALPHA, colour, OVERLAY_ALPHA, 0.0)
        cv2.copyTo(blended, mask, roi)  # in place; numpy's copyto(where=) took 1 ms more
    return out


def fit_image(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """image scaled to fit within size (width, height) px, aspect kept, as VideoView draws it
    (`scale_to`); unchanged when size is None or it already fits."""
    if size is None or size[0] < 1 or size[1] < 1:
        return image
    ih, iw = image.shape[:2]
    s = min(size[0] / iw, size[1] / ih)
    w, h = max(1, round(iw * s)), max(1, round(ih * s))
    return image if (w, h) == (iw, ih) else scale_to(image, (w, h))


def to_qimage(rgb: np.ndarray) -> QImage:
    """(H, W, 3) uint8 RGB -> QImage that owns a copy of the pixels."""
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class VideoView(QWidget):
    """Shows the newest frame, scaled to fit with its aspect ratio kept."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 240)
        self._image: QImage | None = None
        self._source_size = (0, 0)  # (width, height) of the frame the keypoints refer to
        self._fit: tuple[int, int] | None = None  # widget size in device pixels, for prepare()
        self._keypoints: list[tuple[str, np.ndarray]] = []
        self._message = "waiting for frames"
        self.mirrored = False
        self.show_overlay = True
        self.faces: np.ndarray | None = None

    def set_message(self, text: str) -> None:
        """Text shown when there is no image (or over it, bottom left)."""
        self._message = text
        self.update()

    def prepare(self, result: FrameResult) -> np.ndarray:
        """The frame with the mesh overlay painted in, when the overlay is on, scaled to the
        widget. Thread-safe: the result bridge calls it on the worker thread, so the scaling and
        the painting stay off the GUI thread's frame budget."""
        faces = self.faces
        frame = result.frame.image
        image = fit_image(frame, self._fit)
        if self.show_overlay and faces is not None and result.hands:
            K = rescale_intrinsics(result.intrinsics, (frame.shape[1], frame.shape[0]),
                                   (image.shape[1], image.shape[0]))
            image = paint_mesh_overlay(image, result.hands, faces, K)
        return image

    def show_result(self, result: FrameResult, prepared: np.ndarray | None = None) -> None:
        """Show a result; prepared: what prepare(result) gave (None: paint it here)."""
        image = prepared if prepared is not None else self.prepare(result)
        h, w = result.frame.image.shape[:2]
        self.show_frame(image, result.detections, result.hands, np.asarray(result.intrinsics, np.float64),
                        overlay_done=True, source_size=(w, h))

    def show_frame(self, image: np.ndarray, detections: list[Detection], hands: list[HandEstimate],
                   K: np.ndarray, overlay_done: bool = False, source_size: tuple[int, int] | None = None) -> None:
        """image: (H, W, 3) uint8 RGB as the model saw it, or that frame already scaled
        (source_size: the model's (width, height), which the keypoints and K refer to); K: (3, 3)."""
        if not overlay_done and self.show_overlay and self.faces is not None and hands:
            image = paint_mesh_overlay(image, hands, self.faces, K)
        if self.mirrored:
            image = image[:, ::-1]
        self._source_size = source_size or (image.shape[1], image.shape[0])
        self._image = to_qimage(image)
        shown = hands if hands else detections
        self._keypoints = [(d.handedness, np.asarray(d.keypoints_2d, np.float32)) for d in shown]
        self.update()

    def clear(self) -> None:
        self._image = None
        self._keypoints = []
        self.update()

    def message_rect(self) -> QRectF:
        """Where a message without an image goes: the widget less a margin (the text wraps)."""
        return QRectF(self.rect()).adjusted(MESSAGE_MARGIN, MESSAGE_MARGIN, -MESSAGE_MARGIN, -MESSAGE_MARGIN)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        ratio = self.devicePixelRatioF()
        self._fit = (round(self.width() * ratio), round(self.height() * ratio))
        super().resizeEvent(event)

    def _target_rect(self) -> QRectF:
        """Where the frame goes: scaled to fit, aspect kept, centred, on whole pixels (so an image
        that `fit_image` already scaled is drawn as it is, without a second scaling)."""
        iw, ih = self._source_size
        s = min(self.width() / iw, self.height() / ih)
        w, h = round(iw * s), round(ih * s)
        return QRectF((self.width() - w) // 2, (self.height() - h) // 2, w, h)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt name)
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(20, 22, 26))
        if self._image is None:
            painter.setPen(QColor(200, 200, 200))
            painter.drawText(self.message_rect(), MESSAGE_FLAGS, self._message)
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = self._target_rect()
        ratio = self.devicePixelRatioF()
        if (self._image.width(), self._image.height()) == (round(rect.width() * ratio), round(rect.height() * ratio)):
            self._image.setDevicePixelRatio(ratio)
            painter.drawImage(rect.topLeft(), self._image)  # already scaled on the worker thread
        else:
            painter.drawImage(rect, self._image)
        scale = rect.width() / self._source_size[0]
        for handedness, kp in self._keypoints:
            uv = kp.copy()
            if self.mirrored:
                uv[:, 0] = (self._source_size[0] - 1) - uv[:, 0]
            pts = [QPointF(rect.x() + u * scale, rect.y() + v * scale) for u, v in uv]
            colour = HAND_QCOLOURS.get(handedness, HAND_QCOLOURS["Right"])
            painter.setPen(QPen(colour.darker(130), 2.5))
            for a, b in BONES:
                painter.drawLine(pts[a], pts[b])
            painter.setPen(QPen(QColor(255, 255, 255), 1))
            painter.setBrush(colour)
            for p in pts:
                painter.drawEllipse(p, 3.5, 3.5)
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(pts[0] + QPointF(6, 14), handedness)
        if self._message:
            painter.setPen(QColor(230, 230, 230))
            painter.drawText(QRectF(rect.x() + 8, rect.bottom() - 24, rect.width() - 16, 20),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, self._message)
