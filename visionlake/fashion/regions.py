"""Upper and lower body regions of whole-person photos, so that a top and trousers are tagged apart.

Choice: a proportional split of the person's bounding box, anchored on the head found as the skin
blob at the top of the foreground (same segmentation as :mod:`visionlake.fashion.colour`). The faces
area's detector is not used yet (it is optional and heavy to load per worker); the split follows
standard body proportions: the head is about 1/8 of the height, the torso garment ends near 55%.
Product shots (no head at the top) get no regions, only ``whole``.
"""

from __future__ import annotations

from PIL import Image as PILImage

from visionlake.fashion.colour import _as_rgb_array, _person_box, foreground_mask, skin_mask, srgb_to_lab

#: Fractions of the person's height (top of the head = 0, feet = 1).
UPPER = (0.12, 0.55)
LOWER = (0.48, 0.95)


def person_regions(image: PILImage.Image, analysis_side: int = 160) -> dict[str, tuple[int, int, int, int]]:
    """``{"upper": box, "lower": box}`` in pixel coordinates of ``image`` (left, top, right, bottom),
    or ``{}`` when the photo does not show a whole standing person."""
    rgb = _as_rgb_array(image, analysis_side)
    fg = foreground_mask(srgb_to_lab(rgb))
    box = _person_box(fg, skin_mask(rgb) & fg)
    if box is None:
        return {}
    top, bottom, left, right = box
    sy = image.height / rgb.shape[0]
    sx = image.width / rgb.shape[1]
    height = bottom - top
    out = {}
    for name, (a, b) in (("upper", UPPER), ("lower", LOWER)):
        y0 = int((top + a * height) * sy)
        y1 = int((top + b * height) * sy)
        x0 = int(max(0, left - 1) * sx)
        x1 = int(min(rgb.shape[1], right + 2) * sx)
        if y1 - y0 >= 8 and x1 - x0 >= 8:
            out[name] = (x0, y0, x1, y1)
    return out


def crop_regions(image: PILImage.Image) -> dict[str, PILImage.Image]:
    """The region crops of :func:`person_regions`."""
    return {k: image.crop(v) for k, v in person_regions(image).items()}
